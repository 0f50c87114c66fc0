"""What may start a hub: dev mode only on loopback, production only complete.

`check_mode` refuses every configuration that would open the hub to anyone
or serve it in plain HTTP on a public address, on the host (`hubstack up`)
and again in the hub (jupyterhub_config.py) with the same one-line errors.
"""

from pathlib import Path
from urllib.parse import urlsplit

from .https import check_https
from .login import load_login
from .parse import SettingsError, boolean

DEV, PRODUCTION = "dev", "production"


def check_data_mode(recorded, settings):
    """Refuse to run in one mode on the data of the other; the mode to record (or None to keep it).

    recorded: the mode the instance's data was made in (None: not known yet).
    Dev mode on production data would let anyone on loopback log in as a
    researcher, with their home and tokens; production on dev data would keep
    whatever anyone made there as anyone.
    """
    adopt = boolean("HUBSTACK_ADOPT_DEV_DATA", settings.raw.get("HUBSTACK_ADOPT_DEV_DATA", "0"))
    if settings.dev_mode:
        if adopt:
            raise SettingsError("HUBSTACK_ADOPT_DEV_DATA=1 is for a production start: remove it in dev mode")
        if recorded == PRODUCTION:
            raise SettingsError(
                f"the data of instance {settings.name} was made in production: dev mode would let anyone log in as "
                "its researchers; use another HUBSTACK_NAME for development (e.g. HUBSTACK_NAME=hubdev)"
            )
        return DEV if recorded is None else None
    if recorded == DEV and not adopt:
        raise SettingsError(
            f"the data of instance {settings.name} was made in dev mode, where anyone could log in as anyone: "
            "start production under another HUBSTACK_NAME, or check its users and set HUBSTACK_ADOPT_DEV_DATA=1 "
            "for one start to take it over"
        )
    return PRODUCTION if recorded != PRODUCTION else None


def check_mode(settings, secrets_dir, access_dir):
    """The checked production log-in (login.Login), or None in dev mode.

    The folders are where this process sees the instance's secrets and
    approval list (the checkout on the host, the mounts in the hub).
    """
    if settings.dev_mode:
        if not settings.loopback_bind and not settings.allow_insecure_dev:
            raise SettingsError(
                f"dev mode lets anyone log in, so it only binds to loopback: set HUBSTACK_BIND=127.0.0.1 "
                f"(now {settings.bind}), or HUBSTACK_ALLOW_INSECURE_DEV=1 on a network you trust"
            )
        check_https(settings, secrets_dir)
        return None
    if settings.dev_password:
        raise SettingsError("HUBSTACK_DEV_PASSWORD is a dev-mode setting: remove it outside dev mode (DEV_MODE=0)")
    if settings.allow_insecure_dev:
        raise SettingsError("HUBSTACK_ALLOW_INSECURE_DEV is a dev-mode setting: set it to 0 outside dev mode")
    if not settings.tls.on and not settings.loopback_bind:
        raise SettingsError(
            f"HUBSTACK_HTTPS is off but HUBSTACK_BIND={settings.bind} would publish the hub in plain HTTP: "
            "set HUBSTACK_HTTPS (acme, files or self-signed), or HUBSTACK_BIND=127.0.0.1 behind your own TLS terminator"
        )
    check_https(settings, secrets_dir)
    login = load_login(settings.raw, Path(secrets_dir), Path(access_dir))
    if settings.tls.on:
        callback = urlsplit(login.callback_url)
        if callback.scheme != "https" or callback.hostname != settings.tls.domain:
            raise SettingsError(
                f"OAUTH_CALLBACK_URL={login.callback_url!r} is not on HUBSTACK_DOMAIN={settings.tls.domain}: "
                f"use https://{settings.tls.domain}/hub/oauth_callback (and register it with the provider)"
            )
    return login
