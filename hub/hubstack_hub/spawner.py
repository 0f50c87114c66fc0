"""DockerSpawner with the two volumes every hubstack user server gets.

- the user's own home volume, created with this instance's labels so that
  `hubstack status` finds it and nothing else claims it;
- the shared environment, read-only, from the volume that `hubstack build`
  filled last. The build tags the environment image it filled the volume from
  as `:current`, so a new spawn never sees a half-copied environment and
  running servers keep the one they started with.
"""

from docker.errors import APIError, NotFound
from dockerspawner import DockerSpawner
from hubstack.settings import short_id
from jupyterhub.spawner import SpawnException
from traitlets import Unicode

ENV_MOUNT = "/opt/conda"


class HubstackSpawner(DockerSpawner):
    instance = Unicode("hubstack", config=True, help="HUBSTACK_NAME of this instance")

    @property
    def instance_labels(self):
        return {"hubstack.instance": self.instance}

    async def shared_environment_volume(self):
        tag = f"{self.instance}-environment:current"
        try:
            image = await self.docker("inspect_image", tag)
        except NotFound:  # also ImageNotFound
            raise SpawnException(
                "The shared environment is not ready yet. Please tell the hub's operator to run `hubstack build`."
            ) from None
        return f"{self.instance}-env-{short_id(image['Id'])}"

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
            labels = {**self.instance_labels, "hubstack.role": "home", "hubstack.user": self.user.name}
            await self.docker("create_volume", name=name, labels=labels)
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
        labels = {**self.instance_labels, "hubstack.role": "user-server", "hubstack.user": self.user.name}
        self.extra_create_kwargs = {**self.extra_create_kwargs, "labels": labels}
        return await super().start()
