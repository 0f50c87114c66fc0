"""`hubstack secrets init`: the secrets the hub makes for itself, made once.

The cookie secret and the auth-state crypt key are random; nobody needs to
know them, but they must survive rebuilds and never change by accident (a new
cookie secret logs everyone out, a new crypt key loses the OAuth tokens kept
in auth state). So they are created only where no file is, never overwritten.
"""

import os
import secrets as random
from pathlib import Path

from .common.contract import GENERATED_SECRETS


def init(folder):
    """Create the missing generated secrets in folder; returns [(name, 'created' | 'kept')]."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    report = []
    for name in GENERATED_SECRETS:
        path = folder / name
        try:
            # O_EXCL: an existing file (even one that appeared a moment ago) is never replaced.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            report.append((name, "kept"))
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(random.token_hex(32) + "\n")
        report.append((name, "created"))
    return report
