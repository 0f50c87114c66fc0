import pytest

from hubstack.common.parse import SettingsError
from hubstack.common.policy import check_mode
from hubstack.common.registry import KNOWN
from hubstack.common.settings import load


def test_defaults_name_every_resource_of_the_instance():
    s = load(environ={})
    assert (s.name, s.port, s.bind, s.dev_mode) == ("hubstack", 8000, "127.0.0.1", False)
    assert s.names.network == "hubstack-net"
    assert s.names.hub_data_volume == "hubstack-hub-data"
    assert s.names.image("notebook") == "hubstack-notebook"
    assert s.names.home_volume_template == "hubstack-home-{username}"
    assert s.url == "http://127.0.0.1:8000"


def test_environment_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("HUBSTACK_PORT=8100\nHUBSTACK_NAME=fromfile\n")
    s = load(environ={"HUBSTACK_PORT": "8200"}, dotenv_path=dotenv)
    assert (s.name, s.port) == ("fromfile", 8200)


def test_override_wins_over_everything():
    assert load(environ={"DEV_MODE": "0"}, DEV_MODE="1").dev_mode is True


@pytest.mark.parametrize("value", ["abc", "0", "70000", "80.5", ""])
def test_port_must_be_a_port(value):
    with pytest.raises(SettingsError, match="HUBSTACK_PORT=.*use a number from 1 to 65535"):
        load(environ={"HUBSTACK_PORT": value})


@pytest.mark.parametrize("value,expected", [("1", True), ("yes", True), ("TRUE", True), ("0", False), ("off", False)])
def test_yes_no_values(value, expected):
    assert load(environ={"DEV_MODE": value}).dev_mode is expected


def test_unknown_value_names_the_fix():
    with pytest.raises(SettingsError, match=r"DEV_MODE='maybe' is not a yes/no value: use 1 or 0"):
        load(environ={"DEV_MODE": "maybe"})


def test_unknown_setting_suggests_the_known_one(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("HUBSTACK_PROT=8000\n")
    with pytest.raises(SettingsError, match="unknown setting HUBSTACK_PROT .*did you mean HUBSTACK_PORT"):
        load(environ={}, dotenv_path=dotenv)


@pytest.mark.parametrize("name", ["Hub", "hub_1", "-hub", "hub-", "a" * 33, "hub stack", ""])
def test_instance_name_must_fit_docker_names(name):
    with pytest.raises(SettingsError, match="HUBSTACK_NAME"):
        load(environ={"HUBSTACK_NAME": name})


@pytest.mark.parametrize("name", ["h", "hubstack", "hub-2", "ci0"])
def test_good_instance_names(name):
    assert load(environ={"HUBSTACK_NAME": name}).name == name


def test_bind_must_be_an_address():
    with pytest.raises(SettingsError, match="HUBSTACK_BIND='localhost' is not an IP address"):
        load(environ={"HUBSTACK_BIND": "localhost"})


def test_dev_mode_refuses_public_bind():
    s = load(environ={"DEV_MODE": "1", "HUBSTACK_BIND": "0.0.0.0"})
    with pytest.raises(SettingsError, match="set HUBSTACK_BIND=127.0.0.1"):
        check_mode(s, "/nonexistent/secrets", "/nonexistent/access")


def test_dev_mode_on_public_bind_only_when_explicitly_allowed():
    s = load(environ={"DEV_MODE": "1", "HUBSTACK_BIND": "0.0.0.0", "HUBSTACK_ALLOW_INSECURE_DEV": "1"})
    check_mode(s, "/nonexistent/secrets", "/nonexistent/access")
    assert s.url == "http://127.0.0.1:8000"


def test_dev_mode_on_loopback_is_fine():
    check_mode(
        load(environ={"DEV_MODE": "1", "HUBSTACK_BIND": "127.0.0.2"}), "/nonexistent/secrets", "/nonexistent/access"
    )


def test_production_without_login_configuration_is_refused():
    with pytest.raises(SettingsError, match="set HUBSTACK_OAUTH_PROVIDER .google, github or oidc."):
        check_mode(load(environ={}), "/nonexistent/secrets", "/nonexistent/access")


def test_short_dev_password_is_refused():
    with pytest.raises(SettingsError, match="8 characters"):
        load(environ={"HUBSTACK_DEV_PASSWORD": "short"})


def test_as_environment_round_trips():
    s = load(environ={"HUBSTACK_NAME": "two", "HUBSTACK_PORT": "8001", "DEV_MODE": "1"})
    assert load(environ=s.as_environment()) == s
    assert set(s.as_environment()) == set(KNOWN)


def test_errors_are_one_line():
    for environ in ({"HUBSTACK_PORT": "x"}, {"DEV_MODE": "2"}, {"HUBSTACK_NAME": "X"}, {"HUBSTACK_BIND": "?"}):
        with pytest.raises(SettingsError) as err:
            load(environ=environ)
        assert "\n" not in str(err.value)
