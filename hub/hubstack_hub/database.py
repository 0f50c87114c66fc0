"""The private database of a profile with database = true: MariaDB beside the user's server.

The sidecar container (image <instance>-database, Debian's mariadb-server)
shares the network namespace of the user's server (network_mode
container:<server>) and listens on 127.0.0.1 only: the notebook reaches it at
127.0.0.1:3306, and nobody else can, by any address. Its data lives in the
user's database volume (named and escaped like the home, labelled with the
user), which persists across stop and start, is backed up with the home and is
removed only with the home. The account's password is made new at every start
and handed to both containers in their environment, never written to an image.
The sidecar is stopped and removed with the server.
"""

import asyncio
import secrets
import time

from docker.errors import APIError, NotFound
from jupyterhub.spawner import SpawnException

from hubstack.common.contract import (
    DATABASE_DATA,
    DATABASE_NAME,
    DATABASE_PASSWORD_ENV,
    DATABASE_PORT,
    DATABASE_READY,
    DATABASE_URL_ENV,
    DATABASE_USER,
    LOG_DRIVER,
    LOG_MAX_FILES,
    LOG_MAX_SIZE,
    Role,
)

READY_TIMEOUT = 90  # a first start initialises the data folder: a few seconds


def server_environment(password):
    """What the notebook is told: a SQLAlchemy URL, and the parts for pymysql or the mariadb client."""
    return {
        DATABASE_URL_ENV: f"mysql+pymysql://{DATABASE_USER}:{password}@127.0.0.1:{DATABASE_PORT}/{DATABASE_NAME}",
        "MYSQL_HOST": "127.0.0.1",
        "MYSQL_TCP_PORT": str(DATABASE_PORT),
        "MYSQL_USER": DATABASE_USER,
        "MYSQL_PASSWORD": password,
        "MYSQL_DATABASE": DATABASE_NAME,
    }


SERVER_KEYS = tuple(server_environment(""))  # what a start without a database must not keep from one with


def new_password():
    return secrets.token_urlsafe(24)  # letters, digits, '-' and '_': safe in a URL and in SQL quotes


class Sidecar:
    """The database sidecar of one spawner's server."""

    def __init__(self, spawner):
        self.spawner = spawner

    @property
    def name(self):
        return f"{self.spawner.container_name}-db"

    @property
    def volume(self):
        return self.spawner.format_volume_name(self.spawner.names.database_volume_template, self.spawner)

    async def ensure_volume(self):
        docker, spawner = self.spawner.docker, self.spawner
        try:
            await docker("inspect_volume", self.volume)
        except NotFound:
            labels = spawner.names.labels(Role.DATABASE, user=spawner.user.name)
            await docker("create_volume", name=self.volume, labels=labels)
            spawner.log.info("Created database volume %s for %s", self.volume, spawner.user.name)

    async def remove(self, grace=0):
        """Remove the sidecar, if there is one; with grace (s), MariaDB first shuts down cleanly."""
        try:
            if grace:
                await self.spawner.docker("stop", self.name, timeout=grace)
            await self.spawner.docker("remove_container", self.name, force=True)
        except NotFound:
            pass
        except APIError as err:
            if err.status_code != 409:  # 409: its removal is under way already
                raise

    async def start(self, server_id, password, profile):
        """Start MariaDB in the namespace of the server container server_id; return once it answers."""
        spawner, docker = self.spawner, self.spawner.docker
        await self.remove()  # one left by a hub that stopped in the middle of a start
        await self.ensure_volume()
        memory = profile.database_mem_bytes
        host_config = await docker(
            "create_host_config",
            network_mode=f"container:{server_id}",
            binds={self.volume: {"bind": DATABASE_DATA, "mode": "rw"}},
            mem_limit=memory,
            memswap_limit=memory,
            pids_limit=256,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
            tmpfs={"/tmp": "rw,nosuid,nodev,mode=1777,size=64m"},  # the socket, the pid file, the start's SQL
            log_config={"type": LOG_DRIVER, "config": {"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILES}},
        )
        started = time.monotonic()
        created = await docker(
            "create_container",
            spawner.names.image("database"),
            name=self.name,
            environment={DATABASE_PASSWORD_ENV: password},
            labels=spawner.names.labels(
                Role.DATABASE_SIDECAR, user=spawner.user.name, server=spawner.name, profile=profile.name
            ),
            host_config=host_config,
        )
        await docker("start", created["Id"])
        await self.wait_until_ready(created["Id"])
        spawner.log.info("Database of %s ready in %.2f s", spawner.user.name, time.monotonic() - started)

    async def wait_until_ready(self, container_id):
        docker = self.spawner.docker
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            logs = (await docker("logs", container_id, stdout=True, stderr=True, tail=50)).decode(errors="replace")
            if DATABASE_READY in logs:
                return
            state = (await docker("inspect_container", container_id))["State"]
            if not state["Running"]:
                raise SpawnException(
                    "Your private database did not start. Please tell the hub's operator; your data is safe.",
                    reason="database",
                    log_message=f"database sidecar exited {state['ExitCode']}: {logs[-600:]}",
                )
            await asyncio.sleep(0.1)
        raise SpawnException(
            "Your private database did not answer in time. Please try again; your data is safe.",
            reason="database",
            log_message=f"database sidecar not ready after {READY_TIMEOUT} s",
        )
