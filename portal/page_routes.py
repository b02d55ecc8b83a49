"""The two pages, their sign-in forms and their static files.

- ``GET /dashboard``  the tenant page, for a tenant session cookie or ``Authorization:
  Bearer <tenant key>``; without one, the sign-in form (401).
  ``GET /dashboard?t=<tenant>&exp=<unix>&code=<code>&sig=<hex>`` is a signed one-time link
  (see :func:`portal.signing.mint_dashboard_link`); ``POST /dashboard/sign-in`` takes a tenant
  API key typed into the form (field ``key``).
- ``GET /admin``  the admin page, for an admin session cookie or Bearer
  ``METERLINE_ADMIN_KEY``; without one, the sign-in form. ``GET /admin?exp=&code=&sig=`` is a
  signed one-time admin link (:func:`portal.signing.mint_admin_link`); ``POST /admin/sign-in``
  takes the admin key typed into the form.
- A link or a form becomes an HttpOnly session cookie and a 303 to the bare URL. A key in the
  URL (``?key=``, accepted by earlier versions) is not accepted: the answer is the sign-in
  form, and the key is never echoed.
- ``GET /dashboard/static/<hash>/<name>``  CSS and scripts, immutable under a content hash.

Pages are ``private, no-cache``; a refusal or a sign-in form is a small page with ``no-store``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from portal.access import PortalAccess
from portal.assets import IMMUTABLE, Assets
from portal.pages import admin_page, sign_in_page, tenant_page
from portal.refused import Refused, refusal_page
from portal.sign_in import SignIn, form_key

PAGE_CACHE = "private, no-cache"
KEY_IN_URL = "A key in the address is not accepted (it would be logged): type it here."
TENANT_FORM = {"action": "/dashboard/sign-in", "label": "Tenant API key"}
ADMIN_FORM = {"action": "/admin/sign-in", "label": "Admin key (METERLINE_ADMIN_KEY)"}


def page_router(access: PortalAccess, sign_in: SignIn, assets: Assets) -> APIRouter:
    css = assets.url("dashboard.css")
    tenant_html = tenant_page(css, assets.url("tenant.js"))
    admin_html = admin_page(css, assets.url("admin.js"))
    router = APIRouter(include_in_schema=True, tags=["dashboard"])

    def form(exc: Refused, fields: dict, key_in_url: bool = False) -> HTMLResponse:
        return sign_in_form(css, exc, fields, key_in_url)

    @router.get("/dashboard", response_class=HTMLResponse, summary="Tenant usage page")
    def dashboard_page(
        request: Request,
        t: str | None = None,
        exp: str | None = None,
        code: str | None = None,
        sig: str | None = None,
    ):
        key_in_url = "key" in request.query_params
        try:
            if key_in_url:
                raise Refused(401, "key", KEY_IN_URL)
            if sig is not None or exp is not None or code is not None:
                return sign_in.tenant_link(request, t, exp, code, sig)
            tenant = access.tenant_of(request, t)
        except Refused as exc:
            return form(exc, TENANT_FORM, key_in_url)
        response = HTMLResponse(tenant_html, headers={"Cache-Control": PAGE_CACHE})
        if request.headers.get("authorization"):
            sign_in.tenant_bearer(response, request, tenant)
        return response

    @router.get("/admin", response_class=HTMLResponse, summary="Admin overview page")
    def admin_page_route(
        request: Request,
        exp: str | None = None,
        code: str | None = None,
        sig: str | None = None,
    ):
        key_in_url = "key" in request.query_params
        try:
            if key_in_url:
                raise Refused(401, "key", KEY_IN_URL)
            if sig is not None or exp is not None or code is not None:
                return sign_in.admin_link(request, exp, code, sig)
            access.require_admin(request)
        except Refused as exc:
            return form(exc, ADMIN_FORM, key_in_url)
        return HTMLResponse(admin_html, headers={"Cache-Control": PAGE_CACHE})

    add_sign_in_routes(router, sign_in, css)

    @router.get("/dashboard/static/{version}/{name}", include_in_schema=False)
    def static_file(version: str, name: str):
        asset = assets.get(version, name)
        if asset is None:
            return Response(b"not found", status_code=404, headers={"Cache-Control": "no-store"})
        return Response(
            asset.body, media_type=asset.media_type, headers={"Cache-Control": IMMUTABLE}
        )

    return router


def sign_in_form(css: str, exc: Refused, fields: dict, key_in_url: bool = False) -> HTMLResponse:
    """The sign-in form instead of a page: 401/403 with why (never what was given)."""
    if exc.status not in (401, 403):
        return refusal_page(css, exc)
    message = KEY_IN_URL if key_in_url else exc.message
    return HTMLResponse(
        sign_in_page(css, message=message, **fields),
        status_code=exc.status,
        headers={"Cache-Control": "no-store"},
    )


def add_sign_in_routes(router: APIRouter, sign_in: SignIn, css: str) -> None:
    """``POST /dashboard/sign-in`` and ``POST /admin/sign-in`` (form field ``key``)."""

    @router.post("/dashboard/sign-in", response_class=HTMLResponse, summary="Tenant sign-in")
    async def dashboard_sign_in(request: Request):
        """Form field ``key``: a tenant API key; answers a session cookie and 303 /dashboard."""
        try:
            return sign_in.tenant_key(request, await form_key(request))
        except Refused as exc:
            return sign_in_form(css, exc, TENANT_FORM)

    @router.post("/admin/sign-in", response_class=HTMLResponse, summary="Admin sign-in")
    async def admin_sign_in(request: Request):
        """Form field ``key``: METERLINE_ADMIN_KEY; answers a session cookie and 303 /admin."""
        try:
            return sign_in.admin_key_form(request, await form_key(request))
        except Refused as exc:
            return sign_in_form(css, exc, ADMIN_FORM)
