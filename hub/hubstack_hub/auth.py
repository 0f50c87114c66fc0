"""Production log-in: OAuthenticator proves who someone is, the access check decides.

Built on OAuthenticator's documented extension points:
- `check_allowed` (after the provider's own checks): the e-mail must be
  verified, then the approval sources must say yes;
- `pre_spawn_start`: asked again before every spawn;
- `refresh_user` (every `auth_refresh_age` seconds of a user's requests): asked
  again; a user denied now is logged out.
On top, every `auth_refresh_age` seconds the hub re-checks everyone who has a
running server, and stops the server and ends the sessions of whoever lost
approval, and stops any server with a dataset mounted whose own approval
ended (hubstack_hub.grants): a mount cannot be taken back from a running
container. Whoever a running server is shared with is re-checked too, and
loses the share with their approval (hubstack_hub.sharing). Allow settings
such as `allow_all` are never set: JupyterHub skips
`check_allowed` when `allow_all` is true.
"""

import asyncio
import inspect

from jupyterhub.spawner import SpawnException
from jupyterhub.utils import new_token
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from oauthenticator.google import GoogleOAuthenticator
from oauthenticator.oauth2 import OAuthenticator
from tornado import web
from traitlets import Any, Unicode

from .decision import DENIED, UNAVAILABLE, UNCONFIRMED, Decision
from .grants import visas_in
from .identity import primary_verified_email
from .names import SafeUserNames
from .sharing import ShareHandlers


async def maybe_await(value):
    return await value if inspect.isawaitable(value) else value


REASK_SECONDS = 5  # an "unavailable" answer is reused this long before the sources are asked again

MESSAGES = {
    DENIED: "Your account ({user}) has no approval to use the controlled data on this hub.",
    "expired": "Your data access approval has expired ({reason}).",
    UNAVAILABLE: "The approval registry could not be reached, so your access could not be checked. "
    "This is not a decision about you: please try again in a few minutes.",
    UNCONFIRMED: "The approval registry has been unreachable for too long to confirm your approval ({reason}), "
    "so your server was stopped. This is not a decision about you: log in again once the registry is back.",
    "identity": "Your identity provider does not confirm this account for this hub: {reason}. "
    "Put it right there (for example, verify the e-mail address), then log in again.",
}


def user_message(decision, user):
    key = "identity" if decision.source == "identity" else decision.outcome
    return MESSAGES[key].format(user=user, reason=decision.reason)


class AccessDenied(web.HTTPError):
    """A 403 that the hub's error page (templates/error.html) shows as a denial."""

    def __init__(self, decision, user, apply_url):
        super().__init__(403, "access %s for %s: %s", decision.outcome, user, decision.reason)
        self.decision, self.apply_url = decision, apply_url
        self.jupyterhub_message = user_message(decision, user)


class AccessCheckMixin(SafeUserNames, ShareHandlers, OAuthenticator):
    """Put first in the bases, before the provider's OAuthenticator."""

    access_checker = Any(config=True, help="hubstack_hub.access.AccessChecker asked after log-in")
    apply_url = Unicode("", config=True, help="Where the denial page sends people to apply for access")
    dataset_gate = Any(None, config=True, help="hubstack_hub.grants.DatasetGate, also given to the spawner")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._rechecks, self._checking = None, set()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not inside the hub (e.g. --generate-config)
        if self.auth_refresh_age:
            self._rechecks = asyncio.ensure_future(self._recheck_forever())

    # -- identity --------------------------------------------------------------
    def verified_email(self, auth_model):
        """The provider says this e-mail address is the user's. Per provider."""
        raise NotImplementedError

    async def identity_allowed(self, username, auth_model):
        """The provider-specific allow rules (GitHub organisations), if any."""
        return True

    # -- the extension points ------------------------------------------------------
    async def check_allowed(self, username, auth_model):
        if auth_model is None:  # JupyterHub < 5 calls it without a model
            return False
        if not self.verified_email(auth_model):
            decision = Decision(DENIED, "identity", "the provider has not verified this e-mail address")
            self.access_checker.audit.write("login", username, decision, 0)
            raise AccessDenied(decision, username, self.apply_url)
        if not await self.identity_allowed(username, auth_model):
            decision = Decision(DENIED, "identity", "not in the provider groups this hub requires")
            self.access_checker.audit.write("login", username, decision, 0)
            raise AccessDenied(decision, username, self.apply_url)
        decision = await self.access_checker.check(username, "login")
        if not decision.approved:
            raise AccessDenied(decision, username, self.apply_url)
        if self.dataset_gate is not None and self.dataset_gate.datasets:
            try:  # what the home page shows; the spawn decides again
                await self.dataset_gate.grants(username, visas_in(auth_model.get("auth_state")), "login")
            except Exception:
                self.log.exception("Datasets of %s could not be decided at log-in", username)
        return True

    async def pre_spawn_start(self, user, spawner):
        decision = await self.access_checker.check(user.name, "spawn")
        if decision.approved:
            return
        link = (
            f' <a href="{self.apply_url}">Apply for access</a>.'
            if self.apply_url and decision.outcome not in (UNAVAILABLE, UNCONFIRMED)
            else ""
        )
        message = user_message(decision, user.name)
        raise SpawnException(
            message, reason="access", status_code=403, message_html=web.escape.xhtml_escape(message) + link
        )

    async def refresh_user(self, user, handler=None, **kwargs):
        # Within the positive cache, answer at once and ask again in the
        # background: a slow registry must not hold up this user's pages.
        # A revocation found there resets the refresh time, so the very next
        # request asks again, synchronously, and is refused.
        checker = self.access_checker
        if checker.recently_approved(user.name, within=checker.cache_seconds):
            if user.name not in self._checking:
                self._checking.add(user.name)
                asyncio.ensure_future(self._check_in_background(user))
            return True
        last = checker.last_decision(user.name, within=REASK_SECONDS)
        if last is not None and last.outcome == UNAVAILABLE:
            return False  # asked a moment ago: a request storm does not become a registry storm
        decision = await self.check_or_revoke(user, "refresh")
        if decision.approved:
            return True
        if decision.outcome == UNAVAILABLE:
            return False  # log in again; the log-in check says the registry is unavailable
        # A definite no: every token and cookie is gone already; this request ends here too,
        # whether it came with a cookie or a token (JupyterHub would let a token request run on).
        raise AccessDenied(decision, user.name, self.apply_url)

    async def identity_lost(self, user):
        """Ask the provider again, with the tokens kept at log-in (OAuthenticator's own refresh).

        A Decision when the provider's answer no longer passes the log-in rules
        (the address changed or is no longer verified, the organisation or hosted
        domain was left); None when it still does, or when the provider gave no
        answer to judge (not reachable, tokens expired: the next log-in asks it).
        """
        try:
            model = await super().refresh_user(user)
        except Exception as err:  # the provider did not answer: not a decision about the user
            self.log.warning("Identity re-check of %s: the provider did not answer (%s)", user.name, err)
            return None
        if not isinstance(model, dict):
            return None
        if model.get("auth_state"):
            await user.save_auth_state(model["auth_state"])  # the refreshed tokens
        if model.get("name") != user.name:
            reason = "the provider now names this account differently"
        elif not self.verified_email(model):
            reason = "the provider no longer verifies this e-mail address"
        elif not await self.identity_allowed(user.name, model) or not await maybe_await(
            self.check_blocked_users(user.name, model)
        ):
            reason = "no longer in the provider groups, organisations or domains this hub requires"
        else:
            return None
        return Decision(DENIED, "identity", reason)

    async def check_or_revoke(self, user, event):
        """Ask the provider, then the sources; a definite no (not "unavailable") ends the user's access,
        before it is audited."""
        lost = await self.identity_lost(user)
        if lost is not None:
            try:
                await self.revoke(user, lost)
            finally:
                self.access_checker.audit.write(event, user.name, lost, 0)
            return lost

        async def enforce(decision):
            if not decision.approved and decision.outcome != UNAVAILABLE:
                await self.revoke(user, decision)

        return await self.access_checker.check(user.name, event, act=enforce)

    async def _check_in_background(self, user):
        try:
            await self.check_or_revoke(user, "refresh")
        except Exception:
            self.log.exception("Access re-check of %s failed", user.name)
        finally:
            self._checking.discard(user.name)

    # -- ending access -------------------------------------------------------------
    async def revoke(self, user, decision):
        """End every session and token of the user, then stop their servers.

        Tokens and cookies go first and are committed at once, so that a stop
        that fails or hangs cannot leave the user a way in.
        """
        app = self.parent
        user.orm_user.cookie_id = new_token()  # every login cookie of the user stops working
        for token in list(user.orm_user.api_tokens):
            app.db.delete(token)
        app.db.commit()
        user._auth_refreshed = None  # the next request with anything left asks again
        self.log.warning("Access of %s ended: %s (%s)", user.name, decision.outcome, decision.reason)
        if self.share_guard is not None:  # and every share to them (hubstack_hub.sharing)
            self.share_guard.end_shares_to(app, user, decision)
        for name, spawner in list(user.spawners.items()):
            if spawner.pending == "spawn":
                # A server still starting cannot be stopped yet: stop it the moment it is up.
                asyncio.ensure_future(self._stop_once_started(user, name, spawner))
            elif spawner.active and not spawner.pending:
                await self._stop(user, name, spawner)

    async def _stop(self, user, name, spawner):
        spawner._stop_pending = True  # as the hub's own stop does, against races
        await self.parent.proxy.delete_user(user, name)
        await user.stop(name)

    async def _stop_once_started(self, user, name, spawner):
        try:
            if spawner._spawn_future is not None:  # JupyterHub's own handle of the pending spawn
                await spawner._spawn_future
        except Exception:
            return  # it did not start: nothing runs
        try:
            if spawner.active and not spawner.pending:
                await self._stop(user, name, spawner)
                self.log.warning("Stopped %s's server, which finished starting after access ended", user.name)
        except Exception:
            self.log.exception("Stopping the server of %s after access ended failed", user.name)

    async def recheck_running(self):
        """Everyone with a running server, and everyone a running server is shared with."""
        users = [u for u in list(self.parent.users.values()) if any(s.active for s in u.spawners.values())]
        if self.share_guard is not None:
            users += [u for u in self.share_guard.recipients_of_running(self.parent) if u not in users]
        limit = asyncio.Semaphore(8)

        async def one(user):
            async with limit:
                if (await self.check_or_revoke(user, "recheck")).approved:
                    await self.recheck_datasets(user)

        results = await asyncio.gather(*(one(u) for u in users), return_exceptions=True)
        for user, result in zip(users, results, strict=False):
            if isinstance(result, Exception):
                self.log.error("Access re-check of %s failed: %r", user.name, result)
        if self.share_guard is not None:
            await self.share_guard.recheck(self.parent)

    async def recheck_datasets(self, user):
        """Stop each server of user with a mounted dataset whose approval ended, and say which and why."""
        gate = self.dataset_gate
        if gate is None:
            return
        for name, spawner in list(user.spawners.items()):
            mounted = getattr(spawner, "mounted_datasets", None)
            if not mounted or not spawner.active or spawner.pending:
                continue
            ended = await gate.ended(user, mounted)
            if not ended:
                continue
            why = "; ".join(f"{g.dataset.name}: {g.decision.reason}" for g in ended)
            gate.notices[user.name] = (
                f"Your server was stopped because your approval ended for {', '.join(g.dataset.name for g in ended)} "
                f"({why}). Start it again: it mounts the datasets you still have."
            )
            self.log.warning("Stopping the server of %s: dataset approval ended (%s)", user.name, why)
            await self._stop(user, name, spawner)

    async def _recheck_forever(self):
        while True:
            await asyncio.sleep(self.auth_refresh_age)
            try:
                await self.recheck_running()
            except Exception:
                self.log.exception("Access re-check failed")


class OIDCAuthenticator(AccessCheckMixin, GenericOAuthenticator):
    """Any OpenID Connect provider: CILogon, Keycloak, an institution's IdP."""

    def verified_email(self, auth_model):
        return auth_model["auth_state"][self.user_auth_state_key].get("email_verified") is True


class GoogleAuthenticator(AccessCheckMixin, GoogleOAuthenticator):
    def verified_email(self, auth_model):
        return auth_model["auth_state"][self.user_auth_state_key].get("verified_email") is True


class GitHubAuthenticator(AccessCheckMixin, GitHubOAuthenticator):
    """GitHub log-in; the user name is the account's primary verified e-mail."""

    async def update_auth_model(self, auth_model):
        auth_model = await super().update_auth_model(auth_model)
        state = auth_model["auth_state"]
        token = state["token_response"]
        emails = await self.httpfetch(
            f"{self.github_api}/user/emails",
            "fetching user emails",
            method="GET",
            headers=self.build_userdata_request_headers(token["access_token"], token["token_type"]),
            validate_cert=self.validate_server_cert,
        )
        email = primary_verified_email(emails)
        state[self.user_auth_state_key]["verified_primary_email"] = email
        if email:
            auth_model["name"] = email
        return auth_model

    def verified_email(self, auth_model):
        return bool(auth_model["auth_state"][self.user_auth_state_key].get("verified_primary_email"))

    async def identity_allowed(self, username, auth_model):
        if not self.allowed_organizations:
            return True
        login = auth_model["auth_state"][self.user_auth_state_key]["login"]
        return await GitHubOAuthenticator.check_allowed(self, login, auth_model)


CLASSES = {"oidc": OIDCAuthenticator, "google": GoogleAuthenticator, "github": GitHubAuthenticator}
