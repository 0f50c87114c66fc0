"""A researcher's browser, in Python: what the integration tests and the
benchmarks use to log in, start a server and run code, as people do.

`BrowserUser` logs in through the hub's form (dev mode), `OIDCUser` through
an OpenID Connect provider's; both start servers from /hub/spawn and run
code over the kernel websocket. No admin token, no internal API.
"""

from .browser import BrowserUser, HubError, KernelDied, OIDCUser

__all__ = ["BrowserUser", "HubError", "KernelDied", "OIDCUser"]
