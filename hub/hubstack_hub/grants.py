"""Which datasets a researcher gets: decided per dataset when a server starts,
and decided again, for what is mounted, at every re-check.

Each dataset is asked of the one source its grant names (hubstack.common.datasets),
through the hub's AccessChecker, so a registry outage follows the same rules per
dataset as for the hub itself (the positive cache, then the outage grace). Open
datasets need no source. In dev mode there is no source: only open datasets mount.
"""

import time
from dataclasses import dataclass

from hubstack.common.datasets import Dataset

from .decision import APPROVED, DENIED, UNAVAILABLE, Decision

OPEN = Decision(APPROVED, "open", "open to everyone who may use this hub")
NO_SOURCES = Decision(DENIED, "dev-mode", "dev mode asks no approval source: only open datasets are mounted")
NO_LONGER_OFFERED = Decision(DENIED, "operator", "the operator no longer offers this dataset")
USERINFO = "oauth_user"  # where OAuthenticator keeps the provider's user-info in the auth state


def visas_in(auth_state):
    return ((auth_state or {}).get(USERINFO) or {}).get("ga4gh_passport_v1")


@dataclass(frozen=True)
class Grant:
    dataset: object  # hubstack.common.datasets.Dataset
    decision: Decision

    @property
    def granted(self):
        return self.decision.approved


class Bound:
    """One source asked about one dataset, as AccessChecker asks a source: ask(user) -> Decision."""

    def __init__(self, name, ask):
        self.name, self._ask = name, ask

    async def ask(self, user):
        return await self._ask(user)


class DatasetGate:
    def __init__(self, catalogue, checker=None, registry=None, approval_list=None, passports=None, audit=None):
        self.catalogue, self.checker, self.audit = catalogue, checker, audit
        self.registry, self.approval_list, self.passports = registry, approval_list, passports
        self.last = {}  # user -> (time, [Grant]) of the last decision, for the home page
        self.notices = {}  # user -> why their server was stopped, until their next start

    def __deepcopy__(self, memo):
        return self  # one gate per hub: traitlets copies config values into each spawner

    @property
    def datasets(self):
        return self.catalogue.datasets

    async def visas(self, user):
        """The ga4gh_passport_v1 claim of the user's last log-in (or refresh), from the encrypted auth state."""
        if not self.catalogue.grants("passport"):
            return None
        return visas_in(await user.get_auth_state())

    def sources_for(self, dataset, visas, rejections):
        if dataset.grant == "registry":
            return [Bound("registry", lambda user: self.registry.ask(user, cloud_access=dataset.cloud_access))]
        if dataset.grant == "list":
            return [Bound("list", lambda user: self.approval_list.ask(user, dataset.key))]

        async def passport(user):
            decision, rejected = await self.passports.ask(user, dataset.key, visas)
            rejections.extend(r for r in rejected if r not in rejections)
            return decision

        return [Bound("passport", passport)]

    async def decide(self, username, datasets, visas=None):
        """[Grant] for these datasets, and the reasons any visa was refused."""
        grants, rejections = [], []
        for dataset in datasets:
            if dataset.grant == "open":
                decision = OPEN
            elif self.checker is None:
                decision = NO_SOURCES
            else:
                sources = self.sources_for(dataset, visas, rejections)
                decision = await self.checker.decide(username, sources, what=f"dataset:{dataset.name}")
            grants.append(Grant(dataset, decision))
        return grants, rejections

    async def grants(self, username, visas, event):
        """Every dataset's grant for this user, audited in one line (and one per refused visa)."""
        started = time.perf_counter()
        grants, rejections = await self.decide(username, self.datasets, visas)
        self.last[username] = (time.time(), grants)
        self.write(event, username, grants, rejections, time.perf_counter() - started)
        return grants

    async def ended(self, user, mounted, event="recheck"):
        """The grants among the mounted datasets (names) that no longer hold: a definite no, or an
        approval unconfirmed past the outage grace (an outage within it keeps the server)."""
        by_name = {d.name: d for d in self.datasets}
        gone = [Grant(Dataset(n, n, "", "open"), NO_LONGER_OFFERED) for n in mounted if n not in by_name]
        started = time.perf_counter()
        grants, rejections = await self.decide(
            user.name, [by_name[n] for n in mounted if n in by_name], await self.visas(user)
        )
        self.write(event, user.name, grants, rejections, time.perf_counter() - started)
        return gone + [g for g in grants if not g.granted and g.decision.outcome != UNAVAILABLE]

    def write(self, event, user, grants, rejections, latency):
        if self.audit is None or not (grants or rejections):
            return
        for reason in rejections:
            self.audit.write("visa-refused", user, Decision(DENIED, "passport", reason), 0)
        mounted = [g for g in grants if g.granted]
        refused = [g for g in grants if not g.granted]
        summary = Decision(
            "mounted" if mounted else "none mounted",
            "datasets",
            "; ".join(f"{g.dataset.name}: {g.decision.outcome} by {g.decision.source}" for g in grants),
        )
        self.audit.write(
            f"{event}-datasets",
            user,
            summary,
            latency,
            mounted=[{"dataset": g.dataset.name, "source": g.decision.source} for g in mounted],
            refused=[
                {
                    "dataset": g.dataset.name,
                    "decision": g.decision.outcome,
                    "source": g.decision.source,
                    "reason": g.decision.reason,
                }
                for g in refused
            ],
        )

    # -- what the researcher is told -------------------------------------------------------
    def note(self, grants):
        """/data/README in the server."""
        lines = ["Datasets on this hub, as decided when this server started.", ""]
        for g in grants:
            state = f"mounted read-only at {g.dataset.mount_point}" if g.granted else "not mounted"
            lines.append(f"{g.dataset.name} ({g.dataset.title}): {state}. {g.decision.reason}.")
            if g.dataset.description:
                lines.append(f"    {g.dataset.description}")
        lines += ["", "An approval that ends stops this server; the next start mounts what is still granted."]
        return "\n".join(lines) if grants else "This hub offers no datasets."

    def home(self, user):
        """The home page's table (JupyterHub calls this with the current user): one row per dataset."""
        if user is None or not self.datasets:
            return {"rows": [], "notice": ""}
        when, grants = self.last.get(user.name, (None, []))
        known = {g.dataset.name: g for g in grants}
        rows = []
        for dataset in self.datasets:
            grant = known.get(dataset.name)
            rows.append(
                {
                    "name": dataset.name,
                    "title": dataset.title,
                    "description": dataset.description,
                    "mount": dataset.mount_point,
                    "state": "unknown" if grant is None else ("granted" if grant.granted else "refused"),
                    "reason": "decided when your server starts" if grant is None else grant.decision.reason,
                }
            )
        return {"rows": rows, "notice": self.notices.get(user.name, "")}


def build_gate(catalogue, checker=None, audit=None, timeout=5.0):
    """The gate of a hub: production asks the checker's own sources; dev mode (no checker) none."""
    sources = {source.name: source for source in checker.sources} if checker else {}
    passports = None
    if checker and catalogue.grants("passport"):
        from .passport import PassportSource

        trust = catalogue.passports
        passports = PassportSource(trust.issuers, trust.allowed_by, trust.clock_skew, timeout)
    audit = audit if audit is not None else getattr(checker, "audit", None)
    return DatasetGate(catalogue, checker, sources.get("registry"), sources.get("list"), passports, audit)
