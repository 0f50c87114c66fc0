"""DockerSpawner with the volumes of a hubstack user server.

- the user's own home volume, created with this instance's labels so that
  `hubstack status` finds it and nothing else claims it;
- the shared environment, read-only, from the volume that `hubstack build`
  filled last. The build tags the environment image it filled the volume from
  as `:current`, so a new spawn never sees a half-copied environment and
  running servers keep the one they started with;
- each dataset granted at this start (hubstack_hub.grants), read-only at
  /data/<name>; what was granted and what not is in /data/README, and the
  names in the spawner's state and on the container, for the re-checks.

Each group folder of the researcher's groups (hubstack.common.groups) is
mounted read-write at /shared/<group>; membership is read at each start, so a
change shows at the researcher's next start.

The server is made with exactly the settings of the profile chosen on the
spawn page (hubstack.common.profiles): its image and limits, and with
database = true a MariaDB beside it (hubstack_hub.database). Only a profile
open to the researcher's groups can be chosen; anything else a form or an API
call asks for is refused before a container is made.

It also returns from start() only once the server answers, found by short
polls: the hub's own wait (exponential back-off up to 5 s between tries)
would otherwise notice a server seconds after it is up.

Deleting a user (JupyterHub's admin page, its API, `hubstack users delete`)
never deletes their data: delete_forever (which DockerSpawner leaves empty,
dockerspawner#512) audits the deletion, names the volumes kept, and removes
only what is not data (the user's own network).
"""

import asyncio
import time

from docker.errors import APIError, NotFound
from docker.types import IPAMConfig, IPAMPool
from dockerspawner import DockerSpawner
from jupyterhub.spawner import SpawnException
from jupyterhub.utils import AnyTimeoutError, exponential_backoff, maybe_future, url_path_join
from tornado.httpclient import AsyncHTTPClient
from traitlets import Any, Float, Integer, List, Unicode, default

from hubstack.common import profiles
from hubstack.common.contract import (
    DATASETS_ENV,
    EGRESS_SERVICE,
    ENV_MOUNT,
    HUB_SERVICE,
    LABEL_DATASETS,
    LABEL_PROFILE,
    PROFILE_ENV,
    SHARED_MOUNT,
    USER_HOME,
    USER_UID,
    Names,
    Role,
    short_id,
)
from hubstack.common.disk import gib
from hubstack.common.egress import Egress, attached, free_subnet, network_options
from hubstack.common.uservolumes import of_user

from . import database
from .decision import Decision
from .homedisk import NO_ROOM
from .startline import StartLine

ENV_NOT_READY = "The shared environment is not ready yet. Please tell the hub's operator to run `hubstack build`."
NETWORKS = asyncio.Lock()  # one user network made at a time: two must never get the same subnet
GROUP_FOLDERS = asyncio.Lock()  # one group folder made (and given to USER_UID) at a time


def is_group_folder(mount):
    return isinstance(mount, dict) and mount.get("bind", "").startswith(f"{SHARED_MOUNT}/")


class HubstackSpawner(DockerSpawner):
    instance = Unicode("hubstack", config=True, help="HUBSTACK_NAME of this instance")
    ready_poll_max = Float(0.25, config=True, help="Longest pause (s) between two asks whether a new server answers")
    dataset_gate = Any(None, config=True, help="hubstack_hub.grants.DatasetGate: which datasets to mount")
    egress = Any(Egress(), config=True, help="hubstack.common.egress.Egress: where user servers may connect")
    egress_audit = Any(None, config=True, help="hubstack_hub.egresslog.EgressAudit: the proxy's log, audited")
    audit = Any(None, config=True, help="hubstack_hub.audit.AuditLog: where deletions are recorded")
    disk_guard = Any(None, config=True, help="hubstack_hub.diskguard.DiskGuard: no spawn while Docker's disk is short")
    home_disks = Any(None, config=True, help="hubstack_hub.homedisk.HomeDisks: each home a filesystem of its quota")
    profiles = Any(None, config=True, help="hubstack.common.profiles.Profiles: what researchers choose from")
    groups = Any(None, config=True, help="hubstack.common.groups.Groups: the operator's groups and their folders")
    start_places = Integer(0, config=True, help="Servers starting at once; the others wait in line (0: no line)")
    line = StartLine()  # one line for every server of the hub
    mounted_datasets = List(help="Names of the datasets mounted in the running server")
    profile = Any(None, help="The hubstack.common.profiles.Profile of this start (apply_profile)")

    # -- profiles: the spawn page's form, and what a choice sets -----------------------------
    @default("options_form")
    def _profile_form(self):
        return lambda spawner: spawner.profile_form()

    @default("options_from_form")
    def _profile_from_form(self):
        # {"profile": ["large"], "_xsrf": [...]} -> {"profile": "large"}; any other field stays, to be refused
        return lambda form: {k: v[0] if len(v) == 1 else v for k, v in form.items() if k != "_xsrf"}

    @default("apply_user_options")
    def _apply_profile_hook(self):
        return lambda spawner, options: spawner.apply_profile(options)

    def hub_groups(self):
        return [group.name for group in self.user.groups]

    def profile_form(self):
        """Nothing (no form) unless this researcher has more than one profile to choose from."""
        offered = self.profiles.offered(self.user.name, self.hub_groups()) if self.profiles else []
        return profiles.form_html(offered) if len(offered) > 1 else ""

    def apply_profile(self, options):
        if self.profiles is None:
            return
        try:
            profile = profiles.choose(self.profiles, self.user.name, self.hub_groups(), options)
        except profiles.Refused as err:
            self.log.warning("Refused the options of %s: %s (asked: %.200r)", self._log_name, err, options)
            raise SpawnException(f"Refused: {err}.", reason="profile", status_code=403) from None
        self.profile = profile
        self.image = profile.image or self.names.image("notebook")
        self.mem_limit, self.cpu_limit = profile.mem_bytes, profile.cpus
        self.extra_host_config = {
            **self.extra_host_config,
            "memswap_limit": profile.mem_bytes,
            "pids_limit": profile.pids,
        }
        environment = {k: v for k, v in self.environment.items() if k not in database.SERVER_KEYS}
        self.environment = {**environment, PROFILE_ENV: profile.name}

    @property
    def names(self):
        return Names(self.instance)

    async def shared_environment_volume(self):
        tag = self.names.current_environment
        try:
            image = await self.docker("inspect_image", tag)
        except NotFound:  # also ImageNotFound
            raise SpawnException(ENV_NOT_READY, reason="environment") from None
        volume = self.names.env_volume(short_id(image["Id"]))
        try:  # never let the engine make it, empty, by mounting a missing volume by name
            await self.docker("inspect_volume", volume)
        except NotFound:
            raise SpawnException(ENV_NOT_READY, reason="environment") from None
        return volume

    async def ensure_home_volumes(self):
        """Create the user's named volumes (c.DockerSpawner.volumes) with our labels."""
        for source in self.volumes:
            name = self.format_volume_name(source, self)
            if "/" in name:
                continue  # a host path, not a named volume
            try:
                await self.docker("inspect_volume", name)
                continue
            except APIError as err:
                if err.status_code != 404:
                    raise
            await self.docker("create_volume", name=name, labels=self.names.labels(Role.HOME, user=self.user.name))
            self.log.info("Created volume %s for %s", name, self.user.name)

    async def attach_home_disk(self):
        """HUBSTACK_HOME_QUOTA: the home is a filesystem of its own (hubstack_hub.homedisk), made at the first
        start, with the home from before the quota copied in."""
        started = time.monotonic()
        guard = self.disk_guard
        keep_free = guard.policy.floor(guard.usage().total) if guard is not None else 0
        old_home = self.format_volume_name(self.names.home_volume_template, self)
        volume, answer = await self.home_disks.attach_async(self.escaped_name, self.user.name, keep_free, old_home)
        if volume is None:
            code, why = answer
            if code == NO_ROOM and guard is not None:
                guard.refuse(self.user.name, f"no room for a new home of {gib(self.home_disks.quota)}: {why}")
            raise SpawnException(
                "Your files from before the home quota do not fit in it. Please tell the hub's operator: "
                "they can raise HUBSTACK_HOME_QUOTA. Your files are safe.",
                reason="disk",
                status_code=507,
                log_message=why,
            )
        self.volumes = {volume: USER_HOME}
        if answer["made"] and guard is not None:  # a reservation on Docker's disk: the operator sees each
            copied = ", with the files of the home from before the quota" if answer["copied"] else ""
            made = Decision("made", "disk", f"a home of {gib(answer['size'])} reserved on Docker's disk{copied}")
            guard.audit.write("home-disk", self.user.name, made, time.monotonic() - started, size_bytes=answer["size"])
        seconds = time.monotonic() - started
        self.log.info("Home of %s on %s (%s) in %.2f s", self.user.name, answer["device"], gib(answer["size"]), seconds)

    async def group_folders(self):
        """{volume: mount} of the shared folders of this user's groups, made at a member's first start."""
        folders = self.groups.folders_of(self.user.name, self.hub_groups()) if self.groups else {}
        mounts = {}
        for group, target in sorted(folders.items()):
            volume = self.names.group_volume(group)
            async with GROUP_FOLDERS:
                try:
                    await self.docker("inspect_volume", volume)
                except NotFound:
                    await self.make_group_folder(volume, group)
            mounts[volume] = {"bind": target, "mode": "rw"}
        return mounts

    async def make_group_folder(self, volume, group):
        """A new volume belongs to root: every member's server runs as USER_UID, so it is given to that uid."""
        labels = self.names.labels(Role.GROUP_FOLDER, group=group)
        await self.docker("create_volume", name=volume, labels=labels)
        host_config = await self.docker(
            "create_host_config", binds={volume: {"bind": "/folder", "mode": "rw"}}, network_mode="none"
        )
        helper = await self.docker(
            "create_container",
            self.names.image("notebook"),
            command=["chown", f"{USER_UID}:{USER_UID}", "/folder"],
            user="0",
            labels=labels,
            host_config=host_config,
        )
        try:
            await self.docker("start", helper["Id"])
            code = (await self.docker("wait", helper["Id"]))["StatusCode"]
        finally:
            await self.docker("remove_container", helper["Id"], force=True)
        if code != 0:
            raise SpawnException(
                f"The shared folder of {group} could not be made. Please tell the hub's operator.", reason="group"
            )
        self.log.info("Made the shared folder %s of group %s", volume, group)

    def refuse_engine_access(self):
        """A user who can reach the Docker engine is root on the host: never mount its socket."""
        for source in (*self.volumes, *self.read_only_volumes):
            if source.rstrip("/").endswith("docker.sock"):
                raise SpawnException(
                    f"refusing to mount {source} into a user server: it gives root on the host", reason="config"
                )

    # -- the line: a few start at once, the others wait in the order they came ------------
    async def run_pre_spawn_hook(self):
        """Wait for a place in the line first: here, before JupyterHub's start_timeout counts."""
        self.line.places = self.start_places
        await self.line.enter(self)
        try:
            return await maybe_future(super().run_pre_spawn_hook())
        except BaseException:
            self.line.leave(self)
            raise

    async def progress(self):
        said = None
        while (ahead := self.line.ahead_of(self)) is not None:
            if ahead != said:
                said = ahead
                others = "nobody" if not ahead else f"{ahead} researcher{'s' if ahead > 1 else ''}"
                yield {
                    "progress": 5,
                    "message": f"Waiting for a free place: the hub starts {self.line.places} server(s) at once, "
                    f"and {others} asked before you.",
                }
            await asyncio.sleep(0.5)
        async for event in super().progress():
            yield event

    async def start(self):
        try:
            return await self.start_in_place()
        finally:
            self.line.leave(self)

    async def start_in_place(self):
        self.refuse_engine_access()
        if self.disk_guard is not None:
            self.disk_guard.check(self.user.name)
        env_volume = await self.shared_environment_volume()
        if self.home_disks is not None:
            await self.attach_home_disk()
        else:
            await self.ensure_home_volumes()
        if self.egress.closed:
            await self.isolate()
        mounted = await self.grant_datasets()
        self.read_only_volumes = {**self.read_only_volumes, env_volume: ENV_MOUNT, **mounted}
        # this start's group folders only: not those of an earlier start, before a change of membership
        kept = {k: v for k, v in self.volumes.items() if not is_group_folder(v)}
        self.volumes = {**kept, **await self.group_folders()}
        # DockerSpawner renders extra_create_kwargs as templates (str.format): a name is
        # never a template, so its braces are doubled to come out as they are.
        user, server = (n.replace("{", "{{").replace("}", "}}") for n in (self.user.name, self.name))
        labels = self.names.labels(Role.USER_SERVER, user=user, server=server)
        labels[LABEL_DATASETS] = ",".join(self.mounted_datasets)
        profile = self.profile or (self.profiles.default if self.profiles else None)
        if profile is not None:
            labels[LABEL_PROFILE] = profile.name
        with_database = profile is not None and profile.database
        if with_database:
            password = database.new_password()
            self.environment = {**self.environment, **database.server_environment(password)}
        self.extra_create_kwargs = {**self.extra_create_kwargs, "labels": labels}
        ip, port = await super().start()
        if with_database:  # in the server's network namespace, so only once the server's container runs
            await database.Sidecar(self).start(self.container_id, password, profile)
        await self.wait_until_answering(f"http://{ip}:{port}")
        return ip, port

    # -- closed egress: a network of its own -------------------------------------------------
    @property
    def own_network(self):
        return self.names.user_network(self.escaped_name)

    async def isolate(self):
        """This server alone on an internal network with the hub and the egress container; DNS and
        HTTP(S) through the egress container (hubstack.common.egress)."""
        if self.egress_audit is not None:
            self.egress_audit.start()
        network = self.own_network
        async with NETWORKS:
            try:
                attrs = await self.docker("inspect_network", network)
            except NotFound:
                attrs = await self.make_network(network)
        present = attached(attrs)
        for container, alias in (
            (self.names.hub_container, HUB_SERVICE),
            (self.names.egress_container, EGRESS_SERVICE),
        ):
            if container not in present:
                await self.docker("connect_container_to_network", container, network, aliases=[alias])
        egress = await self.docker("inspect_container", self.names.egress_container)
        dns = egress["NetworkSettings"]["Networks"][network]["IPAddress"]
        self.network_name = network
        self.extra_host_config = {**self.extra_host_config, "dns": [dns]}
        self.environment = {**self.environment, **self.egress.server_environment()}

    async def make_network(self, network):
        subnet = free_subnet(self.egress.pool, await self.docker("networks"))
        if subnet is None:
            raise SpawnException(
                "The hub has no free address range for another server: tell the operator "
                f"(HUBSTACK_USER_SUBNETS={self.egress.pool} is full).",
                reason="network",
            )
        await self.docker(
            "create_network",
            network,
            ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)]),
            labels=self.names.labels(Role.USER_NETWORK, user=self.user.name),
            **network_options(network),
        )
        self.log.info("Created network %s (%s) for %s", network, subnet, self.user.name)
        return await self.docker("inspect_network", network)

    async def release_network(self):
        """Remove the user's network once no server of theirs is on it (named servers share it)."""
        network = self.own_network
        ours = {self.names.hub_container, self.names.egress_container}
        try:
            if attached(await self.docker("inspect_network", network)) - ours:
                return
            for container in ours:
                await self.docker("disconnect_container_from_network", container, network, force=True)
            await self.docker("remove_network", network)
        except NotFound:
            pass  # gone already
        except APIError as err:
            self.log.warning("Could not remove the network %s of %s: %s", network, self.user.name, err)

    async def stop(self, now=False):
        await database.Sidecar(self).remove(grace=10)  # if there is one, before its server's network goes
        await super().stop(now=now)
        if self.home_disks is not None:
            await self.home_disks.release_async(self.escaped_name)
        if self.egress.closed:
            await self.release_network()

    async def delete_forever(self):
        """The user (or one named server of theirs) is deleted from the hub: keep every volume."""
        if self.egress.closed:
            await self.release_network()
        if self.name:  # a named server: it shares the user's home, nothing of its own to keep
            reason = f"named server {self.name!r} deleted from the hub"
            self.audit.write("server-deleted", self.user.name, Decision("deleted", "hub", reason), 0)
            return
        try:
            listed = (await self.docker("volumes", filters=self.names.label_filter(user=self.user.name)))["Volumes"]
            kept = sorted(v["Name"] for v in of_user(listed or [], self.names, self.user.name))
        except APIError as err:  # the deletion is audited all the same
            self.log.warning("Could not list the volumes of %s: %s", self.user.name, err)
            kept = None
        reason = "deleted from the hub; the volumes stay (hubstack users delete NAME --purge removes them)"
        self.audit.write("user-deleted", self.user.name, Decision("deleted", "hub", reason), 0, kept=kept)

    async def grant_datasets(self):
        """{volume: mount point} of the datasets granted now; tells the server what it got and why not."""
        gate = self.dataset_gate
        if gate is None or not gate.datasets:
            self.mounted_datasets = []
            return {}
        grants = await gate.grants(self.user.name, await gate.visas(self.user), "spawn")
        granted = [g.dataset for g in grants if g.granted]
        self.mounted_datasets = [d.name for d in granted]
        self.environment = {**self.environment, DATASETS_ENV: gate.note(grants)}
        gate.notices.pop(self.user.name, None)
        return {d.volume_name(self.names): d.mount_point for d in granted}

    def get_state(self):
        state = super().get_state()
        if self.mounted_datasets:
            state["datasets"] = list(self.mounted_datasets)
        return state

    def load_state(self, state):
        super().load_state(state)
        self.mounted_datasets = list(state.get("datasets", []))

    def clear_state(self):
        super().clear_state()
        self.mounted_datasets = []

    async def answers(self, url):
        """As the hub judges it: any HTTP answer that is not a server error."""
        try:
            response = await AsyncHTTPClient().fetch(url, raise_error=False, follow_redirects=False, request_timeout=5)
        except Exception:  # noqa: BLE001 - refused, reset, not resolvable yet: not up yet
            return False
        return response.code < 500

    async def wait_until_answering(self, address):
        url = url_path_join(address, self.server.base_url if self.server else "/", "api")
        last_look = time.monotonic()

        async def up_or_gone():
            nonlocal last_look
            if await self.answers(url):
                return True
            if time.monotonic() - last_look > 1:  # a server that died at start: let the hub report it now
                last_look = time.monotonic()
                return await self.poll() is not None
            return False

        try:
            await exponential_backoff(
                up_or_gone,
                f"{url} did not answer",
                start_wait=0.05,
                scale_factor=1.5,
                max_wait=self.ready_poll_max,
                timeout=self.http_timeout,
            )
        except AnyTimeoutError:
            pass  # the hub's own wait gives up too, and says why
