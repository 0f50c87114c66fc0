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
