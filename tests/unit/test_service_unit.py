"""The systemd unit `hubstack service install` writes, and its environment file.

The rendered unit is also checked by systemd itself (`systemd-analyze
verify`, which this project's hosts have); the unit under a running systemd
is tested in tests/integration/test_service.py.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubstack import cli
from hubstack.common.registry import KNOWN
from hubstack.common.settings import load
from hubstack.service import Command, ServiceError, render_env_file, render_unit, this_command

REPO = Path(__file__).resolve().parents[2]
SETTINGS = load(environ={"HUBSTACK_NAME": "hubsvc", "HUBSTACK_PORT": "8131", "DEV_MODE": "1"})
COMMAND = Command(os.path.realpath(sys.executable))


def lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_unit_starts_after_docker_restarts_on_failure_and_outlasts_the_hubs_shutdown():
    unit = lines(render_unit(SETTINGS, "/srv/hubstack", COMMAND))
    for line in (
        "Requires=docker.service",
        "After=docker.service network-online.target",
        "Wants=network-online.target",
        "Type=notify",
        "Restart=on-failure",
        "RestartSec=10",
        "WorkingDirectory=/srv/hubstack",
        "EnvironmentFile=/srv/hubstack/.hubstack/hubsvc.env",
        "KillMode=mixed",
        "WantedBy=multi-user.target",
        "Environment=PYTHONUNBUFFERED=1",
        f"ExecStart={COMMAND.python} -m hubstack -C /srv/hubstack serve",
    ):
        assert line in unit
    stop = int(next(line for line in unit if line.startswith("TimeoutStopSec=")).split("=")[1])
    assert stop > 90  # compose.yml's stop_grace_period
    assert not any(line.startswith("ExecStop=") for line in unit)  # serve runs `down` on SIGTERM
    assert not any(line.startswith("Environment=PYTHONPATH") for line in unit)


def test_unit_sets_pythonpath_only_for_a_checkout_the_interpreter_cannot_import():
    unit = lines(render_unit(SETTINGS, "/srv/hubstack", Command("/usr/bin/python3", "/srv/hubstack")))
    assert "Environment=PYTHONPATH=/srv/hubstack" in unit
    command = this_command()  # the tests import hubstack from the checkout
    probe = subprocess.run(
        [command.python, "-s", "-c", "import hubstack; print(hubstack.__file__)"],
        cwd="/",
        capture_output=True,
        text=True,
        env={"PYTHONPATH": command.pythonpath} if command.pythonpath else {},
    )
    assert Path(probe.stdout.strip()).resolve() == REPO / "hubstack" / "__init__.py"


@pytest.mark.parametrize("project", ["/srv/hub stack", "/srv/100%", "/srv/$HOME", "relative/path"])
def test_unit_refuses_paths_it_would_have_to_escape(project):
    with pytest.raises(ServiceError, match="plain absolute path"):
        render_unit(SETTINGS, project, COMMAND)


def test_environment_file_pins_the_name_and_keeps_install_time_settings_only():
    environ = {
        "HUBSTACK_PORT": "8131",
        "DEV_MODE": "1",
        "HUBSTACK_OIDC_SCOPE": 'openid email "x" $y',
        "PATH": "/usr/bin",
        "HUBSTACK_NAME": "hubsvc",
    }
    text = render_env_file(SETTINGS, environ, KNOWN)
    body = lines(text)
    assert body[0] == "HUBSTACK_NAME=hubsvc"
    assert "HUBSTACK_PORT=8131" in body and "DEV_MODE=1" in body
    assert 'HUBSTACK_OIDC_SCOPE="openid email \\"x\\" \\$y"' in body
    assert not any(line.startswith(("PATH=", "HUBSTACK_BIND=")) for line in body)  # BIND: not given, .env decides
    assert sum(line.startswith("HUBSTACK_NAME=") for line in body) == 1


def test_systemd_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: install systemd (this project's hosts have it)"
    project = tmp_path / "checkout"
    (project / ".hubstack").mkdir(parents=True)
    (project / ".hubstack" / "hubsvc.env").write_text(render_env_file(SETTINGS, {}, KNOWN))
    unit = tmp_path / "hubstack-hubsvc.service"
    unit.write_text(render_unit(SETTINGS, project, COMMAND))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    # verify exits 0 on many mistakes (an unknown Type=, a misspelt key) but names them
    said = [line for line in (result.stdout + result.stderr).splitlines() if str(unit) in line or unit.name in line]
    assert result.returncode == 0 and not said, result.stdout + result.stderr


def test_systemd_analyze_catches_a_broken_unit(tmp_path):
    """The check above can fail: the same verify names a misspelt setting."""
    unit = tmp_path / "hubstack-broken.service"
    unit.write_text(render_unit(SETTINGS, tmp_path, COMMAND).replace("Type=notify", "Type=notfy"))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert "notfy" in result.stdout + result.stderr


def test_install_refuses_an_insecure_configuration_with_one_line():
    env = {"HUBSTACK_NAME": "hubsvc", "HUBSTACK_PORT": "8131", "DEV_MODE": "1", "HUBSTACK_BIND": "0.0.0.0"}
    result = CliRunner().invoke(cli.main, ["-C", str(REPO), "service", "install", "--print"], env=env)
    assert result.exit_code == 2
    said = result.output.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("hubstack: dev mode") and "HUBSTACK_BIND" in said[0]


def test_install_print_changes_nothing():
    env = {"HUBSTACK_NAME": "hubsvc", "HUBSTACK_PORT": "8131"}
    result = CliRunner().invoke(cli.main, ["-C", str(REPO), "service", "install", "--dev", "--print"], env=env)
    assert result.exit_code == 0, result.output
    assert "ExecStart=" in result.output and "DEV_MODE=1" in result.output
    assert not (REPO / ".hubstack" / "hubsvc.env").exists()
