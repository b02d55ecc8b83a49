"""The admin JSON endpoints.

- ``GET /v1/admin/overview?page=&per_page=&plan=&status=&quota=``  the admin page's data
  (admin key or admin session cookie), each tenant with a fresh signed link to its page.
- ``GET /v1/admin/tenants``  every tenant's live usage, highest percentage of any limit first
  (Bearer admin key only; the ingest API's error shape).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from ingestion.api.responses import error, json_response
from ingestion.auth import bearer, same_secret
from portal import signing
from portal.access import PortalAccess
from portal.admin_overview import admin_overview
from portal.admin_tenants import live_tenant_list
from portal.data_responses import data_json
from portal.paging import page_of
from portal.query_params import whole_number
from portal.refused import Refused, refusal_json


def _overview_filters(status: str | None, quota: str | None) -> None:
    if status and status not in ("active", "canceled"):
        raise Refused(422, "status", f"status: use active or canceled, got {status!r}")
    if quota and quota not in ("ok", "warning", "exceeded"):
        raise Refused(422, "quota", f"quota: use ok, warning or exceeded, got {quota!r}")


def overview_router(
    access: PortalAccess,
    engine: Engine,
    redis,
    *,
    prefix: str,
    thresholds: Sequence[int],
    link_ttl: int,
) -> APIRouter:
    router = APIRouter(include_in_schema=True, tags=["dashboard"])

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
            access.require_admin(request)
            page_no = whole_number(page, "page", 1, 1, 100_000)
            size = whole_number(per_page, "per_page", 50, 1, 500)
            _overview_filters(status, quota)
        except Refused as exc:
            return refusal_json(exc)
        data = admin_overview(engine, redis, prefix=prefix, thresholds=thresholds)
        items = [
            i
            for i in data.pop("items")
            if (not plan or i["plan"] == plan)
            and (not status or i["status"] == status)
            and (not quota or i["quota_status"] == quota)
        ]
        result = page_of(items, page_no, size)
        for item in result["items"]:
            item["dashboard_url"] = signing.mint_dashboard_link(
                item["tenant_id"], secret=access.secret, ttl=link_ttl
            )
        result.update(data, filters={"plan": plan, "status": status, "quota": quota})
        return data_json(result)

    return router


def admin_tenants_router(engine: Engine, redis, *, prefix: str, admin_key: str | None):
    router = APIRouter()

    @router.get("/v1/admin/tenants", summary="Every tenant, highest usage percentage first")
    async def admin_tenants(request: Request):
        if not admin_key:
            return error(
                503, "admin_disabled", "", "admin API disabled: set METERLINE_ADMIN_KEY and restart"
            )
        if not same_secret(bearer(request.headers.get("authorization")), admin_key):
            return error(
                403 if request.headers.get("authorization") else 401,
                "forbidden",
                "Authorization",
                "Authorization: admin endpoints need 'Bearer <METERLINE_ADMIN_KEY>'",
            )
        tenants = await run_in_threadpool(live_tenant_list, engine, redis, prefix=prefix)
        return json_response({"tenants": tenants})

    return router
