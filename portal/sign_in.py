"""Signing in to a page: a signed link or a key given once (``?key=``) becomes an HttpOnly
session cookie (a signed token, never the key) and a 303 to the bare URL, so neither the key
nor the link stays in the address bar."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from ingestion.auth import KeyStore, TooManyUnknownKeys, same_secret
from meterline.core import clock
from portal import signing
from portal.access import (
    ADMIN_COOKIE,
    TENANT_COOKIE,
    admin_pages_disabled,
    key_refused,
    session_subject,
)
from portal.refused import Refused


def is_secure(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip() == "https"


def set_session_cookie(
    response: Response, request: Request, cookie: str, token: str, max_age: int
) -> None:
    response.set_cookie(
        cookie, token, max_age=max_age, httponly=True, samesite="lax",
        secure=is_secure(request), path="/",
    )  # fmt: skip


def signed_in(location: str, cookie: str, token: str, exp: int, request: Request) -> Response:
    response = RedirectResponse(location, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    set_session_cookie(response, request, cookie, token, max(1, exp - int(clock.timestamp())))
    return response


class SignIn:
    def __init__(self, *, secret: str, admin_key: str | None, keystore: KeyStore):
        self.secret = secret
        self.admin_key = admin_key
        self.keystore = keystore

    def _session_end(self) -> int:
        return int(clock.timestamp()) + signing.SESSION_TTL

    # -- tenant page ---------------------------------------------------------------------------
    def tenant_link(self, request: Request, t: str | None, exp, sig) -> Response:
        verdict = signing.verify(self.secret, signing.TENANT, t, exp, sig)
        if not verdict.ok:
            raise Refused(verdict.status, "sig", verdict.reason)
        token = signing.session_token(self.secret, signing.TENANT, verdict.subject, verdict.exp)
        return signed_in("/dashboard", TENANT_COOKIE, token, verdict.exp, request)

    def tenant_key(self, request: Request, key: str, t: str | None) -> Response:
        try:
            identity = self.keystore.identify(key, client=self.keystore.client_of(request.scope))
        except TooManyUnknownKeys as exc:
            raise key_refused(exc) from None
        tenant = identity.tenant_id if identity else None
        if identity is None or (t and t != tenant):
            raise Refused(
                401 if tenant is None else 403,
                "key",
                "key: unknown or revoked tenant API key"
                if tenant is None
                else "key: this key belongs to another tenant",
            )
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
    def admin_link(self, request: Request, exp, sig) -> Response:
        if not self.admin_key:
            raise admin_pages_disabled()  # 503 whatever the link says
        verdict = signing.verify(self.secret, signing.ADMIN, signing.ADMIN_SUBJECT, exp, sig)
        if not verdict.ok:
            raise Refused(verdict.status, "sig", verdict.reason)
        token = signing.session_token(
            self.secret, signing.ADMIN, signing.ADMIN_SUBJECT, verdict.exp
        )
        return signed_in("/admin", ADMIN_COOKIE, token, verdict.exp, request)

    def admin_key_once(self, request: Request, key: str) -> Response:
        if not self.admin_key:
            raise admin_pages_disabled()
        if not same_secret(key, self.admin_key):
            raise Refused(403, "key", "key: not the admin key (METERLINE_ADMIN_KEY)")
        exp_at = self._session_end()
        token = signing.session_token(self.secret, signing.ADMIN, signing.ADMIN_SUBJECT, exp_at)
        return signed_in("/admin", ADMIN_COOKIE, token, exp_at, request)
