"""The CLI's errors and what each exit code means: the one table.

Every error the CLI reports is one line (what went wrong, what to do) and
one exit code; `hubstack --help` prints this table.
"""

from .common.parse import SettingsError


class HubstackError(RuntimeError):
    exit_code = 1


class ComposeError(HubstackError):
    """Compose is missing or one of its commands failed."""


class ServiceError(HubstackError):
    """systemd is missing, or a unit could not be written or started."""


class EngineError(HubstackError):
    exit_code = 3


class BuildError(HubstackError):
    exit_code = 4

    def __init__(self, step, reason, log_path):
        self.step, self.reason, self.log_path = step, reason, log_path
        super().__init__(f"{step} failed: {reason}")

    def tail(self, lines=20):
        from collections import deque

        try:
            with open(self.log_path, errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except OSError:
            return ""


class HubNotHealthy(HubstackError):
    exit_code = 5


SETTINGS_EXIT = 2  # SettingsError lives in hubstack.common (the images have it), so it carries no code itself


class NotConfirmed(HubstackError):
    """The operator did not type the exact name of what is to be deleted: nothing was."""

    exit_code = SETTINGS_EXIT


# (code, meaning), in the order `--help` shows them.
EXIT_CODES = (
    (0, "done"),
    (1, "anything else (Compose or systemd failed, a check found something to fix)"),
    (SETTINGS_EXIT, "a setting or argument to fix, or a confirmation that did not match"),
    (EngineError.exit_code, "no Docker engine"),
    (BuildError.exit_code, "a build step failed"),
    (HubNotHealthy.exit_code, "the hub did not become healthy"),
)
ACCESS_UNAVAILABLE = 6  # `hubstack access check`: no source could answer


def exit_code(err):
    if isinstance(err, SettingsError):
        return SETTINGS_EXIT
    return getattr(err, "exit_code", 1)


def exit_code_help():
    return "Exit codes: " + ", ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES) + "."
