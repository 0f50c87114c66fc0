"""DockerSpawner with the two volumes every hubstack user server gets.

- the user's own home volume, created with this instance's labels so that
  `hubstack status` finds it and nothing else claims it;
- the shared environment, read-only, from the volume that `hubstack build`
  filled last. The build tags the environment image it filled the volume from
  as `:current`, so a new spawn never sees a half-copied environment and
  running servers keep the one they started with.

It also returns from start() only once the server answers, found by short
polls: the hub's own wait (exponential back-off up to 5 s between tries)
would otherwise notice a server seconds after it is up.
"""

import time

from docker.errors import APIError, NotFound
from dockerspawner import DockerSpawner
from jupyterhub.spawner import SpawnException
from jupyterhub.utils import AnyTimeoutError, exponential_backoff, url_path_join
from tornado.httpclient import AsyncHTTPClient
from traitlets import Float, Unicode

from hubstack.common.contract import ENV_MOUNT, Names, Role, short_id


class HubstackSpawner(DockerSpawner):
    instance = Unicode("hubstack", config=True, help="HUBSTACK_NAME of this instance")
    ready_poll_max = Float(0.25, config=True, help="Longest pause (s) between two asks whether a new server answers")

    @property
    def names(self):
        return Names(self.instance)

    async def shared_environment_volume(self):
        tag = self.names.current_environment
        try:
            image = await self.docker("inspect_image", tag)
        except NotFound:  # also ImageNotFound
            raise SpawnException(
                "The shared environment is not ready yet. Please tell the hub's operator to run `hubstack build`."
            ) from None
        return self.names.env_volume(short_id(image["Id"]))

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

    def refuse_engine_access(self):
        """A user who can reach the Docker engine is root on the host: never mount its socket."""
        for source in (*self.volumes, *self.read_only_volumes):
            if source.rstrip("/").endswith("docker.sock"):
                raise SpawnException(f"refusing to mount {source} into a user server: it gives root on the host")

    async def start(self):
        self.refuse_engine_access()
        env_volume = await self.shared_environment_volume()
        await self.ensure_home_volumes()
        self.read_only_volumes = {**self.read_only_volumes, env_volume: ENV_MOUNT}
        # DockerSpawner renders extra_create_kwargs as templates (str.format): a name is
        # never a template, so its braces are doubled to come out as they are.
        user = self.user.name.replace("{", "{{").replace("}", "}}")
        labels = self.names.labels(Role.USER_SERVER, user=user)
        self.extra_create_kwargs = {**self.extra_create_kwargs, "labels": labels}
        ip, port = await super().start()
        await self.wait_until_answering(f"http://{ip}:{port}")
        return ip, port

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
