"""Signed, expiring, one-time sign-in links and session cookies (HMAC-SHA256 with the secret
key ``METERLINE_SECRET_KEY``).

- A link signs ``link\n<purpose>\n<subject>\n<exp>\n<code>``, where ``code`` is a random
  one-time code: a tenant link ``/dashboard?t=<tenant>&exp=<unix>&code=<code>&sig=<hex>``
  (purpose ``tenant``), an admin link ``/admin?exp=<unix>&code=<code>&sig=<hex>`` (purpose
  ``admin``, subject ``admin``). The server accepts a link once (it records the used
  signature in Redis until ``exp``; see :mod:`portal.sign_in`) and turns it into a session
  cookie, so a link copied from a terminal, a browser history or a log is worth nothing.
- A session cookie is ``<subject>:<exp>:<sig>`` where ``sig`` signs
  ``session\n<purpose>\n<subject>\n<exp>``: a different message from a link's, so a link's
  signature is never a session and a session is never a link. A session never outlives the
  link that created it.

Links carry no key and no reusable secret. The secret key is independent of the admin key
and of the alert webhook secret (see :mod:`meterline.core.secrets`): a webhook receiver, who
holds the webhook secret, cannot mint a session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from meterline.core import clock
from meterline.core.secrets import secret_key

TENANT = "tenant"
ADMIN = "admin"
DEFAULT_LINK_TTL = 24 * 3600
SESSION_TTL = 12 * 3600


def resolve_secret(env: Mapping[str, str] | None = None) -> str:
    """The secret key (:func:`meterline.core.secrets.secret_key`: ``METERLINE_SECRET_KEY``,
    else ``<METERLINE_HOME>/secret_key``, created once, so the demo and ``meterline serve``
    agree); without METERLINE_HOME set, or when it is unwritable, a random secret for this
    process only. ``env`` (default: the process environment) is read through the settings."""
    from meterline.core.settings import Settings

    settings = Settings.from_env(env)
    if settings.secret_key or "home" in settings.model_fields_set:
        try:
            return secret_key(settings)
        except OSError:  # an unwritable home: a secret for this process only
            return secrets.token_hex(32)
    return secrets.token_hex(32)


def _hmac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign(secret: str, purpose: str, subject: str, exp: int, code: str) -> str:
    """The signature of a one-time link."""
    return _hmac(secret, f"link\n{purpose}\n{subject}\n{int(exp)}\n{code}")


def sign_session(secret: str, purpose: str, subject: str, exp: int) -> str:
    return _hmac(secret, f"session\n{purpose}\n{subject}\n{int(exp)}")


def same_text(expected: str, given: object) -> bool:
    """Constant-time comparison that survives any text (a non-ASCII signature from a link or
    a cookie is just wrong, never an exception)."""
    return hmac.compare_digest(expected.encode(), str(given).encode("utf-8", "surrogatepass"))


def _unix_time(exp: object) -> int | None:
    text = str(exp)
    return int(text) if text.isascii() and text.isdigit() and len(text) < 16 else None


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
    code: str | None = None,
    *,
    now: float | None = None,
    signer=None,
) -> Verdict:
    """Check a link (``code`` and ``sig``), or with ``signer=sign_session`` a session."""
    if not subject or exp is None or not sig or (signer is None and not code):
        needs = "t, exp, code and sig" if purpose == TENANT else "exp, code and sig"
        return Verdict(None, status=401, reason=f"incomplete link: needs {needs}")
    expires = _unix_time(exp)
    if expires is None:
        return Verdict(None, status=401, reason="exp: not a unix timestamp")
    expected = (
        sign(secret, purpose, subject, expires, str(code))
        if signer is None
        else signer(secret, purpose, subject, expires)
    )
    if not same_text(expected, sig):
        return Verdict(None, status=403, reason="sig: signature does not match; ask for a new link")
    if expires <= (clock.timestamp() if now is None else now):
        return Verdict(None, exp=expires, status=401, reason="link expired; ask for a new one")
    return Verdict(subject, exp=expires)


def session_token(secret: str, purpose: str, subject: str, exp: int) -> str:
    return f"{subject}:{int(exp)}:{sign_session(secret, purpose, subject, exp)}"


def verify_session(secret: str, purpose: str, token: str | None, *, now: float | None = None):
    if not token:
        return Verdict(None, status=401, reason="no session")
    subject, _, rest = token.rpartition(":")
    subject, _, exp = subject.rpartition(":")
    return verify(secret, purpose, subject, exp, rest, now=now, signer=sign_session)


def _link_query(purpose: str, subject: str, *, secret: str, ttl: int, now: float | None) -> dict:
    if ttl <= 0:
        raise ValueError(f"ttl: must be > 0 seconds, got {ttl}")
    exp = int((clock.timestamp() if now is None else now) + ttl)
    code = secrets.token_urlsafe(16)
    return {"exp": exp, "code": code, "sig": sign(secret, purpose, subject, exp, code)}


def mint_dashboard_link(
    tenant_id: str,
    *,
    secret: str,
    ttl: int = DEFAULT_LINK_TTL,
    base_url: str = "",
    now: float | None = None,
) -> str:
    """A signed one-time link to ``tenant_id``'s dashboard, valid for ``ttl`` seconds.

    ``base_url`` like ``http://127.0.0.1:8000`` (empty: a path relative to the server)."""
    query = urlencode(
        {"t": tenant_id, **_link_query(TENANT, tenant_id, secret=secret, ttl=ttl, now=now)}
    )
    return f"{base_url.rstrip('/')}/dashboard?{query}"


ADMIN_SUBJECT = "admin"


def mint_admin_link(
    *,
    secret: str,
    ttl: int = DEFAULT_LINK_TTL,
    base_url: str = "",
    now: float | None = None,
) -> str:
    """A signed one-time link to the admin overview (``/admin``), valid for ``ttl`` seconds.

    It carries no key: ``meterline serve`` checks the signature with the same secret, accepts
    it once and turns it into an admin session cookie. Mint it only for operators: whoever
    opens it first is admin (until the session ends)."""
    query = urlencode(_link_query(ADMIN, ADMIN_SUBJECT, secret=secret, ttl=ttl, now=now))
    return f"{base_url.rstrip('/')}/admin?{query}"
