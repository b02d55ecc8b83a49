"""The tenant page's JSON (Bearer tenant key or the tenant session cookie; ``?tenant=`` naming
another tenant is 403):

``/v1/dashboard/summary``, ``/v1/dashboard/usage?days=30|90&page=&per_page=``,
``/v1/dashboard/alerts?page=&per_page=``, ``/v1/dashboard/invoices?page=&per_page=``.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request
from sqlalchemy import Engine

from ingestion.api.usage_endpoint import CostEstimator
from meterline.core import clock
from portal.access import PortalAccess
from portal.data_responses import data_json
from portal.paging import page_of
from portal.query_params import whole_number
from portal.refused import Refused, refusal_json
from portal.svg import bar_chart
from portal.tenant_history import tenant_alerts, tenant_invoices, usage_trend
from portal.tenant_summary import tenant_summary


def tenant_data_router(
    access: PortalAccess,
    engine: Engine,
    redis,
    *,
    prefix: str,
    thresholds: Sequence[int],
    cost_estimator: CostEstimator | None,
) -> APIRouter:
    router = APIRouter(include_in_schema=True, tags=["dashboard"])

    @router.get("/v1/dashboard/summary", summary="Tenant: this month's usage, limits and cost")
    def summary(request: Request, tenant: str | None = None):
        try:
            tenant_id = access.tenant_of(request, tenant)
        except Refused as exc:
            return refusal_json(exc)
        data = tenant_summary(
            engine, redis, tenant_id, prefix=prefix, thresholds=thresholds,
            cost_estimator=cost_estimator,
        )  # fmt: skip
        if data is None:
            return refusal_json(Refused(404, "tenant", f"tenant: {tenant_id!r} no longer exists"))
        return data_json(data)

    @router.get("/v1/dashboard/usage", summary="Tenant: daily usage per meter (paginated)")
    def usage(
        request: Request,
        tenant: str | None = None,
        days: str | None = None,
        page: str | None = None,
        per_page: str | None = None,
    ):
        try:
            tenant_id = access.tenant_of(request, tenant)
            n_days = whole_number(days, "days", 30, 1, 366)
            page_no = whole_number(page, "page", 1, 1, 100_000)
            size = whole_number(per_page, "per_page", 10, 1, 100)
        except Refused as exc:
            return refusal_json(exc)
        return data_json(usage_page(engine, tenant_id, n_days, page_no, size))

    def listing(request: Request, tenant, page, per_page, default_size: int, read):
        try:
            tenant_id = access.tenant_of(request, tenant)
            page_no = whole_number(page, "page", 1, 1, 100_000)
            size = whole_number(per_page, "per_page", default_size, 1, 200)
        except Refused as exc:
            return refusal_json(exc)
        result = page_of(read(engine, tenant_id), page_no, size)
        return data_json({**result, "tenant_id": tenant_id})

    @router.get("/v1/dashboard/alerts", summary="Tenant: quota alerts received (paginated)")
    def alerts(
        request: Request,
        tenant: str | None = None,
        page: str | None = None,
        per_page: str | None = None,
    ):
        return listing(request, tenant, page, per_page, 10, tenant_alerts)

    @router.get("/v1/dashboard/invoices", summary="Tenant: invoices with Stripe status (paginated)")
    def invoices(
        request: Request,
        tenant: str | None = None,
        page: str | None = None,
        per_page: str | None = None,
    ):
        return listing(request, tenant, page, per_page, 12, tenant_invoices)

    return router


def usage_page(engine: Engine, tenant_id: str, days: int, page: int, per_page: int) -> dict:
    """One page of meters, each with its daily values and a server-rendered bar chart."""
    today = clock.now().date()
    series = usage_trend(engine, tenant_id, days=days, today=today)
    result = page_of(series, page, per_page)
    for item in result["items"]:
        points = item.pop("_points")
        item["svg"] = bar_chart(points, label=f"{item['meter']}: daily usage over {days} days")
    result.update(tenant_id=tenant_id, days=days, end=today.isoformat())
    return result
