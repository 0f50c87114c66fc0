"""Exit codes from one table; the one address where the CLI and doctor find the published ports."""

from types import SimpleNamespace

import pytest

from hubstack import errors
from hubstack.common.parse import SettingsError
from hubstack.common.settings import load
from hubstack.stack import exits_at_start


@pytest.mark.parametrize(
    "err,code",
    [
        (SettingsError("x"), 2),
        (errors.EngineError("x"), 3),
        (errors.BuildError("image hub", "x", "/nonexistent.log"), 4),
        (errors.HubNotHealthy("x"), 5),
        (errors.ComposeError("x"), 1),
        (errors.ServiceError("x"), 1),
    ],
)
def test_each_error_has_its_exit_code_and_help_lists_them(err, code):
    assert errors.exit_code(err) == code
    assert f"{code} " in errors.exit_code_help()


@pytest.mark.parametrize(
    "bind,host",
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("::1", "::1"), ("10.1.2.3", "10.1.2.3")],
)
def test_published_ports_are_asked_on_one_local_address(bind, host):
    assert load(environ={"HUBSTACK_BIND": bind}).local_host == host


def container(id, restarts, status="running"):
    return SimpleNamespace(id=id, status=status, attrs={"RestartCount": restarts})


def test_a_restart_counts_as_exiting_at_start_only_if_it_happened_after_up():
    assert not exits_at_start(container("a", 3), ("a", 3))  # restarted long ago, before this `up`
    assert exits_at_start(container("a", 4), ("a", 3))  # restarted since
    assert exits_at_start(container("b", 1), ("a", 3))  # recreated by Compose, then restarted
    assert exits_at_start(container("b", 0, "exited"), ("a", 3))
    assert not exits_at_start(None, (None, 0))
