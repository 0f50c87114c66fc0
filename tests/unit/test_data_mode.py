"""Never dev mode on production data; production on dev data only when adopted (policy.check_data_mode)."""

import pytest

from hubstack.common.parse import SettingsError
from hubstack.common.policy import check_data_mode
from hubstack.common.settings import load

DEV = load(environ={"DEV_MODE": "1"})
PRODUCTION = load(environ={})
ADOPTING = load(environ={"HUBSTACK_ADOPT_DEV_DATA": "1"})


def test_new_data_takes_the_mode_it_is_made_in():
    assert check_data_mode(None, DEV) == "dev" and check_data_mode(None, PRODUCTION) == "production"
    assert check_data_mode("dev", DEV) is None and check_data_mode("production", PRODUCTION) is None


def test_dev_mode_refuses_production_data_with_the_fix():
    with pytest.raises(
        SettingsError, match="made in production: dev mode would let anyone log in .*another HUBSTACK_NAME"
    ):
        check_data_mode("production", DEV)


def test_production_takes_over_dev_data_only_when_told():
    with pytest.raises(SettingsError, match="made in dev mode.*HUBSTACK_ADOPT_DEV_DATA=1"):
        check_data_mode("dev", PRODUCTION)
    assert check_data_mode("dev", ADOPTING) == "production"
    with pytest.raises(SettingsError, match="HUBSTACK_ADOPT_DEV_DATA=1 is for a production start"):
        check_data_mode(None, load(environ={"DEV_MODE": "1", "HUBSTACK_ADOPT_DEV_DATA": "1"}))
