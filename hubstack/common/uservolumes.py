"""Whose a volume is: the labels the spawner puts on it (the instance and the user's exact
name), never its name. DockerSpawner's escaped names are not for matching: a prefix of
one user's volume name can be another user's whole name (ann, anna)."""

from .contract import LABEL_INSTANCE, LABEL_ROLE, LABEL_USER


def owner(volume, names):
    """The user a volume of this instance belongs to, or None (not this instance's, or nobody's).

    volume: the engine's description of it (a dict with "Labels", as the API lists volumes).
    """
    labels = volume.get("Labels") or {}
    if labels.get(LABEL_INSTANCE) != names.instance:
        return None
    return labels.get(LABEL_USER) or None


def of_user(volumes, names, user):
    """The volumes of exactly this user."""
    return [v for v in volumes if user and owner(v, names) == user]


def orphans(volumes, names, users):
    """The per-user volumes whose user is not one of users (the hub's users now)."""
    users = set(users)
    return [v for v in volumes if owner(v, names) is not None and owner(v, names) not in users]


def role(volume):
    return (volume.get("Labels") or {}).get(LABEL_ROLE, "")
