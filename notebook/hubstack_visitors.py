"""A Jupyter server extension: visitors of a shared server lose it the moment the hub says so.

With a share (JupyterHub's sharing, README.md 'Sharing') a colleague, a
visitor, works in this server. The hub ends a visitor's way in by deleting
their tokens or the share; but this server caches the hub's answer about a
token for minutes (HubAuth.cache_max_age) and never asks again about a
websocket it has opened: a kernel, a notebook edited together. So every few
seconds, for each visitor seen lately, this asks the hub again, uncached. A
token the hub no longer honours, or that lost access to this server, is
dropped from the cache and its open websockets are closed; the next request
goes back to the hub and is refused. The owner is never asked about: their
access ends by the server being stopped. With no visitor, it costs nothing.
"""

import hashlib
import os
import time
import weakref

from tornado.ioloop import PeriodicCallback
from tornado.websocket import WebSocketHandler

EVERY_SECONDS = 5


class Visitors:
    def __init__(self, hub_auth, owner, log):
        self.hub_auth, self.owner, self.log = hub_auth, owner, log
        self.seen = {}  # token -> (visitor's name, when last seen)
        self.sockets = {}  # token -> the visitor's websocket handlers (weakly)
        self.checking = False

    def saw(self, handler, user):
        if user is None or user.username == self.owner:
            return
        token = self.hub_auth.get_token(handler)
        if not token:
            return
        self.seen[token] = (user.username, time.monotonic())
        if isinstance(handler, WebSocketHandler):
            self.sockets.setdefault(token, weakref.WeakSet()).add(handler)

    async def check(self):
        if self.checking:  # a slow hub: one round at a time
            return
        self.checking = True
        try:
            for token, (name, last) in list(self.seen.items()):
                await self.check_one(token, name, last)
        finally:
            self.checking = False

    async def check_one(self, token, name, last):
        sockets = [h for h in list(self.sockets.get(token, ())) if h.ws_connection is not None]
        if not sockets and time.monotonic() - last > self.hub_auth.cache_max_age + EVERY_SECONDS:
            self.forget(token)  # gone quiet: its cached answer has expired, the hub is asked anyway
            return
        try:
            model = await self.hub_auth.user_for_token(token, use_cache=False, sync=False)
        except Exception as err:  # noqa: BLE001 - the hub did not answer: not an answer, ask again next round
            self.log.warning("hubstack: could not re-check visitor %s: %s", name, err)
            return
        if model and self.hub_auth.check_scopes(self.hub_auth.access_scopes, model):
            return
        self.evict(token)
        for handler in sockets:
            handler.close(1008, "Your access to this server has ended")
        self.forget(token)
        self.log.warning("hubstack: access of visitor %s ended: %d connection(s) closed", name, len(sockets))

    def evict(self, token):
        """Drop the hub's cached answers about token (keyed 'token:<session>:<sha256>')."""
        digest = ":" + hashlib.sha256(token.encode("utf8", "replace")).hexdigest()
        cache = self.hub_auth.cache
        for key in [k for k in list(cache.values) if str(k).endswith(digest)]:
            cache.values.pop(key, None)
            cache.timestamps.pop(key, None)

    def forget(self, token):
        self.seen.pop(token, None)
        self.sockets.pop(token, None)


def _jupyter_server_extension_points():
    return [{"module": "hubstack_visitors"}]


def _load_jupyter_server_extension(serverapp):
    provider = serverapp.identity_provider
    hub_auth = getattr(provider, "hub_auth", None)
    if hub_auth is None:
        return  # not started by JupyterHub: nobody visits
    visitors = Visitors(hub_auth, os.environ.get("JUPYTERHUB_USER", ""), serverapp.log)
    get_user = provider.get_user

    async def get_user_and_note_visitors(handler):
        user = await get_user(handler)
        visitors.saw(handler, user)
        return user

    provider.get_user = get_user_and_note_visitors
    PeriodicCallback(visitors.check, EVERY_SECONDS * 1000).start()
