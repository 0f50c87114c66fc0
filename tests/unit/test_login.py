import pytest

from hubstack.common.login import Login, load_login
from hubstack.common.parse import SettingsError
from hubstack.common.policy import check_mode
from hubstack.common.settings import load
from hubstack.secrets import init

OIDC = {
    "HUBSTACK_OAUTH_PROVIDER": "oidc",
    "OAUTH_CLIENT_ID": "hub-client",
    "OAUTH_CALLBACK_URL": "https://hub.example.org/hub/oauth_callback",
    "OAUTH2_AUTHORIZE_URL": "https://idp.example.org/authorize",
    "OAUTH2_TOKEN_URL": "https://idp.example.org/token",
    "OAUTH2_USERDATA_URL": "https://idp.example.org/userinfo",
    "HUBSTACK_ACCESS_SOURCES": "registry,list",
    "HUBSTACK_REGISTRY_URL": "https://registry.example.org/api/",
    "HUBSTACK_REGISTRY_CONSUMER_KEY": "consumer-key",
}


@pytest.fixture
def folders(tmp_path):
    secrets, access = tmp_path / "secrets", tmp_path / "access"
    secrets.mkdir()
    access.mkdir()
    init(secrets)
    for name, value in (("oauth_client_secret", "client-secret\n"), ("registry_consumer_secret", "consumer-secret")):
        (secrets / name).write_text(value)
        (secrets / name).chmod(0o600)
    (access / "approvals.csv").write_text("email,approved_until\n")
    return secrets, access


def login(folders, drop=(), **changes):
    raw = {k: v for k, v in {**OIDC, **changes}.items() if k not in drop}
    return load_login(raw, *folders)


def refused(folders, match, drop=(), **changes):
    with pytest.raises(SettingsError, match=match) as err:
        login(folders, drop=drop, **changes)
    assert "\n" not in str(err.value)


def test_complete_oidc_configuration(folders):
    got = login(folders)
    assert isinstance(got, Login)
    assert (got.provider, got.client_id, got.client_secret) == ("oidc", "hub-client", "client-secret")
    assert got.token_url == "https://idp.example.org/token"
    assert got.scope == ("openid", "email")
    assert got.sources == ("registry", "list")
    assert got.registry_url == "https://registry.example.org/api"  # trailing slash removed
    assert (got.registry_auth, got.registry_key, got.registry_secret) == (
        "oauth1-hmac-sha1",
        "consumer-key",
        "consumer-secret",
    )
    assert got.approval_list == folders[1] / "approvals.csv"
    assert (got.registry_timeout, got.cache_seconds, got.recheck_seconds) == (5.0, 180, 300)
    assert got.require_cloud_access is False


def test_check_mode_returns_the_login(folders):
    settings = load(environ=OIDC)
    assert check_mode(settings, *folders) == login(folders)


@pytest.mark.parametrize(
    "drop,changes,match",
    [
        (["HUBSTACK_OAUTH_PROVIDER"], {}, "set HUBSTACK_OAUTH_PROVIDER"),
        ([], {"HUBSTACK_OAUTH_PROVIDER": "facebook"}, "HUBSTACK_OAUTH_PROVIDER='facebook' is not known"),
        (["OAUTH_CLIENT_ID"], {}, "OAUTH_CLIENT_ID is not set"),
        (["OAUTH2_TOKEN_URL"], {}, "OAUTH2_TOKEN_URL is not set"),
        (["HUBSTACK_ACCESS_SOURCES"], {}, "HUBSTACK_ACCESS_SOURCES is not set"),
        ([], {"HUBSTACK_ACCESS_SOURCES": "registry,ldap"}, "HUBSTACK_ACCESS_SOURCES has 'ldap'"),
        (["HUBSTACK_REGISTRY_URL"], {}, "HUBSTACK_REGISTRY_URL is not set"),
        (["HUBSTACK_REGISTRY_CONSUMER_KEY"], {}, "HUBSTACK_REGISTRY_CONSUMER_KEY is not set"),
        ([], {"HUBSTACK_GITHUB_ORGS": "icgc"}, "HUBSTACK_GITHUB_ORGS only applies to HUBSTACK_OAUTH_PROVIDER=github"),
        ([], {"HUBSTACK_REGISTRY_TIMEOUT": "soon"}, "HUBSTACK_REGISTRY_TIMEOUT='soon' is not a number of seconds"),
        ([], {"HUBSTACK_REGISTRY_TIMEOUT": "600"}, "HUBSTACK_REGISTRY_TIMEOUT='600'"),
        ([], {"HUBSTACK_ACCESS_CACHE": "-1"}, "HUBSTACK_ACCESS_CACHE='-1'"),
    ],
)
def test_each_missing_or_wrong_piece_is_named(folders, drop, changes, match):
    refused(folders, match, drop=drop, **changes)


def test_admin_groups_need_a_provider_with_groups(folders):
    refused(
        folders,
        "HUBSTACK_ADMIN_GROUPS needs a provider",
        HUBSTACK_OAUTH_PROVIDER="google",
        HUBSTACK_ADMIN_GROUPS="admins",
    )


def test_admin_groups_with_oidc_are_fine(folders):
    assert login(folders, HUBSTACK_ADMIN_GROUPS="admins").admin_groups == {"admins"}


def test_missing_client_secret_names_the_file(folders):
    (folders[0] / "oauth_client_secret").unlink()
    refused(folders, "missing secret ./secrets/oauth_client_secret")


def test_world_readable_secret_is_refused(folders):
    (folders[0] / "oauth_client_secret").chmod(0o644)
    refused(folders, r"secret ./secrets/oauth_client_secret is readable by anyone.*chmod 600")


@pytest.mark.parametrize("mode", [0o640, 0o620, 0o610])
def test_group_readable_secret_is_refused_like_a_world_readable_one(folders, mode):
    (folders[0] / "oauth_client_secret").chmod(mode)
    refused(folders, rf"secret ./secrets/oauth_client_secret can be read by its group too \(mode {mode:o}\).*chmod 600")


def test_empty_secret_is_refused(folders):
    (folders[0] / "oauth_client_secret").write_text("  \n")
    refused(folders, "secret ./secrets/oauth_client_secret is empty")


def test_secret_file_name_follows_the_secrets_dir_setting(folders):
    (folders[0] / "registry_consumer_secret").unlink()
    refused(folders, "missing secret ./private/registry_consumer_secret", HUBSTACK_SECRETS_DIR="./private/")


def test_bearer_needs_its_token_file(folders):
    refused(folders, "missing secret ./secrets/registry_token", HUBSTACK_REGISTRY_AUTH="bearer")
    (folders[0] / "registry_token").write_text("tok")
    (folders[0] / "registry_token").chmod(0o600)
    got = login(folders, HUBSTACK_REGISTRY_AUTH="bearer", drop=["HUBSTACK_REGISTRY_CONSUMER_KEY"])
    assert (got.registry_auth, got.registry_secret) == ("bearer", "tok")


def test_list_source_needs_the_approval_list(folders):
    (folders[1] / "approvals.csv").unlink()
    refused(folders, "HUBSTACK_ACCESS_SOURCES has list but ./access/approvals.csv does not exist")


@pytest.mark.parametrize(
    "key,url",
    [
        ("OAUTH2_AUTHORIZE_URL", "http://idp.example.org/authorize"),
        ("OAUTH2_AUTHORIZE_URL", "http://oidc:9400/authorize"),  # the browser cannot reach the stack's network
        ("OAUTH2_TOKEN_URL", "http://idp.example.org/token"),
        ("OAUTH2_TOKEN_URL", "http://10.0.0.5/token"),
        ("OAUTH_CALLBACK_URL", "http://hub.example.org/hub/oauth_callback"),
        ("HUBSTACK_REGISTRY_URL", "http://registry.example.org/api"),
    ],
)
def test_plain_http_is_refused_off_this_machine(folders, key, url):
    refused(folders, f"{key}='{url}' is plain http: use https", **{key: url})


@pytest.mark.parametrize(
    "key,url",
    [
        ("OAUTH2_AUTHORIZE_URL", "http://127.0.0.1:9400/authorize"),
        ("OAUTH2_AUTHORIZE_URL", "http://localhost:9400/authorize"),
        ("OAUTH2_TOKEN_URL", "http://oidc:9400/token"),
        ("OAUTH2_USERDATA_URL", "http://oidc:9400/userinfo"),
        ("OAUTH_CALLBACK_URL", "http://127.0.0.1:8000/hub/oauth_callback"),
        ("HUBSTACK_REGISTRY_URL", "http://registry:8080/api"),
    ],
)
def test_plain_http_is_accepted_on_this_machine_or_the_stack_network(folders, key, url):
    assert (
        getattr(
            login(folders, **{key: url}),
            {
                "OAUTH2_AUTHORIZE_URL": "authorize_url",
                "OAUTH2_TOKEN_URL": "token_url",
                "OAUTH2_USERDATA_URL": "userdata_url",
                "OAUTH_CALLBACK_URL": "callback_url",
                "HUBSTACK_REGISTRY_URL": "registry_url",
            }[key],
        )
        == url
    )


def test_callback_must_be_the_hub_callback(folders):
    refused(folders, "must end in /hub/oauth_callback", OAUTH_CALLBACK_URL="https://hub.example.org/callback")


def test_oidc_scope_needs_email(folders):
    refused(folders, "HUBSTACK_OIDC_SCOPE='openid profile' lacks 'email'", HUBSTACK_OIDC_SCOPE="openid profile")


# -- through settings.load ----------------------------------------------------------------------
def test_client_secret_in_the_environment_is_refused():
    with pytest.raises(
        SettingsError, match="OAUTH_CLIENT_SECRET is set in the environment.*secrets/oauth_client_secret"
    ):
        load(environ={**OIDC, "OAUTH_CLIENT_SECRET": "leak"})


@pytest.mark.parametrize("key", ["HUBSTACK_SECRETS_DIR", "HUBSTACK_ACCESS_DIR"])
@pytest.mark.parametrize("value", ["secrets", "./my secrets", "./a:b", "$HOME/x"])
def test_folders_must_be_mountable_paths(key, value):
    with pytest.raises(SettingsError, match=f"{key}=.*is not a folder path"):
        load(environ={key: value})


@pytest.mark.parametrize("value", ["./secrets", "../shared/secrets", "/etc/hubstack/secrets"])
def test_good_folder_paths(value):
    assert load(environ={"HUBSTACK_SECRETS_DIR": value}).raw["HUBSTACK_SECRETS_DIR"] == value


def test_dev_password_outside_dev_mode_is_refused(folders):
    settings = load(environ={**OIDC, "HUBSTACK_DEV_PASSWORD": "long-enough-pw"})
    with pytest.raises(SettingsError, match="HUBSTACK_DEV_PASSWORD is a dev-mode setting"):
        check_mode(settings, *folders)


def test_insecure_dev_outside_dev_mode_is_refused(folders):
    settings = load(environ={**OIDC, "HUBSTACK_ALLOW_INSECURE_DEV": "1"})
    with pytest.raises(SettingsError, match="HUBSTACK_ALLOW_INSECURE_DEV is a dev-mode setting"):
        check_mode(settings, *folders)


def test_dev_mode_has_no_login(tmp_path):
    # even with no secrets and no approval list at all
    assert check_mode(load(environ={"DEV_MODE": "1"}), tmp_path / "none", tmp_path / "none") is None


def test_outage_grace_is_seconds_or_off(folders):
    assert login(folders).outage_grace == 3600
    assert login(folders, HUBSTACK_ACCESS_OUTAGE_GRACE="off").outage_grace is None
    assert login(folders, HUBSTACK_ACCESS_OUTAGE_GRACE="600").outage_grace == 600
    refused(
        folders, "HUBSTACK_ACCESS_OUTAGE_GRACE='soon' is not a number of seconds", HUBSTACK_ACCESS_OUTAGE_GRACE="soon"
    )
