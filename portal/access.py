"""Who may read what: the tenant of a request (Bearer key or tenant session cookie) and the
admin check (Bearer admin key or admin session cookie). A tenant only ever reads itself:
naming another tenant is 403.

A session made from an API key carries the key's id in its subject (``<tenant>#<key id>``,
see :func:`session_subject`) and is checked against revocation on every request (through the
key store's short cache), so revoking a key ends the sessions made from it within seconds.
A session from a signed link names the tenant alone and lasts until the link's expiry."""

from __future__ import annotations

from fastapi import Request

from ingestion.auth import KeyStore, TooManyUnknownKeys, bearer, same_secret
from portal import signing
from portal.refused import Refused

TENANT_COOKIE = "meterline_dashboard"
ADMIN_COOKIE = "meterline_admin"


KEY_MARK = "#"  # never in a tenant id


def session_subject(tenant_id: str, key_id: str | None) -> str:
    """The subject of a tenant session: the tenant, and the key it was made from, if any."""
    return f"{tenant_id}{KEY_MARK}{key_id}" if key_id else tenant_id


def identify_key(keystore: KeyStore, key: str | None, request: Request):
    """The identity of a tenant API key (``None`` for no key or an unknown or revoked one);
    too many unknown keys from this client is a 429 (:func:`key_refused`)."""
    if not key:
        return None
    try:
        return keystore.identify(key, client=keystore.client_of(request.scope))
    except TooManyUnknownKeys as exc:
        raise key_refused(exc) from None


def key_refused(exc: TooManyUnknownKeys) -> Refused:
    return Refused(429, "Authorization", str(exc))


def admin_pages_disabled() -> Refused:
    return Refused(
        503, "", "admin pages disabled: set METERLINE_ADMIN_KEY and restart `meterline serve`"
    )


class PortalAccess:
    def __init__(self, *, secret: str, admin_key: str | None, keystore: KeyStore):
        self.secret = secret
        self.admin_key = admin_key
        self.keystore = keystore

    def tenant_of(self, request: Request, wanted: str | None = None) -> str:
        """The request's tenant; 401 without a valid key or session, 403 when ``wanted``
        names another tenant."""
        header = request.headers.get("authorization")
        tenant = self._bearer_tenant(header, request) if header else self._session_tenant(request)
        if wanted and wanted != tenant:
            raise Refused(403, "tenant", "tenant: a tenant key or link only reads its own data")
        fields = getattr(request.state, "fields", None)
        if fields is not None:
            fields["tenant"] = tenant
        return tenant

    def _bearer_tenant(self, header: str, request: Request) -> str:
        identity = identify_key(self.keystore, bearer(header), request)
        if identity is None:
            raise Refused(
                401,
                "Authorization",
                "Authorization: unknown or revoked API key; issue a new one with "
                "`meterline tenants issue-key <tenant>`",
            )
        request.state.api_key_id = identity.key_id  # a page's session names this key
        return identity.tenant_id

    def _session_tenant(self, request: Request) -> str:
        verdict = signing.verify_session(
            self.secret, signing.TENANT, request.cookies.get(TENANT_COOKIE)
        )
        if not verdict.ok:
            raise Refused(
                401,
                "Authorization",
                "Authorization: sign in with your tenant API key (Bearer, or the form at "
                "/dashboard) or a signed dashboard link; "
                + ("the session expired" if verdict.exp else "no session"),
            )
        tenant, _, key_id = verdict.subject.partition(KEY_MARK)
        if key_id and not self.keystore.key_active(key_id, tenant):
            raise Refused(
                401,
                "Authorization",
                "Authorization: the API key this session was signed in with was revoked; "
                "sign in again with a current key",
            )
        return tenant

    def require_admin(self, request: Request) -> None:
        """503 when admin pages are disabled; 403 for a wrong Bearer key or a forged session;
        401 without one."""
        if not self.admin_key:
            raise admin_pages_disabled()
        header = request.headers.get("authorization")
        if header:
            if not same_secret(bearer(header), self.admin_key):
                raise Refused(403, "Authorization", "Authorization: not the admin key")
            return
        verdict = signing.verify_session(
            self.secret, signing.ADMIN, request.cookies.get(ADMIN_COOKIE)
        )
        if not verdict.ok:
            raise Refused(
                verdict.status if verdict.status == 403 else 401,
                "Authorization",
                "Authorization: admin pages need 'Bearer <METERLINE_ADMIN_KEY>', a signed "
                "admin link, or the admin key typed into the form at /admin",
            )
