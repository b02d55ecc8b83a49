"""The two pages and their static files.

- ``GET /dashboard``  the tenant page: opened with ``?key=<tenant API key>`` once, with a
  signed link ``?t=<tenant>&exp=<unix>&sig=<hex>`` (see :func:`portal.signing.mint_dashboard_link`),
  or with ``Authorization: Bearer <tenant key>``; each sets an HttpOnly session cookie (never
  the key itself), the first two redirect to the bare URL, so the key leaves the address bar.
- ``GET /admin``  the admin page: opened with a signed admin link ``?exp=<unix>&sig=<hex>``
  (see :func:`portal.signing.mint_admin_link`), ``?key=<METERLINE_ADMIN_KEY>`` once, or Bearer;
  the link and the key each become an HttpOnly admin session cookie and redirect to the bare URL.
- ``GET /dashboard/static/<hash>/<name>``  CSS and scripts, immutable under a content hash.

Pages are ``private, no-cache``; a refusal is a small error page with ``no-store``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from portal.access import PortalAccess
from portal.assets import IMMUTABLE, Assets
from portal.pages import admin_page, tenant_page
from portal.refused import Refused, refusal_page
from portal.sign_in import SignIn

PAGE_CACHE = "private, no-cache"


def page_router(access: PortalAccess, sign_in: SignIn, assets: Assets) -> APIRouter:
    css = assets.url("dashboard.css")
    tenant_html = tenant_page(css, assets.url("tenant.js"))
    admin_html = admin_page(css, assets.url("admin.js"))
    router = APIRouter(include_in_schema=True, tags=["dashboard"])

    @router.get("/dashboard", response_class=HTMLResponse, summary="Tenant usage page")
    def dashboard_page(
        request: Request,
        key: str | None = None,
        t: str | None = None,
        exp: str | None = None,
        sig: str | None = None,
    ):
        try:
            if sig is not None or exp is not None:
                return sign_in.tenant_link(request, t, exp, sig)
            if key is not None:
                return sign_in.tenant_key(request, key, t)
            tenant = access.tenant_of(request, t)
        except Refused as exc:
            return refusal_page(css, exc)
        response = HTMLResponse(tenant_html, headers={"Cache-Control": PAGE_CACHE})
        if request.headers.get("authorization"):
            sign_in.tenant_bearer(response, request, tenant)
        return response

    @router.get("/admin", response_class=HTMLResponse, summary="Admin overview page")
    def admin_page_route(
        request: Request,
        key: str | None = None,
        exp: str | None = None,
        sig: str | None = None,
    ):
        try:
            if sig is not None or exp is not None:
                return sign_in.admin_link(request, exp, sig)
            if key is not None:
                return sign_in.admin_key_once(request, key)
            access.require_admin(request)
        except Refused as exc:
            return refusal_page(css, exc)
        return HTMLResponse(admin_html, headers={"Cache-Control": PAGE_CACHE})

    @router.get("/dashboard/static/{version}/{name}", include_in_schema=False)
    def static_file(version: str, name: str):
        asset = assets.get(version, name)
        if asset is None:
            return Response(b"not found", status_code=404, headers={"Cache-Control": "no-store"})
        return Response(
            asset.body, media_type=asset.media_type, headers={"Cache-Control": IMMUTABLE}
        )

    return router
