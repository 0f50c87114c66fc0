"""Home quotas (HUBSTACK_HOME_QUOTA): each home is an ext4 filesystem of its own.

Why this way (docs/home-quotas.md): the kernel enforces it whatever the host's
filesystem is, the researcher's `df` shows their quota, and a full home is
ENOSPC for them alone. The local volume driver cannot attach a file to a loop
device itself (moby#37893), and XFS project quotas need Docker's data root on
XFS mounted with `pquota` and a kernel built with XFS quota support.

- Each home is an image file `<escaped user>.ext4` in the volume
  `<instance>-homedisks`, reserved in full on Docker's disk (fallocate, so a
  full disk never turns into I/O errors under a researcher's feet). A home from
  before the quota is copied in when its image is made; the old volume stays.
- At each start a short-lived helper container (this module, run as
  `python3 -m hubstack_hub.homedisk` in the hub image, with the host's /dev,
  CAP_SYS_ADMIN and the loop devices only: not --privileged)
  makes the image if needed and attaches it to a loop device (or finds the one
  it is attached to). The hub then points the volume `<instance>-homedisk-<user>`
  at that device (local driver, type ext4), and the server mounts it as its home.
- At stop the hub removes that volume (its device number means nothing after a
  reboot) and the helper detaches the loop device; a device still mounted is
  detached by the kernel when its last mount goes.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from hubstack.common.contract import HOME_DISKS_MOUNT, OLD_HOME_MOUNT, USER_UID, Role

LOOP_CONTROL, LOOP_DEVICES = "c 10:237 rwm", "b 7:* rwm"  # /dev/loop-control, /dev/loopN
NO_ROOM = 3  # the helper's exit code: the home's reservation would leave too little free
TOO_BIG = 4  # the helper's exit code: a home from before the quota does not fit in it


# -- the helper, in its own container (CAP_SYS_ADMIN, the loop devices) ------------------
def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def attached(image):
    """The loop devices the image is attached to."""
    return [line.split(":", 1)[0] for line in run("losetup", "-j", str(image)).splitlines() if line]


def make(image, size, keep_free):
    """A new image of size bytes, reserved, with an ext4 owned by the researcher (and the old home in it)."""
    free = free_bytes(image.parent)
    if free - size < keep_free:
        return NO_ROOM, f"{free} bytes free, {size} needed for the home and {keep_free} kept free", False
    new = image.with_suffix(".new")
    new.unlink(missing_ok=True)
    try:
        run("fallocate", "-l", str(size), str(new))
        old = Path(OLD_HOME_MOUNT)
        copy = ["-d", str(old)] if old.is_dir() and any(old.iterdir()) else []
        try:
            options = f"nodiscard,root_owner={USER_UID}:{USER_UID}"
            run("mkfs.ext4", "-q", "-F", "-m", "0", "-L", "home", "-E", options, *copy, str(new))
        except subprocess.CalledProcessError as err:
            if copy:
                why = f"the home from before the quota does not fit in {size} bytes ({err.stderr.strip()[-200:]})"
                return TOO_BIG, why, True
            raise
        run("debugfs", "-w", "-R", "rmdir lost+found", str(new))  # not in the researcher's file browser
        new.rename(image)  # never a half-made image under the real name
    finally:
        new.unlink(missing_ok=True)
    return 0, "made", bool(copy)


def free_bytes(folder):
    disk = os.statvfs(folder)
    return disk.f_bavail * disk.f_frsize


def grow(image, size, keep_free):
    """A quota raised since the image was made: grow it (never shrink) while it is not in use and fits."""
    more = size - image.stat().st_size
    if more <= 0 or attached(image) or free_bytes(image.parent) - more < keep_free:
        return False
    run("fallocate", "-l", str(size), str(image))
    subprocess.run(["e2fsck", "-f", "-p", str(image)], check=False, capture_output=True)  # resize2fs asks for it
    run("resize2fs", str(image))
    return True


def loop(image):
    """A new loop device for the image. Direct I/O: the researcher's writes are cached once, in their own
    server's memory, not a second time in the host's page cache outside every limit."""
    try:
        return run("losetup", "-f", "--show", "--direct-io=on", str(image))
    except subprocess.CalledProcessError:
        return run("losetup", "-f", "--show", str(image))  # a filesystem without O_DIRECT under Docker's data


def helper(argv):
    """attach USER SIZE KEEP_FREE | detach USER; prints one JSON line."""
    action, user = argv[0], argv[1]
    image = Path(HOME_DISKS_MOUNT) / f"{user}.ext4"
    if action == "detach":
        devices = attached(image) if image.exists() else []
        for device in devices:
            subprocess.run(["losetup", "-d", device], check=False, capture_output=True)
        print(json.dumps({"detached": devices}))
        return 0
    size, keep_free = int(argv[2]), int(argv[3])
    made = grown = copied = False
    if not image.exists():
        code, why, copied = make(image, size, keep_free)
        if code:
            print(json.dumps({"refused": why}))
            return code
        made = True
    else:
        grown = grow(image, size, keep_free)
    devices = attached(image)
    device = devices[0] if devices else loop(image)
    print(json.dumps({"device": device, "made": made, "copied": copied, "grown": grown, "size": image.stat().st_size}))
    return 0


# -- the hub's side -------------------------------------------------------------------------
RELEASE_TRIES = 10  # seconds a stopped server's home volume may stay in use before it is left attached


class HomeDisks:
    """Runs the helper for the spawner and keeps each home's volume pointing at its loop device."""

    def __init__(self, names, quota, image):
        self.names, self.quota, self.image = names, quota, image
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import docker

            self._client = docker.from_env()
        return self._client

    def helper_mounts(self, old_home=None):
        mounts = {
            self.names.home_disks_volume: {"bind": HOME_DISKS_MOUNT, "mode": "rw"},
            "/dev": {"bind": "/dev", "mode": "rw"},  # the host's: loop devices made now appear in it
        }
        if old_home:
            mounts[old_home] = {"bind": OLD_HOME_MOUNT, "mode": "ro"}
        return mounts

    def run_helper(self, *args, old_home=None):
        """(exit code, the helper's JSON answer)."""
        container = self.client.containers.run(
            self.image,
            ["python3", "-m", "hubstack_hub.homedisk", *map(str, args)],
            entrypoint=[],
            network_mode="none",
            # losetup needs CAP_SYS_ADMIN and the loop devices; copying an old home in, reading every file.
            cap_drop=["ALL"],
            cap_add=["SYS_ADMIN", "DAC_READ_SEARCH"],
            device_cgroup_rules=[LOOP_CONTROL, LOOP_DEVICES],
            volumes=self.helper_mounts(old_home),
            labels=self.names.labels(Role.HOME_DISK_HELPER),
            detach=True,
        )
        try:
            code = container.wait(timeout=300)["StatusCode"]
            out = container.logs(stdout=True, stderr=False).decode().strip().splitlines()
            err = container.logs(stdout=False, stderr=True).decode().strip()
        finally:
            container.remove(force=True)
        try:
            return code, json.loads(out[-1])
        except (IndexError, ValueError):
            return code, {"error": err[-500:] or f"exit {code}"}

    def ensure_disks_volume(self):
        import docker.errors

        client = self.client
        try:
            client.volumes.get(self.names.home_disks_volume)
        except docker.errors.NotFound:
            client.volumes.create(self.names.home_disks_volume, labels=self.names.labels(Role.HOME_DISKS))

    def attach(self, escaped, user, keep_free, old_home):
        """(the user's home volume, the helper's answer); (None, (code, why)) when the helper refused."""
        import docker.errors

        client = self.client
        self.ensure_disks_volume()
        try:
            client.volumes.get(old_home)
        except docker.errors.NotFound:
            old_home = None
        code, answer = self.run_helper("attach", escaped, self.quota, keep_free, old_home=old_home)
        if code in (NO_ROOM, TOO_BIG):
            return None, (code, answer.get("refused", ""))
        if code != 0 or "device" not in answer:
            raise RuntimeError(f"the home disk helper failed: {answer.get('error', answer)}")
        name = self.names.home_disk_volume(escaped)
        options = {"type": "ext4", "device": answer["device"], "o": "nodev,nosuid"}
        try:
            volume = client.volumes.get(name)
            if (volume.attrs.get("Options") or {}) == options:
                return name, answer
            volume.remove()  # a device from before (a reboot, a detach): in use, this raises
        except docker.errors.NotFound:
            pass
        client.volumes.create(
            name, driver="local", driver_opts=options, labels=self.names.labels(Role.HOME_DISK, user=user)
        )
        return name, answer

    def release(self, escaped):
        """After the server is gone: its volume (a device number) removed, the loop device detached."""
        import docker.errors

        for attempt in range(RELEASE_TRIES):
            try:
                self.client.volumes.get(self.names.home_disk_volume(escaped)).remove()
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError:
                # In use: the engine may still be letting go of the stopped container's mounts, or
                # another server of the user mounts it (then it is detached when that one stops).
                if attempt == RELEASE_TRIES - 1:
                    return
                time.sleep(1)
        try:
            self.client.volumes.get(self.names.home_disks_volume)  # the helper must never make it empty
        except docker.errors.NotFound:
            return
        self.run_helper("detach", escaped)

    async def attach_async(self, *args):
        return await asyncio.to_thread(self.attach, *args)

    async def release_async(self, *args):
        return await asyncio.to_thread(self.release, *args)


if __name__ == "__main__":
    sys.exit(helper(sys.argv[1:]))
