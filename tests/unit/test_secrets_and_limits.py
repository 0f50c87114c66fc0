import stat

import pytest
from test_login import OIDC

from hubstack.common.contract import COOKIE_SECRET, CRYPT_KEY, METRICS_TOKEN
from hubstack.common.login import dev_metrics_token, load_login
from hubstack.common.parse import SettingsError
from hubstack.common.settings import load
from hubstack.secrets import init


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_init_makes_the_secrets_private_and_random(tmp_path):
    folder = tmp_path / "secrets"
    assert init(folder) == [(COOKIE_SECRET, "created"), (CRYPT_KEY, "created"), (METRICS_TOKEN, "created")]
    assert mode(folder) == 0o700
    values = []
    for name in (COOKIE_SECRET, CRYPT_KEY, METRICS_TOKEN):
        assert mode(folder / name) == 0o600
        value = (folder / name).read_text().strip()
        assert len(value) == 64 and int(value, 16) >= 0
        values.append(value)
    assert len(set(values)) == 3
    other = tmp_path / "other"
    init(other)
    assert (other / COOKIE_SECRET).read_text() != (folder / COOKIE_SECRET).read_text()


def test_init_never_overwrites(tmp_path):
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / COOKIE_SECRET).write_text("the operator's own\n")
    assert init(folder) == [(COOKIE_SECRET, "kept"), (CRYPT_KEY, "created"), (METRICS_TOKEN, "created")]
    assert (folder / COOKIE_SECRET).read_text() == "the operator's own\n"
    key = (folder / CRYPT_KEY).read_text()
    assert init(folder) == [(COOKIE_SECRET, "kept"), (CRYPT_KEY, "kept"), (METRICS_TOKEN, "kept")]
    assert (folder / CRYPT_KEY).read_text() == key


@pytest.fixture
def production_folders(tmp_path):
    secrets, access = tmp_path / "secrets", tmp_path / "access"
    init(secrets)
    for name in ("oauth_client_secret", "registry_consumer_secret"):
        (secrets / name).write_text("value")
        (secrets / name).chmod(0o600)
    access.mkdir()
    (access / "approvals.csv").write_text("email,approved_until\n")
    return secrets, access


def test_production_reads_the_generated_secrets(production_folders):
    login = load_login(OIDC, *production_folders)
    assert login.cookie_secret == (production_folders[0] / COOKIE_SECRET).read_text().strip()
    assert bytes.fromhex(login.crypt_key) and len(bytes.fromhex(login.crypt_key)) == 32
    assert login.metrics_token == (production_folders[0] / METRICS_TOKEN).read_text().strip()


@pytest.mark.parametrize("name", [COOKIE_SECRET, CRYPT_KEY, METRICS_TOKEN])
def test_production_refuses_without_a_generated_secret(production_folders, name):
    (production_folders[0] / name).unlink()
    with pytest.raises(SettingsError, match=f"missing secret ./secrets/{name}: create it with `hubstack secrets init`"):
        load_login(OIDC, *production_folders)


@pytest.mark.parametrize("value,match", [("short", "not 64 hex digits"), ("z" * 64, "not 64 hex digits")])
def test_production_refuses_a_malformed_generated_secret(production_folders, value, match):
    (production_folders[0] / CRYPT_KEY).write_text(value)
    with pytest.raises(SettingsError, match=match):
        load_login(OIDC, *production_folders)


def test_production_refuses_a_world_readable_cookie_secret(production_folders):
    (production_folders[0] / COOKIE_SECRET).chmod(0o644)
    with pytest.raises(SettingsError, match=f"chmod 600 ./secrets/{COOKIE_SECRET}"):
        load_login(OIDC, *production_folders)


def test_dev_mode_uses_the_metrics_token_if_made_and_refuses_a_loose_one(tmp_path):
    assert dev_metrics_token(tmp_path, "./secrets") is None
    init(tmp_path)
    assert dev_metrics_token(tmp_path, "./secrets") == (tmp_path / METRICS_TOKEN).read_text().strip()
    (tmp_path / METRICS_TOKEN).chmod(0o644)
    with pytest.raises(SettingsError, match=f"chmod 600 ./secrets/{METRICS_TOKEN}"):
        dev_metrics_token(tmp_path, "./secrets")


# -- user server limits ------------------------------------------------------------
def test_limit_defaults_suit_a_small_vm():
    limits = load(environ={}).limits
    assert (limits.mem_bytes, limits.cpus, limits.pids) == (2 * 1024**3, 1.0, 512)
    assert (limits.idle_timeout, limits.cull_every, limits.spawn_concurrency, limits.max_servers) == (3600, 300, 2, 0)


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("512M", 512 * 1024**2),
        ("1.5G", 1536 * 1024**2),
        ("2GiB", 2 * 1024**3),
        ("4g", 4 * 1024**3),
        ("268435456", 256 * 1024**2),
    ],
)
def test_memory_sizes(raw, expected):
    assert load(environ={"HUBSTACK_USER_MEM_LIMIT": raw}).limits.mem_bytes == expected


@pytest.mark.parametrize(
    "key,raw,match",
    [
        ("HUBSTACK_USER_MEM_LIMIT", "lots", "is not a memory size of 128M or more: use e.g. 2G"),
        ("HUBSTACK_USER_MEM_LIMIT", "64M", "is not a memory size of 128M or more"),
        ("HUBSTACK_USER_CPU_LIMIT", "0", "is not a number from 0.1 to 256"),
        ("HUBSTACK_USER_CPU_LIMIT", "nan", "is not a number from 0.1 to 256"),
        ("HUBSTACK_USER_PIDS_LIMIT", "10", "is not a number from 64"),
        ("HUBSTACK_USER_PIDS_LIMIT", "1.5", "is not a number from 64"),
        ("HUBSTACK_IDLE_TIMEOUT", "-1", "is not a number from 0"),
        ("HUBSTACK_SPAWN_CONCURRENCY", "0", "is not a number from 1"),
    ],
)
def test_bad_limits_are_one_line(key, raw, match):
    with pytest.raises(SettingsError, match=match) as err:
        load(environ={key: raw})
    assert str(err.value).startswith(f"{key}={raw!r}") and "\n" not in str(err.value)


def test_nothing_outside_the_home_grows_without_bound():
    host = load(environ={"HUBSTACK_TMP_SIZE": "256M"}).limits.host_config()
    assert host["read_only"] is True
    assert host["tmpfs"] == {"/tmp": f"rw,exec,nosuid,nodev,mode=1777,size={256 * 1024**2}"}
    assert load(environ={}).limits.tmp_bytes == 1024**3


@pytest.mark.parametrize(
    "key,raw,match",
    [
        ("HUBSTACK_TMP_SIZE", "8M", "is not a size of 16M or more: use e.g. 1G or 512M"),
        ("HUBSTACK_TMP_SIZE", "", "is not a size of 16M or more"),
        ("HUBSTACK_HOME_QUOTA", "10 gigs", "is not a size of 64M or more: use e.g. 10G, or off"),
        ("HUBSTACK_HOME_QUOTA", "1M", "is not a size of 64M or more"),
        ("HUBSTACK_MIN_FREE_DISK", "lots", "is not a size or a percentage: use e.g. 5G or 10%, or 0"),
        ("HUBSTACK_MIN_FREE_DISK", "95%", "is not a percentage from 0% to 90%"),
        ("HUBSTACK_MIN_FREE_DISK", "x%", "is not a percentage from 0% to 90%"),
    ],
)
def test_bad_disk_settings_are_one_line(key, raw, match):
    with pytest.raises(SettingsError, match=match) as err:
        load(environ={key: raw})
    assert str(err.value).startswith(f"{key}={raw!r}") and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "raw,quota", [("", None), ("off", None), ("0", None), ("10G", 10 * 1024**3), ("200M", 200 * 1024**2)]
)
def test_home_quota(raw, quota):
    assert load(environ={"HUBSTACK_HOME_QUOTA": raw}).disk.home_quota == quota


GIB = 1024**3


@pytest.mark.parametrize(
    "raw,total,free,new_home,refused",
    [
        ("5G", 100 * GIB, 6 * GIB, False, False),
        ("5G", 100 * GIB, 4 * GIB, False, True),
        ("10%", 100 * GIB, 11 * GIB, False, False),
        ("10%", 100 * GIB, 9 * GIB, False, True),
        ("0", 100 * GIB, 0, False, False),
        ("5G", 100 * GIB, 20 * GIB, True, False),  # quota 10G: 10G left, above 5G
        ("5G", 100 * GIB, 14 * GIB, True, True),  # 4G would be left
        ("5G", 100 * GIB, 14 * GIB, False, False),  # an existing home is reserved already
    ],
)
def test_spawns_wait_while_docker_disk_is_short(raw, total, free, new_home, refused):
    policy = load(environ={"HUBSTACK_MIN_FREE_DISK": raw, "HUBSTACK_HOME_QUOTA": "10G"}).disk
    why = policy.shortfall(free, total, new_home=new_home)
    assert (why is not None) == refused
    if refused:
        assert f"HUBSTACK_MIN_FREE_DISK={raw}" in why and "free on Docker's disk" in why


@pytest.mark.parametrize("timeout,every", [(20, 10), (600, 100), (3600, 300), (86400, 300)])
def test_the_culler_looks_often_enough_for_its_timeout(timeout, every):
    assert load(environ={"HUBSTACK_IDLE_TIMEOUT": str(timeout)}).limits.cull_every == every
