"""Write a validated catalog into Postgres (``meterline.meters``, ``plans``, ``plan_meters``,
``price_tiers``), so SQL (dbt) and the metering engine read the same prices and limits."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, Engine, text

from billing.catalog import Catalog, Meter, Plan, PlanMeter, Tier


def save_catalog(engine: Engine, catalog: Catalog) -> dict[str, int]:
    """Upsert meters and plans; replace each plan's meters and tiers. One transaction."""
    with engine.begin() as conn:
        for meter in catalog.meters.values():
            _save_meter(conn, meter)
        tiers = 0
        for plan in catalog.plans.values():
            tiers += _save_plan(conn, plan)
    return {"meters": len(catalog.meters), "plans": len(catalog.plans), "tiers": tiers}


def _save_meter(conn: Connection, meter: Meter) -> None:
    conn.execute(
        text(
            """
            insert into meterline.meters (meter, aggregation, unit, unique_dimension, description)
            values (:meter, :aggregation, :unit, :unique_dimension, :description)
            on conflict (meter) do update set
                aggregation = excluded.aggregation, unit = excluded.unit,
                unique_dimension = excluded.unique_dimension,
                description = excluded.description, updated_at = now()
            """
        ),
        vars(meter),
    )


def _save_plan(conn: Connection, plan: Plan) -> int:
    """Upsert the plan, replace its meters and tiers; returns the number of tiers written."""
    conn.execute(
        text(
            """
            insert into meterline.plans (plan_id, name, base_fee, currency, upgrade_to, description)
            values (:plan_id, :name, :base_fee, :currency, :upgrade_to, :description)
            on conflict (plan_id) do update set
                name = excluded.name, base_fee = excluded.base_fee,
                currency = excluded.currency, upgrade_to = excluded.upgrade_to,
                description = excluded.description, updated_at = now()
            """
        ),
        {
            k: getattr(plan, k)
            for k in ("plan_id", "name", "base_fee", "currency", "upgrade_to", "description")
        },
    )
    conn.execute(text("delete from meterline.plan_meters where plan_id = :p"), {"p": plan.plan_id})
    tiers = 0
    for pm in plan.meters.values():
        conn.execute(
            text(
                """
                insert into meterline.plan_meters
                    (plan_id, meter, limit_quantity, hard_limit, pricing_model,
                     included_quantity, package_size)
                values (:plan_id, :meter, :limit, :hard_limit, :pricing, :included, :package_size)
                """
            ),
            {
                "plan_id": plan.plan_id,
                "meter": pm.meter,
                "limit": pm.limit,
                "hard_limit": pm.hard_limit,
                "pricing": pm.pricing,
                "included": pm.included,
                "package_size": pm.package_size,
            },
        )
        tiers += _save_tiers(conn, plan.plan_id, pm)
    return tiers


def _save_tiers(conn: Connection, plan_id: str, pm: PlanMeter) -> int:
    for index, tier in enumerate(pm.tiers):
        conn.execute(
            text(
                """
                insert into meterline.price_tiers
                    (plan_id, meter, tier_index, up_to, unit_price, flat_fee)
                values (:plan_id, :meter, :i, :up_to, :unit_price, :flat_fee)
                """
            ),
            {
                "plan_id": plan_id,
                "meter": pm.meter,
                "i": index,
                "up_to": tier.up_to,
                "unit_price": tier.unit_price,
                "flat_fee": tier.flat_fee,
            },
        )
    return len(pm.tiers)


def read_catalog(engine: Engine) -> Catalog:
    """The catalog as currently loaded in Postgres (what quotas and SQL rating use)."""
    with engine.connect() as conn:
        meters = {
            r.meter: Meter(r.meter, r.aggregation, r.unit, r.unique_dimension, r.description)
            for r in conn.execute(text("select * from meterline.meters order by meter"))
        }
        tiers: dict[tuple[str, str], list[Tier]] = {}
        for r in conn.execute(
            text("select * from meterline.price_tiers order by plan_id, meter, tier_index")
        ):
            tiers.setdefault((r.plan_id, r.meter), []).append(
                Tier(r.up_to, Decimal(r.unit_price), Decimal(r.flat_fee))
            )
        plan_meters: dict[str, dict[str, PlanMeter]] = {}
        for r in conn.execute(text("select * from meterline.plan_meters")):
            plan_meters.setdefault(r.plan_id, {})[r.meter] = PlanMeter(
                meter=r.meter,
                pricing=r.pricing_model,
                limit=r.limit_quantity,
                hard_limit=r.hard_limit,
                included=Decimal(r.included_quantity),
                package_size=r.package_size,
                tiers=tuple(tiers.get((r.plan_id, r.meter), ())),
            )
        plans = {
            r.plan_id: Plan(
                plan_id=r.plan_id,
                name=r.name,
                base_fee=Decimal(r.base_fee),
                currency=r.currency.strip(),
                upgrade_to=r.upgrade_to,
                description=r.description,
                meters=plan_meters.get(r.plan_id, {}),
            )
            for r in conn.execute(text("select * from meterline.plans order by plan_id"))
        }
    currency = next(iter(plans.values())).currency if plans else "USD"
    return Catalog(currency=currency, meters=meters, plans=plans)
