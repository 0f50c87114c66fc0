"""Keep the hub's database layer out of every user server (run once, at the image's build).

`jupyterhub-singleuser` imports `jupyterhub.log` and `jupyterhub.scopes`,
which import the hub's ORM: SQLAlchemy, Alembic and every table, in a
process that never opens a database. Measured in this image: a second of
a cold server's start and tens of MiB of every idle server (README.md,
'Benchmarks'). Exact edits, each checked:

- jupyterhub/log.py: the health-check handler and the hub's request metrics
  are only looked at where the hub itself has imported them;
- jupyterhub/scopes.py: sqlalchemy, the ORM and the roles are imported on
  first use (the single-user server never uses them: it intersects scopes
  without a database);
- jupyterhub/utils.py: SQLAlchemy's error class is looked up only when an
  error reaches the hub's database decorator.

The build fails if an upgrade of JupyterHub changed a line edited here, or
if the single-user server still imports SQLAlchemy afterwards.
"""

import subprocess
import sys
from pathlib import Path

import jupyterhub

LOG = [
    (
        "from .handlers.pages import HealthCheckHandler\nfrom .metrics import prometheus_log_method\n",
        "import sys\n",
    ),
    (
        "isinstance(handler, StaticFileHandler | HealthCheckHandler)",
        "isinstance(handler, _quiet_handlers())",
    ),
    (
        "    log_method(msg.format(**ns))\n    prometheus_log_method(handler)\n",
        "    log_method(msg.format(**ns))\n"
        '    metrics = sys.modules.get("jupyterhub.metrics")  # the hub\'s own; not in a single-user server\n'
        "    if metrics is not None:\n"
        "        metrics.prometheus_log_method(handler)\n"
        "\n\n"
        "def _quiet_handlers():\n"
        '    pages = sys.modules.get("jupyterhub.handlers.pages")\n'
        "    return StaticFileHandler | pages.HealthCheckHandler if pages else StaticFileHandler\n",
    ),
]

UTILS = [
    ("from sqlalchemy.exc import SQLAlchemyError\n", "import importlib\n"),
    (
        "        except SQLAlchemyError:\n",
        '        except importlib.import_module("sqlalchemy.exc").SQLAlchemyError:\n',
    ),
]

SCOPES = [
    (
        "import sqlalchemy as sa\n",
        "import importlib\n",
    ),
    (
        "from . import orm, roles\n",
        "\n\nclass _OnFirstUse:\n"
        '    """A module imported when first used: a single-user server never uses these."""\n\n'
        "    def __init__(self, name):\n"
        "        self._name = name\n\n"
        "    def __getattr__(self, attr):\n"
        "        return getattr(importlib.import_module(self._name, __package__), attr)\n\n\n"
        'sa, orm, roles = _OnFirstUse("sqlalchemy"), _OnFirstUse(".orm"), _OnFirstUse(".roles")\n',
    ),
]


def edit(path, replacements):
    text = path.read_text()
    for old, new in replacements:
        if text.count(old) != 1:
            sys.exit(f"lighter_singleuser: {path} has changed upstream; this edit no longer applies: {old[:60]!r}")
        text = text.replace(old, new)
    path.write_text(text)


def main():
    package = Path(jupyterhub.__file__).parent
    edit(package / "log.py", LOG)
    edit(package / "scopes.py", SCOPES)
    edit(package / "utils.py", UTILS)
    for cached in package.rglob("__pycache__"):
        for compiled in cached.glob("*.pyc"):
            compiled.unlink()
    check = (
        "import sys, jupyterhub.singleuser.extension, jupyterhub.services.auth as a\n"
        "assert a.check_scopes({'access:servers!user=x'}, {'access:servers!user=x'}) == {'access:servers!user=x'}\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'alembic', 'jupyterhub.orm') if m in sys.modules)\n"
        "sys.exit(f'still imported: {heavy}' if heavy else 0)\n"
    )
    subprocess.run([sys.executable, "-c", check], check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)


if __name__ == "__main__":
    main()
