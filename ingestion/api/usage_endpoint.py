"""``GET /v1/usage``: the calling tenant's live usage, limits, percentages and estimated cost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from fastapi import APIRouter, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from ingestion.api.responses import error, json_response
from ingestion.api.tenant_auth import TenantAuth, Unauthorized
from ingestion.usage import MeterUsage, live_usage
from meterline.core import clock
from meterline.core.numbers import json_number

CostEstimator = Callable[[str, list[MeterUsage]], dict[str, Decimal]]
"""``estimate(tenant_id, usage)``: the estimated cost so far per meter (wired from billing at
the top, in :mod:`meterline.server`; ingestion never imports billing)."""


def usage_body(
    tenant: str,
    start: datetime | None,
    rows: list[MeterUsage],
    cost_estimator: CostEstimator | None,
) -> dict:
    """The JSON of ``/v1/usage``: ``estimated_cost`` and ``estimated_total`` are null without
    an estimator."""
    costs = cost_estimator(tenant, rows) if cost_estimator else {}
    meters = []
    for row in rows:
        item = row.as_dict()
        item["estimated_cost"] = json_number(costs.get(row.meter)) if cost_estimator else None
        meters.append(item)
    return {
        "tenant_id": tenant,
        "month": (start or clock.now()).strftime("%Y-%m"),
        "plan": rows[0].plan_id if rows else None,
        "meters": meters,
        "estimated_total": json_number(sum(costs.values(), Decimal(0))) if cost_estimator else None,
    }


def add_usage_route(
    router: APIRouter,
    engine: Engine,
    redis,
    *,
    prefix: str,
    auth: TenantAuth,
    cost_estimator: CostEstimator | None,
) -> None:
    """Add ``GET /v1/usage`` to ``router``."""

    @router.get("/v1/usage", summary="The calling tenant's live usage this month")
    async def get_usage(request: Request, month: str | None = None):
        try:
            tenant = await auth(request)
        except Unauthorized as exc:
            return exc.response
        start = None
        if month is not None:
            try:
                start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
            except ValueError:
                return error(422, "invalid_query", "month", f"month: use YYYY-MM, got {month!r}")
        rows = await run_in_threadpool(
            live_usage, redis, engine, tenant, prefix=prefix, month=start
        )
        return json_response(usage_body(tenant, start, rows, cost_estimator))
