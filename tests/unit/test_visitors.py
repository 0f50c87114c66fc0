"""notebook/hubstack_visitors.py: a shared server re-asks the hub about its visitors and shuts out the refused."""

import asyncio
import hashlib
from types import SimpleNamespace

from tornado.websocket import WebSocketHandler

from hubstack_visitors import EVERY_SECONDS, Visitors

OWNER, VISITOR = "ana@example.org", "bo@example.org"
ACCESS = {f"access:servers!server={OWNER}/"}


class HubAuth:
    """HubAuth's surface that the extension uses, answering from a table of tokens."""

    cache_max_age = 300
    access_scopes = ACCESS

    def __init__(self, answers):
        self.answers, self.asked = answers, []
        self.cache = SimpleNamespace(values={}, timestamps={})

    def get_token(self, handler):
        return handler.token

    async def user_for_token(self, token, use_cache=True, sync=True):
        self.asked.append((token, use_cache))
        answer = self.answers[token]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def check_scopes(self, required, model):
        return set(model["scopes"]) & set(required)

    def cached(self, token, session="s1"):
        key = f"token:{session}:{hashlib.sha256(token.encode()).hexdigest()}"
        self.cache.values[key], self.cache.timestamps[key] = {"name": "x"}, 0
        return key


class Socket(WebSocketHandler):
    def __init__(self, token):  # no request: only what the extension looks at
        self.token, self.ws_connection, self.closed = token, object(), None

    def close(self, code=None, reason=None):
        self.closed, self.ws_connection = (code, reason), None


def person(name):
    return SimpleNamespace(username=name)


def watch(answers):
    hub = HubAuth(answers)
    return hub, Visitors(hub, OWNER, SimpleNamespace(warning=lambda *a: None))


def test_a_refused_visitor_loses_cached_answers_and_open_websockets():
    hub, visitors = watch({"bo-token": None, "cy-token": {"name": "cy", "scopes": sorted(ACCESS)}})
    bo_socket, cy_socket = Socket("bo-token"), Socket("cy-token")
    visitors.saw(bo_socket, person(VISITOR))
    visitors.saw(cy_socket, person("cy@example.org"))
    bo_key, cy_key = hub.cached("bo-token"), hub.cached("cy-token")
    asyncio.run(visitors.check())
    assert bo_socket.closed == (1008, "Your access to this server has ended")
    assert bo_key not in hub.cache.values and cy_key in hub.cache.values
    assert cy_socket.closed is None and "cy-token" in visitors.seen and "bo-token" not in visitors.seen
    assert all(use_cache is False for _, use_cache in hub.asked)


def test_a_token_that_lost_access_to_this_server_is_refused_too():
    hub, visitors = watch({"bo-token": {"name": VISITOR, "scopes": ["read:users:name"]}})
    socket = Socket("bo-token")
    visitors.saw(socket, person(VISITOR))
    asyncio.run(visitors.check())
    assert socket.closed is not None


def test_the_owner_is_never_asked_about():
    hub, visitors = watch({})
    visitors.saw(Socket("ana-token"), person(OWNER))
    asyncio.run(visitors.check())
    assert visitors.seen == {} and hub.asked == []


def test_a_hub_that_does_not_answer_closes_nothing():
    hub, visitors = watch({"bo-token": ConnectionError("hub restarting")})
    socket = Socket("bo-token")
    visitors.saw(socket, person(VISITOR))
    asyncio.run(visitors.check())
    assert socket.closed is None and "bo-token" in visitors.seen


def test_a_quiet_visitor_is_forgotten_without_asking():
    hub, visitors = watch({"bo-token": None})
    visitors.saw(SimpleNamespace(token="bo-token"), person(VISITOR))  # a plain request, no websocket
    name, seen = visitors.seen["bo-token"]
    visitors.seen["bo-token"] = (name, seen - hub.cache_max_age - EVERY_SECONDS - 1)
    asyncio.run(visitors.check())
    assert visitors.seen == {} and hub.asked == []
