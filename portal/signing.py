"""Signed, expiring dashboard links and session cookies (HMAC-SHA256, no server state).

A token signs ``<purpose>\\n<subject>\\n<exp>`` with the dashboard secret:

- a tenant link ``/dashboard?t=<tenant>&exp=<unix>&sig=<hex>`` (purpose ``tenant``) opens
  that tenant's page until ``exp``; the same triple, joined by ``:``, is the tenant session
  cookie, so a session never outlives the link (or key login) that created it;
- an admin link ``/admin?exp=<unix>&sig=<hex>`` (purpose ``admin``, subject ``admin``) opens
  the admin overview until ``exp``; the admin session cookie is the same pair as
  ``admin:<exp>:<sig>``, so it never outlives the link (or the ``?key=`` login) either.

Links carry no key: a link names who it is for and until when, and the signature proves the
server's secret made it.

The secret is ``METERLINE_DASHBOARD_SECRET``, else derived from ``METERLINE_ADMIN_KEY`` (so
every ``meterline serve`` process of a deployment accepts the links of the others), else a
random secret persisted in ``<METERLINE_HOME>/dashboard_secret`` (see :func:`resolve_secret`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from meterline.core import clock
from meterline.core.secrets import stored_secret

TENANT = "tenant"
ADMIN = "admin"
DEFAULT_LINK_TTL = 24 * 3600
SESSION_TTL = 12 * 3600


def resolve_secret(admin_key: str | None, env: Mapping[str, str] | None = None) -> str:
    """``METERLINE_DASHBOARD_SECRET``, else a key derived from the admin key, else a random
    secret kept in ``<METERLINE_HOME>/dashboard_secret`` (mode 0600, created once, so the
    demo and ``meterline serve`` agree), else a random secret for this process only.
    ``env`` (default: the process environment) is read through the settings object."""
    from meterline.core.settings import Settings

    settings = Settings.from_env(env)
    if settings.dashboard_secret:
        return settings.dashboard_secret
    if admin_key:
        return hmac.new(admin_key.encode(), b"meterline dashboard links v1", "sha256").hexdigest()
    if "home" in settings.model_fields_set:
        try:
            return stored_secret(settings.home, "dashboard_secret")
        except OSError:  # an unwritable home: a secret for this process only
            return secrets.token_hex(32)
    return secrets.token_hex(32)


def sign(secret: str, purpose: str, subject: str, exp: int) -> str:
    message = f"{purpose}\n{subject}\n{int(exp)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking a token: ``subject`` when valid, else ``status`` 401 (expired or
    malformed) or 403 (bad signature) and a one-line ``reason``."""

    subject: str | None
    exp: int = 0
    status: int = 200
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.subject is not None


def verify(
    secret: str,
    purpose: str,
    subject: str | None,
    exp: str | int | None,
    sig: str | None,
    *,
    now: float | None = None,
) -> Verdict:
    if not subject or exp is None or not sig:
        needs = "t, exp and sig" if purpose == TENANT else "exp and sig"
        return Verdict(None, status=401, reason=f"incomplete link: needs {needs}")
    try:
        expires = int(exp)
    except (TypeError, ValueError):
        return Verdict(None, status=401, reason=f"exp: not a unix timestamp, got {exp!r}")
    if not hmac.compare_digest(sign(secret, purpose, subject, expires), str(sig)):
        return Verdict(None, status=403, reason="sig: signature does not match; ask for a new link")
    if expires <= (clock.timestamp() if now is None else now):
        return Verdict(None, exp=expires, status=401, reason="link expired; ask for a new one")
    return Verdict(subject, exp=expires)


def session_token(secret: str, purpose: str, subject: str, exp: int) -> str:
    return f"{subject}:{int(exp)}:{sign(secret, purpose, subject, exp)}"


def verify_session(secret: str, purpose: str, token: str | None, *, now: float | None = None):
    if not token:
        return Verdict(None, status=401, reason="no session")
    subject, _, rest = token.rpartition(":")
    subject, _, exp = subject.rpartition(":")
    return verify(secret, purpose, subject, exp, rest, now=now)


def mint_dashboard_link(
    tenant_id: str,
    *,
    secret: str,
    ttl: int = DEFAULT_LINK_TTL,
    base_url: str = "",
    now: float | None = None,
) -> str:
    """A signed link to ``tenant_id``'s dashboard, valid for ``ttl`` seconds.

    ``base_url`` like ``http://127.0.0.1:8000`` (empty: a path relative to the server)."""
    if ttl <= 0:
        raise ValueError(f"ttl: must be > 0 seconds, got {ttl}")
    exp = int((clock.timestamp() if now is None else now) + ttl)
    query = urlencode({"t": tenant_id, "exp": exp, "sig": sign(secret, TENANT, tenant_id, exp)})
    return f"{base_url.rstrip('/')}/dashboard?{query}"


ADMIN_SUBJECT = "admin"


def mint_admin_link(
    *,
    secret: str,
    ttl: int = DEFAULT_LINK_TTL,
    base_url: str = "",
    now: float | None = None,
) -> str:
    """A signed link to the admin overview (``/admin``), valid for ``ttl`` seconds.

    It carries no key: ``meterline serve`` checks the signature with the same secret and turns
    the link into an admin session cookie. Mint it only for operators; anyone holding it is
    admin until it expires."""
    if ttl <= 0:
        raise ValueError(f"ttl: must be > 0 seconds, got {ttl}")
    exp = int((clock.timestamp() if now is None else now) + ttl)
    query = urlencode({"exp": exp, "sig": sign(secret, ADMIN, ADMIN_SUBJECT, exp)})
    return f"{base_url.rstrip('/')}/admin?{query}"
