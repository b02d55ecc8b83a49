"""Signing in to a page, never with a secret in a URL:

- a key typed into the sign-in form (``POST /dashboard/sign-in`` with a tenant API key,
  ``POST /admin/sign-in`` with ``METERLINE_ADMIN_KEY``, form field ``key``);
- a signed one-time link (``?exp=&code=&sig=``, see :mod:`portal.signing`), accepted once:
  its signature is recorded in Redis until it expires, a second use is refused.

Either becomes an HttpOnly, ``SameSite=Strict`` session cookie (``Secure`` over https; a
signed token, never the key) and a 303 to the bare page URL.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from ingestion.auth import KeyStore, same_secret
from meterline.core import clock
from portal import signing
from portal.access import (
    ADMIN_COOKIE,
    TENANT_COOKIE,
    admin_pages_disabled,
    identify_key,
    session_subject,
)
from portal.refused import Refused

MAX_FORM_BYTES = 4096


def is_secure(request: Request) -> bool:
    """Whether the browser talks https: the connection's own scheme or, from a trusted reverse
    proxy (``METERLINE_TRUSTED_PROXIES``) only, its ``X-Forwarded-Proto``."""
    proto = request.url.scheme
    keystore = getattr(request.app.state, "keystore", None)
    if keystore is not None and keystore.proxies.peer_is_trusted(request.scope):
        proto = request.headers.get("x-forwarded-proto", proto)
    return proto.split(",")[0].strip() == "https"


def set_session_cookie(
    response: Response, request: Request, cookie: str, token: str, max_age: int
) -> None:
    response.set_cookie(
        cookie, token, max_age=max_age, httponly=True, samesite="strict",
        secure=is_secure(request), path="/",
    )  # fmt: skip


def signed_in(location: str, cookie: str, token: str, exp: int, request: Request) -> Response:
    response = RedirectResponse(location, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    set_session_cookie(response, request, cookie, token, max(1, exp - int(clock.timestamp())))
    return response


async def form_key(request: Request) -> str:
    """The ``key`` field of a urlencoded sign-in form ('' when absent or unreadable)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return ""
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return ""
    return (fields.get("key") or [""])[0].strip()


class SignIn:
    def __init__(self, *, secret: str, admin_key: str | None, keystore: KeyStore, redis, prefix):
        self.secret = secret
        self.admin_key = admin_key
        self.keystore = keystore
        self.redis = redis
        self.prefix = prefix

    def _session_end(self) -> int:
        return int(clock.timestamp()) + signing.SESSION_TTL

    def _use_once(self, verdict: signing.Verdict, sig: str) -> None:
        """Record the link as used until it expires; refuse it if it already was."""
        ttl = max(1, verdict.exp - int(clock.timestamp()))
        if not self.redis.set(f"{self.prefix}:portal:used-link:{sig}", 1, nx=True, ex=ttl):
            raise Refused(401, "code", "this sign-in link was already used; ask for a new one")

    # -- tenant page ---------------------------------------------------------------------------
    def tenant_link(self, request: Request, t: str | None, exp, code, sig) -> Response:
        verdict = signing.verify(self.secret, signing.TENANT, t, exp, sig, code)
        if not verdict.ok:
            raise Refused(verdict.status, "sig", verdict.reason)
        self._use_once(verdict, sig)
        token = signing.session_token(self.secret, signing.TENANT, verdict.subject, verdict.exp)
        return signed_in("/dashboard", TENANT_COOKIE, token, verdict.exp, request)

    def tenant_key(self, request: Request, key: str) -> Response:
        identity = identify_key(self.keystore, key, request)
        if identity is None:
            raise Refused(401, "key", "unknown or revoked tenant API key")
        exp_at = self._session_end()
        subject = session_subject(identity.tenant_id, identity.key_id)
        token = signing.session_token(self.secret, signing.TENANT, subject, exp_at)
        return signed_in("/dashboard", TENANT_COOKIE, token, exp_at, request)

    def tenant_bearer(self, response: Response, request: Request, tenant: str) -> None:
        """A page opened with ``Authorization: Bearer``: also a session for its scripts,
        naming the key (:meth:`PortalAccess.tenant_of` noted it), so revoking it ends both."""
        subject = session_subject(tenant, getattr(request.state, "api_key_id", None))
        token = signing.session_token(self.secret, signing.TENANT, subject, self._session_end())
        set_session_cookie(response, request, TENANT_COOKIE, token, signing.SESSION_TTL)

    # -- admin page ----------------------------------------------------------------------------
    def admin_link(self, request: Request, exp, code, sig) -> Response:
        if not self.admin_key:
            raise admin_pages_disabled()  # 503 whatever the link says
        verdict = signing.verify(self.secret, signing.ADMIN, signing.ADMIN_SUBJECT, exp, sig, code)
        if not verdict.ok:
            raise Refused(verdict.status, "sig", verdict.reason)
        self._use_once(verdict, sig)
        token = signing.session_token(
            self.secret, signing.ADMIN, signing.ADMIN_SUBJECT, verdict.exp
        )
        return signed_in("/admin", ADMIN_COOKIE, token, verdict.exp, request)

    def admin_key_form(self, request: Request, key: str) -> Response:
        if not self.admin_key:
            raise admin_pages_disabled()
        if not same_secret(key, self.admin_key):
            raise Refused(401, "key", "not the admin key (METERLINE_ADMIN_KEY)")
        exp_at = self._session_end()
        token = signing.session_token(self.secret, signing.ADMIN, signing.ADMIN_SUBJECT, exp_at)
        return signed_in("/admin", ADMIN_COOKIE, token, exp_at, request)
