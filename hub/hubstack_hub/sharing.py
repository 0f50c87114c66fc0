"""Sharing a server (JupyterHub's shares) under the access check.

A researcher shares their server with a named colleague or a group, on the
hub's page /hub/share or through JupyterHub's API (/hub/api/shares/...). A
share gives the colleague everything the server holds: the home, every
dataset mounted in it, every group folder. So a recipient must be approved
for the hub, for each dataset mounted in that server, and be a member of each
group whose folder it mounts, when the share is made and each time it is
used; otherwise it is refused and says why. At every re-check of the hub
(hubstack_hub.auth), a recipient whose answer became a definite no loses
every token they hold for that server, and a share to them alone ends (a
group share stays for the other members and refuses that one at the door);
the server itself notices within seconds (notebook/hubstack_visitors.py) and
closes their connections while the owner works on. An approval source that
cannot answer never ends a share by itself, as for the owner's own access.

Share codes are off: a link lets in whoever holds it, and nobody can check
who that will be when the link is made.

Each share made, refused, used and ended is a line of the audit log.

`app` below is anything with the hub's `db` and `users`: the JupyterHub app, or a handler.
"""

import time

from jupyterhub import orm
from jupyterhub.apihandlers.auth import OAuthAuthorizeHandler
from jupyterhub.apihandlers.shares import ServerShareAPIHandler, ServerShareCodeAPIHandler
from jupyterhub.auth import Authenticator
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.scopes import needs_scope
from jupyterhub.utils import url_path_join
from tornado import web
from traitlets import Any

from .decision import APPROVED, DENIED, UNAVAILABLE, Decision
from .spawner import is_group_folder

SHARE_CODES_OFF = (
    "Share codes are off on this hub: a link would let in whoever holds it. "
    "Share with a named colleague instead (they must be approved for this server's data)."
)


def access_scope(owner, server):
    return f"access:servers!server={owner}/{server}"


def definite(decision):
    """A no that ends access: not an approval, and not an answer that merely could not be had."""
    return not decision.approved and decision.outcome != UNAVAILABLE


class ShareGuard:
    """What every way of sharing asks: may this person have what this server holds?"""

    def __init__(self, checker=None, gate=None, groups=None, audit=None):
        self.checker, self.gate, self.groups, self.audit = checker, gate, groups, audit
        self._cut = set()  # (share id, member) of group shares whose member was cut off, audited once

    def __deepcopy__(self, memo):
        return self  # one guard per hub: traitlets copies config values

    async def judge(self, recipient, spawner):
        """APPROVED, or why not, for a recipient (a JupyterHub User) of spawner's server."""
        name = recipient.name
        if self.checker is not None:
            hub = await self.checker.decide(name)
            if not hub.approved:
                return Decision(hub.outcome, hub.source, f"{name} is not approved for this hub ({hub.reason})")
        mounted = list(getattr(spawner, "mounted_datasets", None) or [])
        if mounted and self.gate is not None:
            offered = {d.name: d for d in self.gate.datasets}
            datasets = [offered[n] for n in mounted if n in offered]
            grants, _ = await self.gate.decide(name, datasets, await self.gate.visas(recipient))
            refused = [g for g in grants if not g.granted]
            if refused:
                outcome = UNAVAILABLE if all(g.decision.outcome == UNAVAILABLE for g in refused) else DENIED
                which = ", ".join(f"{g.dataset.name} ({g.decision.reason})" for g in refused)
                return Decision(outcome, "datasets", f"{name} is not approved for {which}, mounted in this server")
        missing = self.folders_missing(recipient, spawner)
        if missing:
            return Decision(
                DENIED,
                "groups",
                f"{name} is not a member of {', '.join(missing)}, whose shared folder is in this server",
            )
        return Decision(APPROVED, "share", f"{name} is approved for everything this server holds")

    def folders_missing(self, recipient, spawner):
        """The groups whose folder the server mounts and the recipient does not get."""
        mounted = {m["bind"] for m in (getattr(spawner, "volumes", None) or {}).values() if is_group_folder(m)}
        if not mounted:
            return []
        theirs = set(self.groups.folders_of(recipient.name, [g.name for g in recipient.groups]).values())
        return sorted(path.rsplit("/", 1)[1] for path in mounted - theirs)

    def write(self, event, recipient, decision, started, spawner, **details):
        if self.audit is not None:
            owner = spawner.user.name
            self.audit.write(
                event, recipient, decision, time.perf_counter() - started, owner=owner, server=spawner.name, **details
            )

    # -- making a share -------------------------------------------------------------------
    async def refusal(self, app, spawner, kind, name):
        """None if spawner's server may be shared with the user or group `name`, else why not (one line).

        Every recipient is judged; the first refusal is audited and returned.
        """
        owner = spawner.user
        if kind == "user":
            orm_user = orm.User.find(app.db, name)
            if orm_user is None:
                return f"{name} has not logged in to this hub yet: ask them to log in once, then share again."
            if orm_user.id == owner.orm_user.id:
                return "This is your own server: share it with a colleague."
            recipients = [app.users[orm_user]]
        else:
            group = orm.Group.find(app.db, name=name)
            if group is None:
                return f"There is no group {name} on this hub."
            recipients = [app.users[u] for u in group.users if u.id != owner.orm_user.id]
        for recipient in recipients:
            started = time.perf_counter()
            decision = await self.judge(recipient, spawner)
            if not decision.approved:
                via = {"group": name} if kind == "group" else {}
                self.write("share-refused", recipient.name, decision, started, spawner, **via)
                if decision.outcome == UNAVAILABLE:
                    return f"Could not check {recipient.name} now ({decision.reason}): try again in a few minutes."
                return f"Not shared: {decision.reason}."
        return None

    def created(self, share, spawner):
        who = share.user.name if share.user else f"group:{share.group.name}"
        made = Decision("shared", "owner", f"{spawner.user.name} shared the server with {who}")
        self.write("share-created", who, made, time.perf_counter(), spawner)

    def ended_by_owner(self, app, spawner, recipient, who):
        """The owner ended a share (recipient: a User, or None for a group): their tokens go, audited."""
        if recipient is not None:
            self.cut(app, recipient, spawner)
        made = Decision("ended", "owner", f"{spawner.user.name} ended the share with {who}")
        self.write("share-ended", who, made, time.perf_counter(), spawner)

    # -- ending shares --------------------------------------------------------------------
    def cut(self, app, recipient, spawner):
        """Delete every token the recipient holds for spawner's server (their way into it)."""
        tokens = app.db.query(orm.APIToken).filter_by(user_id=recipient.orm_user.id, client_id=spawner.oauth_client_id)
        count = tokens.delete()
        app.db.commit()
        return count

    def end(self, app, share, recipient, spawner, decision, started):
        """A definite no for recipient: their tokens for the server go; a share to them alone ends too."""
        tokens = self.cut(app, recipient, spawner)
        details = {"tokens": tokens}
        if share.group is not None:
            key = (share.id, recipient.name)
            if key in self._cut:
                return
            self._cut.add(key)
            details["group"] = share.group.name
        else:
            app.db.delete(share)
            app.db.commit()
        self.write("share-ended", recipient.name, decision, started, spawner, **details)

    def end_shares_to(self, app, user, decision):
        """user lost their access to the hub: every share to them alone ends, audited."""
        decision = Decision(
            decision.outcome, decision.source, f"{user.name} is not approved for this hub ({decision.reason})"
        )
        for share in list(user.orm_user.shared_with_me):
            spawner = app.users[share.owner].spawners[share.spawner.name]
            self.end(app, share, user, spawner, decision, time.perf_counter())

    @staticmethod
    def shared_running(app, pending_too=False):
        """(spawner, share, member) for every member of every share of every running server."""
        for user in list(app.users.values()):
            for spawner in list(user.spawners.values()):
                if not spawner.active or spawner.orm_spawner is None or (spawner.pending and not pending_too):
                    continue
                for share in list(spawner.orm_spawner.shares):
                    for member in [share.user] if share.user else list(share.group.users):
                        yield spawner, share, member

    async def recheck(self, app):
        """Judge every recipient of every running server's shares; a definite no ends their way in."""
        for spawner, share, member in list(self.shared_running(app)):
            recipient = app.users[member]
            started = time.perf_counter()
            decision = await self.judge(recipient, spawner)
            if definite(decision):
                self.end(app, share, recipient, spawner, decision, started)
            elif decision.approved:
                self._cut.discard((share.id, recipient.name))

    def recipients_of_running(self, app):
        """The users a running server is shared with (alone or in a group), for the hub's re-check."""
        found = {}
        for _, _, member in self.shared_running(app, pending_too=True):
            found.setdefault(member.id, app.users[member])
        return list(found.values())


# -- the handlers ---------------------------------------------------------------------------
class GuardedShareAPI(ServerShareAPIHandler):
    """JupyterHub's /hub/api/shares/{user}/{server}, with the guard before every new share."""

    def initialize(self, guard):
        self.guard = guard

    @needs_scope("shares")
    async def post(self, user_name, server_name=None):
        if server_name is None:
            raise web.HTTPError(405)
        model = self.get_json_body() or {}
        if not isinstance(model, dict) or bool(model.get("user")) == bool(model.get("group")):
            raise web.HTTPError(400, "Give exactly one of 'user' or 'group'")
        wanted = access_scope(user_name, server_name)
        if any(scope != wanted for scope in model.get("scopes") or []):
            raise web.HTTPError(400, f"A share here gives access to the server only: scopes may be [{wanted!r}]")
        spawner = self._lookup_spawner(user_name, server_name)
        owner = self.users[spawner.user]
        kind = "user" if model.get("user") else "group"
        name = str(model[kind]).strip()
        name = name.lower() if kind == "user" else name
        why = await self.guard.refusal(self, owner.spawners[server_name], kind, name)
        if why:
            raise web.HTTPError(403, why)
        await super().post(user_name, server_name)
        share = orm.Share.find(self.db, spawner, self._share_with(kind, name))
        if share is not None:
            self.guard.created(share, owner.spawners[server_name])

    def _share_with(self, kind, name):
        return orm.User.find(self.db, name) if kind == "user" else orm.Group.find(self.db, name=name)

    @needs_scope("shares")
    async def patch(self, user_name, server_name=None):
        model = self.get_json_body() or {}
        await super().patch(user_name, server_name)
        who = model.get("user") or (f"group:{model['group']}" if model.get("group") else None)
        if server_name is not None and who:
            spawner = self._lookup_spawner(user_name, server_name)
            self._ended(spawner, model, who)

    def _ended(self, orm_spawner, model, who):
        spawner = self.users[orm_spawner.user].spawners[orm_spawner.name]
        recipient = self.find_user(model["user"]) if model.get("user") else None
        self.guard.ended_by_owner(self, spawner, recipient, who)

    @needs_scope("shares")
    async def delete(self, user_name, server_name=None):
        if server_name is None:
            raise web.HTTPError(405)
        orm_spawner = self._lookup_spawner(user_name, server_name)
        shares = [(s.user, s.group) for s in orm_spawner.shares]
        await super().delete(user_name, server_name)
        for user, group in shares:
            model = {"user": user.name} if user else {"group": group.name}
            self._ended(orm_spawner, model, user.name if user else f"group:{group.name}")


class NoShareCodes(ServerShareCodeAPIHandler):
    @needs_scope("shares")
    async def post(self, user_name, server_name=None):
        raise web.HTTPError(403, SHARE_CODES_OFF)


class NoAcceptShare(BaseHandler):
    @web.authenticated
    def get(self):
        raise web.HTTPError(403, SHARE_CODES_OFF)

    post = get


class GuardedAuthorize(OAuthAuthorizeHandler):
    """The hub's OAuth door into user servers: a visitor (someone else's server, by a share) is judged
    before being let in, and each visit let in is audited as the share used."""

    def initialize(self, guard):
        self.guard = guard

    def _visited(self):
        """(spawner, started) when the OAuth client asking is someone else's server, else None."""
        client_id = self.get_argument("client_id", None)
        if not client_id or self.current_user is None:
            return None
        client = self.db.query(orm.OAuthClient).filter_by(identifier=client_id).one_or_none()
        if client is None or client.spawner is None or client.spawner.user_id == self.current_user.id:
            return None
        if not self.get_scope_filter("access:servers")(client.spawner, kind="server"):
            return None  # no share: JupyterHub refuses on its own
        owner = self.users[client.spawner.user]
        return owner.spawners[client.spawner.name]

    async def _judge(self):
        spawner = self._visited()
        if spawner is None:
            return
        started = time.perf_counter()
        decision = await self.guard.judge(self.current_user, spawner)
        if decision.approved:
            self._visit = (spawner, started, decision)
            return
        app = self  # a handler has the db and users of the hub, as the app does
        if definite(decision):
            share = next(
                (s for s in spawner.orm_spawner.shares if s.user_id == self.current_user.id),
                None,
            )
            if share is not None:
                self.guard.end(app, share, self.current_user, spawner, decision, started)
            else:
                self.guard.cut(app, self.current_user, spawner)
                self.guard.write("share-refused", self.current_user.name, decision, started, spawner)
            raise web.HTTPError(403, f"Your access to {spawner.user.name}'s server has ended: {decision.reason}.")
        self.guard.write("share-refused", self.current_user.name, decision, started, spawner)
        raise web.HTTPError(503, f"Your access to {spawner.user.name}'s server could not be checked now: try again.")

    @web.authenticated
    async def get(self):
        self._visit = None
        await self._judge()
        await super().get()

    @web.authenticated
    async def post(self):
        self._visit = None
        await self._judge()
        super().post()

    def send_oauth_response(self, headers, body, status):
        super().send_oauth_response(headers, body, status)
        visit = getattr(self, "_visit", None)
        if visit is not None and status in (301, 302, 303):
            spawner, started, decision = visit
            self.guard.write("share-used", self.current_user.name, decision, started, spawner)


# -- the page ------------------------------------------------------------------------------
class SharePage(BaseHandler):
    """/hub/share: whom my server is shared with; share it with a colleague or a group; end a share."""

    def initialize(self, guard):
        self.guard = guard

    @web.authenticated
    async def get(self):
        await self.show()

    @web.authenticated
    async def post(self):
        user = self.current_user
        spawner = user.spawners[""] if "" in user.orm_spawners else None
        if spawner is None:
            return await self.show(error="Start your server once before you share it.")
        action = self.get_body_argument("action", "share")
        kind = self.get_body_argument("kind", "user")
        name = self.get_body_argument("with", "").strip()
        if kind not in ("user", "group") or not name:
            return await self.show(error="Name a colleague (their e-mail address) or a group.", status=400)
        name = name.lower() if kind == "user" else name
        app = self
        share_with = orm.User.find(self.db, name) if kind == "user" else orm.Group.find(self.db, name=name)
        who = name if kind == "user" else f"group:{name}"
        if action == "end":
            if share_with is not None and orm.Share.find(self.db, spawner.orm_spawner, share_with) is not None:
                orm.Share.revoke(self.db, spawner.orm_spawner, share_with, scopes=None)
                recipient = self.users[share_with] if kind == "user" else None
                self.guard.ended_by_owner(app, spawner, recipient, who)
            return await self.show(done=f"The share with {who} has ended.")
        why = await self.guard.refusal(app, spawner, kind, name)
        if why:
            return await self.show(error=why, status=403)
        share = orm.Share.grant(self.db, spawner.orm_spawner, share_with)
        self.guard.created(share, spawner)
        return await self.show(done=f"Shared with {who}: give them the link below.")

    async def show(self, error="", done="", status=200):
        user = self.current_user
        spawner = user.spawners[""] if "" in user.orm_spawners else None
        shares = list(spawner.orm_spawner.shares) if spawner is not None else []
        mine = [
            {"owner": s.owner.name, "url": url_path_join(self.users[s.owner].url, s.spawner.name, "lab")}
            for s in user.orm_user.all_shared_with_me
        ]
        here = f"{self.request.protocol}://{self.request.host}"
        link = here + url_path_join(user.url, "lab") if spawner is not None else ""
        self.set_status(status)
        html = await self.render_template(
            "share.html",
            has_server=spawner is not None,
            running=bool(spawner and spawner.active),
            shares=[{"user": s.user.name if s.user else "", "group": s.group.name if s.group else ""} for s in shares],
            shared_with_me=mine,
            link=link,
            error=error,
            done=done,
            groups=sorted(g.name for g in user.groups),
        )
        self.finish(html)


def handlers(guard):
    """The hub's handlers for sharing, put before JupyterHub's own (ShareHandlers)."""
    return [
        (r"/share", SharePage, {"guard": guard}),
        (r"/api/shares/([^/]+)/([^/]*)", GuardedShareAPI, {"guard": guard}),
        (r"/api/share-codes/([^/]+)", NoShareCodes),
        (r"/api/share-codes/([^/]+)/([^/]*)", NoShareCodes),
        (r"/accept-share", NoAcceptShare),
        (r"/api/oauth2/authorize", GuardedAuthorize, {"guard": guard}),
    ]


class ShareHandlers(Authenticator):
    """Put before the Authenticator in the bases: JupyterHub serves an authenticator's handlers before its
    own, so these replace its sharing API, share codes and OAuth door."""

    share_guard = Any(None, config=True, help="hubstack_hub.sharing.ShareGuard: sharing under the access check")

    def get_handlers(self, app):
        return [*(handlers(self.share_guard) if self.share_guard else []), *super().get_handlers(app)]
