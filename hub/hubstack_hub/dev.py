"""Dev mode's log-in (DEV_MODE=1, loopback only): JupyterHub's dummy and
shared-password authenticators, with the same user-name rules as production."""

from jupyterhub.auth import DummyAuthenticator
from jupyterhub.authenticators.shared import SharedPasswordAuthenticator

from .names import SafeUserNames
from .sharing import ShareHandlers


class DevAuthenticator(SafeUserNames, ShareHandlers, DummyAuthenticator):
    """Any user name that passes the rules logs in, with no password."""


class DevPasswordAuthenticator(SafeUserNames, ShareHandlers, SharedPasswordAuthenticator):
    """Any user name that passes the rules logs in, with the one shared password."""
