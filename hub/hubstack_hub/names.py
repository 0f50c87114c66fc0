"""The user names hubstack accepts: ASCII e-mail addresses (and, in dev mode,
plain ASCII names), so that no two people ever share a container, a volume or
a label, and no name is ever read as markup, a path or a template.

JupyterHub lower-cases a name before checking it; Unicode lower-casing maps
look-alikes onto ASCII (the Kelvin sign K becomes k), so a name that is not
ASCII to begin with is refused before that can happen. DockerSpawner escapes
names for container and volume names; an escaped name longer than
MAX_ESCAPED would not fit a volume's folder name.
"""

import string

from escapism import escape

# No "%" (obsolete source routing in addresses): a name never looks like URL-encoding.
LOCAL = r"[a-z0-9_][a-z0-9_.+-]{0,63}"
DOMAIN = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+"
EMAIL = rf"{LOCAL}@{DOMAIN}"
# \Z, not $: JupyterHub uses re.match, and $ would let a trailing newline through.
PRODUCTION_PATTERN = rf"^{EMAIL}\Z"
DEV_PATTERN = rf"^(?:{EMAIL}|[a-z0-9][a-z0-9._+-]{{0,63}})\Z"
MAX_ESCAPED = 200


def docker_escape(name):
    """DockerSpawner's escaping of a user name in container and volume names."""
    return escape(name, set(string.ascii_lowercase + string.digits), escape_char="-").lower()


class SafeUserNames:
    """Put before the Authenticator in the bases."""

    def normalize_username(self, username):
        if not username.isascii():
            return username  # not lower-cased into something ASCII: validate_username refuses it
        return super().normalize_username(username)

    def validate_username(self, username):
        return (
            username.isascii() and super().validate_username(username) and len(docker_escape(username)) <= MAX_ESCAPED
        )
