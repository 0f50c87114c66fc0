"""`hubstack users`: who uses the hub, their servers, homes and approval; deleting one.

What the hub knows (its users, their servers and last activity, the access check's last
decision; deleting a user; the audit lines) is asked of the running hub, which reads it
through its own REST API (hubstack_hub.users). Volumes and their sizes are the engine's.
A user's volumes are the ones labelled with this instance and their exact name
(hubstack.common.uservolumes), never found by a name prefix, and they are removed only
with --purge, once the operator has typed that name.
"""

import json

from docker.errors import APIError, NotFound

from .common.contract import Role
from .common.uservolumes import of_user, orphans, owner, role
from .errors import HubstackError, NotConfirmed

HUB_SIDE = "hubstack_hub.users"
SIZE_BATCH = 100  # volumes measured by one throwaway container


# -- pure: what the CLI decides and shows ---------------------------------------------------------
def check_confirmation(name, typed):
    """The operator typed exactly the user's name, or NotConfirmed (nothing has been changed yet)."""
    if typed != name:
        said = repr(typed) if typed else "nothing"
        raise NotConfirmed(f"{said} is not the user's name {name!r}: nothing was deleted")


def row(volume, names, sizes):
    return {
        "name": volume["Name"],
        "user": owner(volume, names),
        "role": role(volume),
        "bytes": sizes.get(volume["Name"]),
        "created": volume.get("CreatedAt"),
    }


def measured(du_output, batch):
    """{volume name: bytes} from `du -sb /v/0 /v/1 ...`, where /v/i is batch[i]."""
    sizes = {}
    for line in du_output.splitlines():
        size, _, path = line.partition("\t")
        index = path.rpartition("/")[2]
        if size.isdigit() and index.isdigit() and int(index) < len(batch):
            sizes[batch[int(index)]] = int(size)
    return sizes


def total(rows):
    sizes = [r["bytes"] for r in rows]
    return None if any(s is None for s in sizes) else sum(sizes)


def human_size(size):
    if size is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def servers_cell(servers):
    """'running', 'stopped', 'running, lab2 stopped' (named servers by name), or 'no server'."""
    if not servers:
        return "no server"
    return ", ".join(f"{s['name']} {s['state']}" if s["name"] else s["state"] for s in servers)


def approval_cell(approval, age):
    """What the access check last decided: 'dev', 'approved (list, login 5m ago)', 'none logged'."""
    if approval == "dev":
        return "dev"
    if not approval:
        return "none logged"
    return f"{approval['decision']} ({approval['source']}, {approval['event']} {age(approval['time'])} ago)"


# -- the stack: the hub's side and the engine's -----------------------------------------------------
class Users:
    def __init__(self, stack):
        self.stack, self.names, self.client = stack, stack.names, stack.client

    def ask_hub(self, *args):
        said = self.stack.ask_hub(HUB_SIDE, *args)
        if "error" in said:
            raise HubstackError(f"the hub could not do it: {said['error']}")
        return said

    def hub_users(self):
        return self.ask_hub("list")["users"]

    def volumes(self):
        """Every per-user volume of this instance, as the engine lists it."""
        listed = self.client.api.volumes(filters=self.names.label_filter())["Volumes"] or []
        return [v for v in listed if owner(v, self.names) is not None]

    def sizes(self, volumes):
        """{volume name: bytes in it}: `du` in a throwaway container of the hub image, no network,
        the volumes mounted read-only. (The engine's own disk usage, `docker system df -v`, walks
        every image, container and volume on the host: about 30 s on the test machines.)"""
        names, sizes = [v["Name"] for v in volumes], {}
        for start in range(0, len(names), SIZE_BATCH):
            batch = names[start : start + SIZE_BATCH]
            said = self.client.containers.run(
                self.names.image("hub"),
                ["sh", "-c", "du -sb /v/* 2>/dev/null; true"],  # a file that vanishes meanwhile is no error
                volumes={name: {"bind": f"/v/{i}", "mode": "ro"} for i, name in enumerate(batch)},
                user="0",
                network_disabled=True,
                remove=True,
                labels=self.names.labels(),
            )
            sizes.update(measured(said.decode(errors="replace"), batch))
        return sizes

    def listing(self):
        """The hub's users, each with their volumes and the size of their home."""
        users, volumes = self.hub_users(), self.volumes()
        sizes = self.sizes([v for v in volumes if owner(v, self.names) in {u["name"] for u in users}])
        for user in users:
            mine = [row(v, self.names, sizes) for v in of_user(volumes, self.names, user["name"])]
            user["volumes"] = mine
            user["home_bytes"] = total([v for v in mine if v["role"] == Role.HOME])
        return users

    def orphans(self):
        """Per-user volumes whose user is no longer in the hub."""
        left = orphans(self.volumes(), self.names, [u["name"] for u in self.hub_users()])
        sizes = self.sizes(left)
        return [row(v, self.names, sizes) for v in left]

    def delete(self, name, purge=False, confirm=None):
        """Delete name from the hub (servers stopped first), keeping their volumes; with purge,
        remove those volumes too, once confirm(in_hub, volume rows) has returned exactly name.

        Works for a user already gone from the hub (purge only: their orphaned volumes).
        """
        in_hub = any(u["name"] == name for u in self.hub_users())
        mine = of_user(self.volumes(), self.names, name)
        if not in_hub and not mine:
            raise HubstackError(f"no user {name!r} in the hub and no volume of theirs: `hubstack users` lists them")
        if not in_hub and not purge:
            raise HubstackError(
                f"{name!r} is not in the hub any more; their {len(mine)} volume(s) stay until "
                f"`hubstack users delete {name} --purge`"
            )
        if purge:
            sizes = self.sizes(mine)
            check_confirmation(name, confirm(in_hub, [row(v, self.names, sizes) for v in mine]))
        done = {"user": name, "deleted_from_hub": False, "stopped": [], "kept": [], "removed": [], "failed": {}}
        if in_hub:
            said = self.ask_hub("delete", name)
            done["deleted_from_hub"], done["stopped"] = said["found"], said.get("stopped", [])
        if not purge:
            done["kept"] = [v["Name"] for v in mine]
            return done
        for volume in mine:
            self.remove_volume(volume["Name"], name, done)
        self.ask_hub("purged", name, json.dumps({"removed": done["removed"], "failed": sorted(done["failed"])}))
        if done["failed"]:
            why = "; ".join(f"{v}: {reason}" for v, reason in done["failed"].items())
            raise HubstackError(f"removed {len(done['removed'])} volume(s) of {name!r}, not these: {why}")
        return done

    def remove_volume(self, volume_name, user, done):
        """Remove one volume if it still is exactly user's (its labels, read again now)."""
        try:
            volume = self.client.volumes.get(volume_name)
            if owner(volume.attrs, self.names) != user:
                done["failed"][volume_name] = "its labels no longer name this user"
                return
            volume.remove()
            done["removed"].append(volume_name)
        except NotFound:
            pass  # gone meanwhile: not ours to report as removed
        except APIError as err:
            done["failed"][volume_name] = str(err.explanation or err)[:200]
