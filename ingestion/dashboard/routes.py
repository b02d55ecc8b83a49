"""Routes of the usage dashboard, mounted on the API app by :func:`mount_dashboard`.

Pages
    ``GET /dashboard``  the tenant page. Opened with ``?key=<tenant API key>`` once, with a
    signed link ``?t=<tenant>&exp=<unix>&sig=<hex>`` (see :func:`mint_dashboard_link`), or
    with ``Authorization: Bearer <tenant key>``; each sets an HttpOnly session cookie (never
    the key itself) and redirects to the bare URL, so the key leaves the address bar.
    ``GET /admin``  the admin page: opened with a signed admin link ``?exp=<unix>&sig=<hex>``
    (see :func:`mint_admin_link`), ``?key=<METERLINE_ADMIN_KEY>`` once, or Bearer; the link and
    the key each become an HttpOnly admin session cookie and redirect to the bare URL.
JSON (tenant: Bearer key or the session cookie; ``?tenant=`` naming another tenant is 403)
    ``/v1/dashboard/summary``, ``/v1/dashboard/usage?days=30|90&page=&per_page=``,
    ``/v1/dashboard/alerts?page=&per_page=``, ``/v1/dashboard/invoices?page=&per_page=``,
    ``/v1/admin/overview?page=&per_page=&plan=&status=&quota=`` (admin).
Caching
    tenant and admin data ``private, max-age=30`` (``Vary: Authorization, Cookie``), pages
    ``private, no-cache``, static files ``public, max-age=31536000, immutable`` under a
    content-hash URL, refusals ``no-store``. Everything under these paths is gzipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from alerts.thresholds import DEFAULT_THRESHOLDS
from ingestion.auth import KeyStore, bearer, same_secret
from ingestion.dashboard import queries, signing
from ingestion.dashboard.assets import IMMUTABLE, Assets
from ingestion.dashboard.gzip import ScopedGZipMiddleware
from ingestion.dashboard.pages import admin_page, error_page, tenant_page
from ingestion.dashboard.svg import bar_chart
from meterline.core import clock

TENANT_COOKIE = "meterline_dashboard"
ADMIN_COOKIE = "meterline_admin"
DATA_CACHE = "private, max-age=30"
PAGE_CACHE = "private, no-cache"
GZIP_PREFIXES = ("/dashboard", "/admin", "/v1/dashboard/", "/v1/admin/overview")


class Refused(Exception):
    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


def _json(data, *, cache: str = DATA_CACHE) -> Response:
    return Response(
        orjson.dumps(data, default=str),
        media_type="application/json",
        headers={"Cache-Control": cache, "Vary": "Authorization, Cookie"},
    )


def _json_error(exc: Refused) -> Response:
    code = {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        422: "invalid_query",
        503: "admin_disabled",
    }
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(
        orjson.dumps(
            {
                "error": {
                    "code": code.get(exc.status, "error"),
                    "field": exc.field,
                    "message": exc.message,
                }
            }
        ),
        status_code=exc.status,
        media_type="application/json",
        headers=headers,
    )


def _int(value: str | None, field: str, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise Refused(
            422, field, f"{field}: use a whole number from {low} to {high}, got {value!r}"
        )
    return number


def _secure(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip() == "https"


def mount_dashboard(
    app: FastAPI,
    engine: Engine,
    redis,
    *,
    prefix: str,
    admin_key: str | None,
    link_secret: str | None = None,
    cost_estimator: queries.CostEstimator | None = None,
    thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
    link_ttl: int = 3600,
    keystore: KeyStore | None = None,
) -> None:
    """Add the tenant page, the admin page, their JSON endpoints and static files to ``app``.

    ``link_secret`` signs dashboard links and session cookies (default: see
    :func:`ingestion.dashboard.signing.resolve_secret`); the admin page's links to tenant
    pages are valid for ``link_ttl`` seconds. The secret is kept on ``app.state``, so
    ``mint_dashboard_link(tenant, secret=app.state.dashboard_secret)`` mints links the
    app accepts."""
    secret = link_secret or signing.resolve_secret(admin_key)
    app.state.dashboard_secret = secret
    keystore = keystore or KeyStore(engine)
    assets = Assets()
    css = assets.url("dashboard.css")
    tenant_html = tenant_page(css, assets.url("tenant.js"))
    admin_html = admin_page(css, assets.url("admin.js"))
    app.add_middleware(ScopedGZipMiddleware, prefixes=GZIP_PREFIXES)
    router = APIRouter(include_in_schema=True, tags=["dashboard"])

    # -- authentication ------------------------------------------------------------------------
    def tenant_of(request: Request, wanted: str | None = None) -> str:
        header = request.headers.get("authorization")
        if header:
            key = bearer(header)
            tenant = keystore.tenant_for(key) if key else None
            if tenant is None:
                raise Refused(
                    401,
                    "Authorization",
                    "Authorization: unknown or revoked API key; issue a new one with "
                    "`meterline tenants issue-key <tenant>`",
                )
        else:
            verdict = signing.verify_session(
                secret, signing.TENANT, request.cookies.get(TENANT_COOKIE)
            )
            if not verdict.ok:
                raise Refused(
                    401,
                    "Authorization",
                    "Authorization: sign in with your tenant API key (Bearer, or open "
                    "/dashboard?key=<key>) or a signed dashboard link; "
                    + ("the session expired" if verdict.exp else "no session"),
                )
            tenant = verdict.subject
        if wanted and wanted != tenant:
            raise Refused(403, "tenant", "tenant: a tenant key or link only reads its own data")
        fields = getattr(request.state, "fields", None)
        if fields is not None:
            fields["tenant"] = tenant
        return tenant

    def require_admin(request: Request) -> None:
        if not admin_key:
            raise Refused(
                503,
                "",
                "admin pages disabled: set METERLINE_ADMIN_KEY and restart `meterline serve`",
            )
        header = request.headers.get("authorization")
        if header:
            if not same_secret(bearer(header), admin_key):
                raise Refused(403, "Authorization", "Authorization: not the admin key")
            return
        verdict = signing.verify_session(secret, signing.ADMIN, request.cookies.get(ADMIN_COOKIE))
        if not verdict.ok:
            raise Refused(
                verdict.status if verdict.status == 403 else 401,
                "Authorization",
                "Authorization: admin pages need 'Bearer <METERLINE_ADMIN_KEY>', a signed "
                "admin link, or /admin?key=<METERLINE_ADMIN_KEY> once",
            )

    def _refused_page(exc: Refused) -> HTMLResponse:
        titles = {401: "Sign in needed", 403: "Not allowed", 503: "Not available"}
        return HTMLResponse(
            error_page(css, exc.status, titles.get(exc.status, "Error"), exc.message),
            status_code=exc.status,
            headers={"Cache-Control": "no-store"},
        )

    def _signed_in(location: str, cookie: str, token: str, exp: int, request: Request):
        response = RedirectResponse(location, status_code=303)
        response.headers["Cache-Control"] = "no-store"
        response.set_cookie(
            cookie,
            token,
            max_age=max(1, exp - int(clock.timestamp())),
            httponly=True,
            samesite="lax",
            secure=_secure(request),
            path="/",
        )
        return response

    # -- pages ---------------------------------------------------------------------------------
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
                verdict = signing.verify(secret, signing.TENANT, t, exp, sig)
                if not verdict.ok:
                    raise Refused(verdict.status, "sig", verdict.reason)
                token = signing.session_token(secret, signing.TENANT, verdict.subject, verdict.exp)
                return _signed_in("/dashboard", TENANT_COOKIE, token, verdict.exp, request)
            if key is not None:
                tenant = keystore.tenant_for(key)
                if tenant is None or (t and t != tenant):
                    raise Refused(
                        401 if tenant is None else 403,
                        "key",
                        "key: unknown or revoked tenant API key"
                        if tenant is None
                        else "key: this key belongs to another tenant",
                    )
                exp_at = int(clock.timestamp()) + signing.SESSION_TTL
                token = signing.session_token(secret, signing.TENANT, tenant, exp_at)
                return _signed_in("/dashboard", TENANT_COOKIE, token, exp_at, request)
            tenant = tenant_of(request, t)
        except Refused as exc:
            return _refused_page(exc)
        response = HTMLResponse(tenant_html, headers={"Cache-Control": PAGE_CACHE})
        if request.headers.get("authorization"):
            exp_at = int(clock.timestamp()) + signing.SESSION_TTL
            token = signing.session_token(secret, signing.TENANT, tenant, exp_at)
            response.set_cookie(
                TENANT_COOKIE, token, max_age=signing.SESSION_TTL, httponly=True,
                samesite="lax", secure=_secure(request), path="/",
            )  # fmt: skip
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
                if not admin_key:
                    require_admin(request)  # admin pages disabled: 503 whatever the link says
                verdict = signing.verify(secret, signing.ADMIN, signing.ADMIN_SUBJECT, exp, sig)
                if not verdict.ok:
                    raise Refused(verdict.status, "sig", verdict.reason)
                token = signing.session_token(
                    secret, signing.ADMIN, signing.ADMIN_SUBJECT, verdict.exp
                )
                return _signed_in("/admin", ADMIN_COOKIE, token, verdict.exp, request)
            if key is not None:
                if not admin_key:
                    require_admin(request)
                if not same_secret(key, admin_key):
                    raise Refused(403, "key", "key: not the admin key (METERLINE_ADMIN_KEY)")
                exp_at = int(clock.timestamp()) + signing.SESSION_TTL
                token = signing.session_token(secret, signing.ADMIN, signing.ADMIN_SUBJECT, exp_at)
                return _signed_in("/admin", ADMIN_COOKIE, token, exp_at, request)
            require_admin(request)
        except Refused as exc:
            return _refused_page(exc)
        return HTMLResponse(admin_html, headers={"Cache-Control": PAGE_CACHE})

    @router.get("/dashboard/static/{version}/{name}", include_in_schema=False)
    def static_file(version: str, name: str):
        asset = assets.get(version, name)
        if asset is None:
            return Response(b"not found", status_code=404, headers={"Cache-Control": "no-store"})
        return Response(
            asset.body, media_type=asset.media_type, headers={"Cache-Control": IMMUTABLE}
        )

    # -- tenant data ---------------------------------------------------------------------------
    @router.get("/v1/dashboard/summary", summary="Tenant: this month's usage, limits and cost")
    def summary(request: Request, tenant: str | None = None):
        try:
            tenant_id = tenant_of(request, tenant)
        except Refused as exc:
            return _json_error(exc)
        data = queries.tenant_summary(
            engine, redis, tenant_id, prefix=prefix, thresholds=thresholds,
            cost_estimator=cost_estimator,
        )  # fmt: skip
        if data is None:
            return _json_error(Refused(404, "tenant", f"tenant: {tenant_id!r} no longer exists"))
        return _json(data)

    @router.get("/v1/dashboard/usage", summary="Tenant: daily usage per meter (paginated)")
    def usage(
        request: Request,
        tenant: str | None = None,
        days: str | None = None,
        page: str | None = None,
        per_page: str | None = None,
    ):
        try:
            tenant_id = tenant_of(request, tenant)
            n_days = _int(days, "days", 30, 1, 366)
            page_no = _int(page, "page", 1, 1, 100_000)
            size = _int(per_page, "per_page", 10, 1, 100)
        except Refused as exc:
            return _json_error(exc)
        today = clock.now().date()
        series = queries.usage_trend(engine, tenant_id, days=n_days, today=today)
        result = queries.page_of(series, page_no, size)
        for item in result["items"]:
            points = item.pop("_points")
            item["svg"] = bar_chart(
                points, label=f"{item['meter']}: daily usage over {n_days} days"
            )
        result.update(tenant_id=tenant_id, days=n_days, end=today.isoformat())
        return _json(result)

    @router.get("/v1/dashboard/alerts", summary="Tenant: quota alerts received (paginated)")
    def alerts(
        request: Request,
        tenant: str | None = None,
        page: str | None = None,
        per_page: str | None = None,
    ):
        try:
            tenant_id = tenant_of(request, tenant)
            page_no = _int(page, "page", 1, 1, 100_000)
            size = _int(per_page, "per_page", 10, 1, 200)
        except Refused as exc:
            return _json_error(exc)
        result = queries.page_of(queries.tenant_alerts(engine, tenant_id), page_no, size)
        return _json({**result, "tenant_id": tenant_id})

    @router.get("/v1/dashboard/invoices", summary="Tenant: invoices with Stripe status (paginated)")
    def invoices(
        request: Request,
        tenant: str | None = None,
        page: str | None = None,
        per_page: str | None = None,
    ):
        try:
            tenant_id = tenant_of(request, tenant)
            page_no = _int(page, "page", 1, 1, 100_000)
            size = _int(per_page, "per_page", 12, 1, 200)
        except Refused as exc:
            return _json_error(exc)
        result = queries.page_of(queries.tenant_invoices(engine, tenant_id), page_no, size)
        return _json({**result, "tenant_id": tenant_id})

    # -- admin data ----------------------------------------------------------------------------
    @router.get("/v1/admin/overview", summary="Admin: tenants by highest share of a limit")
    def overview(
        request: Request,
        page: str | None = None,
        per_page: str | None = None,
        plan: str | None = None,
        status: str | None = None,
        quota: str | None = None,
    ):
        try:
            require_admin(request)
            page_no = _int(page, "page", 1, 1, 100_000)
            size = _int(per_page, "per_page", 50, 1, 500)
            if status and status not in ("active", "canceled"):
                raise Refused(422, "status", f"status: use active or canceled, got {status!r}")
            if quota and quota not in ("ok", "warning", "exceeded"):
                raise Refused(422, "quota", f"quota: use ok, warning or exceeded, got {quota!r}")
        except Refused as exc:
            return _json_error(exc)
        data = queries.admin_overview(engine, redis, prefix=prefix, thresholds=thresholds)
        items = [
            i
            for i in data.pop("items")
            if (not plan or i["plan"] == plan)
            and (not status or i["status"] == status)
            and (not quota or i["quota_status"] == quota)
        ]
        result = queries.page_of(items, page_no, size)
        for item in result["items"]:
            item["dashboard_url"] = signing.mint_dashboard_link(
                item["tenant_id"], secret=secret, ttl=link_ttl
            )
        result.update(data, filters={"plan": plan, "status": status, "quota": quota})
        return _json(result)

    app.include_router(router)
