"""What a quota message needs to know about the tenant and meter: name, address, the plan in
force, the unit, whether the limit is hard, and the next plan up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, text

from meterline.core import clock


@dataclass(frozen=True)
class AlertContext:
    tenant_id: str
    meter: str
    tenant_name: str
    email: str | None
    plan_id: str | None
    plan_name: str | None
    currency: str | None
    unit: str
    hard_limit: bool
    upgrade_to: str | None
    upgrade_name: str | None
    upgrade_limit: Decimal | None


_CONTEXT_SQL = """
select t.tenant_id, m.meter, t.name, t.email, p.plan_id, p.name as plan_name, p.currency,
       m.unit, coalesce(pm.hard_limit, false) as hard_limit,
       p.upgrade_to, up.name as upgrade_name, upm.limit_quantity as upgrade_limit
from meterline.tenants t
cross join meterline.meters m
left join lateral (
    select f.plan_id, f.plan_version from meterline.plan_in_force f
    where f.tenant_id = t.tenant_id and f.in_force @> cast(:at as timestamptz)
) cur on true
left join meterline.plans p on p.plan_id = cur.plan_id and p.plan_version = cur.plan_version
left join meterline.plan_meters pm
  on pm.plan_id = p.plan_id and pm.plan_version = p.plan_version and pm.meter = m.meter
left join meterline.plan_latest up on up.plan_id = p.upgrade_to
left join meterline.plan_meters upm
  on upm.plan_id = up.plan_id and upm.plan_version = up.plan_version and upm.meter = m.meter
where t.tenant_id = :tenant and m.meter = :meter
"""


def alert_context(
    engine: Engine, tenant_id: str, meter: str, *, at: datetime | None = None
) -> AlertContext:
    params = {"tenant": tenant_id, "meter": meter, "at": at or clock.now()}
    with engine.connect() as conn:
        row = conn.execute(text(_CONTEXT_SQL), params).first()
    if row is None:
        raise LookupError(
            f"tenant {tenant_id!r} or meter {meter!r} does not exist: create the tenant or load "
            "the catalog before alerting on it"
        )
    return AlertContext(
        tenant_id=row.tenant_id,
        meter=row.meter,
        tenant_name=row.name,
        email=row.email,
        plan_id=row.plan_id,
        plan_name=row.plan_name,
        currency=(row.currency or "").strip() or None,
        unit=row.unit,
        hard_limit=bool(row.hard_limit),
        upgrade_to=row.upgrade_to,
        upgrade_name=row.upgrade_name,
        upgrade_limit=row.upgrade_limit,
    )
