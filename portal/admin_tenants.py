"""``GET /v1/admin/tenants``' data: every tenant's live usage, highest percentage of any limit
first (the live counters only; the admin overview adds the marts)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from ingestion.usage import all_live_usage


def live_tenant_list(engine: Engine, redis, *, prefix: str) -> list[dict]:
    usage = all_live_usage(redis, engine, prefix=prefix)
    with engine.connect() as conn:
        status = dict(conn.execute(text("select tenant_id, status from meterline.tenants")).all())
    items = []
    for tenant, rows in usage.items():
        percents = [r.percent for r in rows if r.percent is not None]
        top = max(rows, key=lambda r: r.percent or -1, default=None)
        items.append(
            {
                "tenant_id": tenant,
                "status": status.get(tenant),
                "plan": rows[0].plan_id if rows else None,
                "max_percent": round(max(percents), 2) if percents else None,
                "top_meter": top.meter if top and top.percent is not None else None,
                "meters": [r.as_dict() for r in rows],
            }
        )
    items.sort(key=lambda i: (-(i["max_percent"] or -1), i["tenant_id"]))
    return items
