"""Secrets kept under ``METERLINE_HOME``: the one place that creates and reads them.

A secret that is not configured is generated at random once and stored in a file of its own,
mode 0600, so every process of one installation (the CLI, ``meterline serve``, Dagster) agrees
on it without it ever being printed or put in a URL.

Meterline has three, independent of one another (none is derived from another, so knowing
one tells nothing of the others):

- the admin key (``METERLINE_ADMIN_KEY``, file ``admin_key``): what an operator types or sends;
- the secret key (``METERLINE_SECRET_KEY``, file ``secret_key``): signs sessions and links;
- the alert webhook secret(s) (``ALERT_WEBHOOK_SECRET``, file ``webhook_secret``): sign the
  webhook per the Standard Webhooks spec; receivers hold them, so they must never sign in.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meterline.core.settings import Settings

ADMIN_KEY_FILE = "admin_key"
SECRET_KEY_FILE = "secret_key"
WEBHOOK_SECRET_FILE = "webhook_secret"
WEBHOOK_SECRET_PREFIX = "whsec_"


def stored_secret(
    home: Path,
    name: str,
    *,
    configured: str | None = None,
    nbytes: int = 32,
    generate: Callable[[int], str] = secrets.token_urlsafe,
) -> str:
    """``configured`` when set, else the secret in ``<home>/<name>``, created on first use
    (``generate(nbytes)``, URL-safe random text by default)."""
    if configured:
        return configured
    path = Path(home) / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text().strip()
    value = generate(nbytes)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def new_webhook_secret(nbytes: int = 32) -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def admin_key(settings: Settings) -> str:
    """``METERLINE_ADMIN_KEY``, else a random key kept in ``<home>/admin_key``."""
    return stored_secret(settings.home, ADMIN_KEY_FILE, configured=settings.admin_key, nbytes=24)


def secret_key(settings: Settings) -> str:
    """``METERLINE_SECRET_KEY``, else a random secret kept in ``<home>/secret_key``."""
    return stored_secret(settings.home, SECRET_KEY_FILE, configured=settings.secret_key)


def webhook_secrets(settings: Settings) -> tuple[str, ...]:
    """``ALERT_WEBHOOK_SECRET`` split on spaces (several while rotating, the newest first),
    else one random ``whsec_`` secret kept in ``<home>/webhook_secret``."""
    return stored_webhook_secrets(settings.home, settings.alert_webhook_secret)


def stored_webhook_secrets(home: Path, configured: str | None) -> tuple[str, ...]:
    """:func:`webhook_secrets` from plain values (``configured``: ALERT_WEBHOOK_SECRET)."""
    given = tuple((configured or "").split())
    if given:
        return given
    return (stored_secret(home, WEBHOOK_SECRET_FILE, generate=new_webhook_secret),)
