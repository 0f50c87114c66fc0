"""Who runs the hub, and what that lets them do.

The people in HUBSTACK_ADMIN_USERS (and the provider groups in
HUBSTACK_ADMIN_GROUPS) are operators: they list users, see and stop servers
and delete users, but never open a researcher's server or act as them
(no `access:servers`, no `tokens`, no `admin:auth_state`), so being an
operator is not a way round the data office. JupyterHub's own admin role,
which has all of that, goes to them only with HUBSTACK_ADMIN_FULL_ACCESS=1,
and the audit log says so at every start.

Both roles are given with exact member lists: JupyterHub then removes the
role from anyone no longer listed when it starts.

The operator's CLI (`hubstack users`) reads and deletes users as the service
CLI_SERVICE, whose role can do only that: list users and their servers, stop
servers, delete users (hubstack_hub.users keeps its token).
"""

OPERATOR = "hubstack-operator"
OPERATOR_SCOPES = [
    "admin-ui",
    "list:users",
    "read:users",
    "delete:users",
    "admin:servers",
    "read:roles",
    "read:hub",
    "list:services",
    "read:services",
    "read:metrics",
]

CLI_SERVICE = "hubstack-cli"
CLI_SCOPES = ["list:users", "read:users", "read:servers", "delete:servers", "delete:users"]


def cli_service(token):
    """(c.JupyterHub.services entry, c.JupyterHub.load_roles entry) of the operator's CLI."""
    service = {"name": CLI_SERVICE, "api_token": token, "display": False}
    role = {
        "name": CLI_SERVICE,
        "description": "hubstack users: list users, stop their servers, delete them",
        "scopes": CLI_SCOPES,
        "services": [CLI_SERVICE],
    }
    return service, role


def admin_roles(users, groups, full_access):
    """JupyterHub role specifications (c.JupyterHub.load_roles) for the hub's operators."""
    users, groups = sorted(users), sorted(groups)
    none = {"users": [], "groups": []}
    listed = {"users": users, "groups": groups}
    return [
        {"name": "admin", "services": [], **(listed if full_access else none)},
        {
            "name": OPERATOR,
            "description": "Runs the hub: users and servers, never a researcher's files or tokens",
            "scopes": OPERATOR_SCOPES,
            **(none if full_access else listed),
        },
    ]
