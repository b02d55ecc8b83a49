"""Everything the portal adds to the HTTP app, in one call: :func:`mount_portal`.

Caching: tenant and admin data ``private, max-age=30`` (``Vary: Authorization, Cookie``),
pages ``private, no-cache``, static files ``public, max-age=31536000, immutable`` under a
content-hash URL, refusals ``no-store``. Everything under the portal's paths is gzipped.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from sqlalchemy import Engine

from ingestion.api.usage_endpoint import CostEstimator
from ingestion.auth import KeyStore
from meterline.core.quota_levels import DEFAULT_THRESHOLDS
from portal import signing
from portal.access import PortalAccess
from portal.admin_routes import admin_tenants_router, overview_router
from portal.assets import Assets
from portal.gzip import ScopedGZipMiddleware
from portal.headers import SecurityHeadersMiddleware
from portal.page_routes import page_router
from portal.sign_in import SignIn
from portal.tenant_routes import tenant_data_router

GZIP_PREFIXES = ("/dashboard", "/admin", "/v1/dashboard/", "/v1/admin/overview")
PORTAL_PREFIXES = ("/dashboard", "/admin", "/v1/dashboard/", "/v1/admin/")


def mount_portal(
    app: FastAPI,
    engine: Engine,
    redis,
    *,
    prefix: str,
    admin_key: str | None,
    secret_key: str | None = None,
    cost_estimator: CostEstimator | None = None,
    thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
    link_ttl: int = 3600,
    keystore: KeyStore | None = None,
) -> None:
    """Add the tenant page, the admin page, their JSON endpoints, ``/v1/admin/tenants`` and
    the static files to ``app``.

    ``secret_key`` (METERLINE_SECRET_KEY, independent of ``admin_key``) signs sign-in links
    and session cookies (default: see :func:`portal.signing.resolve_secret`); the admin
    page's links to tenant pages are valid for ``link_ttl`` seconds. The secret is kept on
    ``app.state``, so ``mint_dashboard_link(tenant, secret=app.state.dashboard_secret)``
    mints links the app accepts. Every portal response carries the security headers of
    :mod:`portal.headers`."""
    secret = secret_key or signing.resolve_secret()
    app.state.dashboard_secret = secret
    keystore = keystore or KeyStore(engine)
    access = PortalAccess(secret=secret, admin_key=admin_key, keystore=keystore)
    sign_in = SignIn(
        secret=secret, admin_key=admin_key, keystore=keystore, redis=redis, prefix=prefix
    )
    app.add_middleware(ScopedGZipMiddleware, prefixes=GZIP_PREFIXES)
    app.add_middleware(SecurityHeadersMiddleware, prefixes=PORTAL_PREFIXES)
    app.include_router(admin_tenants_router(engine, redis, prefix=prefix, admin_key=admin_key))
    app.include_router(page_router(access, sign_in, Assets()))
    tenant_data = tenant_data_router(
        access, engine, redis, prefix=prefix, thresholds=thresholds, cost_estimator=cost_estimator
    )
    app.include_router(tenant_data)
    app.include_router(
        overview_router(
            access, engine, redis, prefix=prefix, thresholds=thresholds, link_ttl=link_ttl
        )
    )
