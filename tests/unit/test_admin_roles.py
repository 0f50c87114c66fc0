"""Operators run the hub without reading researchers' data (hubstack_hub.roles)."""

from hubstack_hub.roles import CLI_SERVICE, OPERATOR, admin_roles, cli_service

NEVER = {"access:servers", "tokens", "admin:auth_state", "admin:users", "shares", "proxy", "shutdown"}


def by_name(roles):
    return {role["name"]: role for role in roles}


def test_operators_get_a_role_without_access_to_servers_tokens_or_auth_state():
    roles = by_name(admin_roles({"b@x.org", "a@x.org"}, {"org:ops"}, full_access=False))
    operator = roles[OPERATOR]
    assert (operator["users"], operator["groups"]) == (["a@x.org", "b@x.org"], ["org:ops"])
    assert not NEVER & set(operator["scopes"])
    assert {"admin-ui", "list:users", "admin:servers", "delete:users"} <= set(operator["scopes"])
    # JupyterHub's admin role is given, exactly, to nobody: a former admin loses it at the next start.
    assert roles["admin"] == {"name": "admin", "services": [], "users": [], "groups": []}


def test_full_access_only_when_asked_for():
    roles = by_name(admin_roles({"a@x.org"}, set(), full_access=True))
    assert roles["admin"]["users"] == ["a@x.org"] and roles[OPERATOR]["users"] == []


def test_the_cli_service_lists_stops_and_deletes_and_nothing_more():
    service, role = cli_service("t" * 64)
    assert service == {"name": CLI_SERVICE, "api_token": "t" * 64, "display": False}
    assert role["services"] == [CLI_SERVICE] and role["name"] == CLI_SERVICE
    assert set(role["scopes"]) == {"list:users", "read:users", "read:servers", "delete:servers", "delete:users"}
    assert not NEVER & set(role["scopes"])
