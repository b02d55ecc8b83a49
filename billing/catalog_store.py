"""Write a validated catalog into Postgres (``meterline.meters``, ``plans``, ``plan_meters``,
``price_tiers``), so SQL (dbt) and the metering engine read the same prices and limits.

Plans are versioned: a stored version is immutable (a trigger refuses UPDATE/DELETE), and a
plan that differs from its latest version is written as the next version. Subscriptions name
the version they pay, so a price change never reprices the past (migration 0006). The pricing
rules (migration 0007) and the collection terms (migration 0011) are part of a version:
written with its rows, read back with them."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection, Engine, text

from billing.catalog import Catalog, Meter, Plan, PlanMeter, Tier
from billing.catalog_diff import FieldChange, plan_changes
from billing.collection import PLAN_COLLECTION, Collection
from billing.pricing_rules_store import (
    METER_RULES,
    PLAN_RULES,
    TIER_RULES,
    rule_columns,
    rule_values,
    rules_of_row,
)


@dataclass(frozen=True)
class CatalogLoad:
    """What ``save_catalog`` did: counts of the file, the versions it wrote, what changed."""

    meters: int
    plans: int
    tiers: int
    new_versions: dict[str, int] = field(default_factory=dict)  # plan_id -> version written
    changes: list[FieldChange] = field(default_factory=list)


def save_catalog(engine: Engine, catalog: Catalog) -> CatalogLoad:
    """Upsert meters; write a new version of every plan that differs from its latest stored
    version (a stored version is never changed). One transaction, serialized by a lock."""
    with engine.begin() as conn:
        conn.execute(text("lock table meterline.plans in exclusive mode"))
        for meter in catalog.meters.values():
            _save_meter(conn, meter)
        latest = _read_plans(conn, "meterline.plan_latest")
        tiers, new_versions, changes = 0, {}, []
        for plan in catalog.plans.values():
            tiers += sum(len(pm.tiers) for pm in plan.meters.values())
            stored = latest.get(plan.plan_id)
            changed = plan_changes(stored[1] if stored else None, plan)
            if not changed:
                continue
            version = stored[0] + 1 if stored else 1
            _save_plan(conn, plan, version)
            new_versions[plan.plan_id] = version
            changes.extend(changed)
    return CatalogLoad(len(catalog.meters), len(catalog.plans), tiers, new_versions, changes)


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


def _save_plan(conn: Connection, plan: Plan, version: int) -> None:
    """Write version ``version`` of the plan: its row, its meters and their tiers, each with
    its pricing rules."""
    columns, params = rule_columns({**PLAN_RULES, **PLAN_COLLECTION})
    conn.execute(
        text(
            f"""
            insert into meterline.plans
                (plan_id, plan_version, name, base_fee, currency, upgrade_to, description{columns})
            values (:plan_id, :v, :name, :base_fee, :currency, :upgrade_to, :description{params})
            """
        ),
        {
            "v": version,
            **{
                k: getattr(plan, k)
                for k in ("plan_id", "name", "base_fee", "currency", "upgrade_to", "description")
            },
            **rule_values(plan, PLAN_RULES),
            **rule_values(plan.collection, PLAN_COLLECTION),
        },
    )
    columns, params = rule_columns(METER_RULES)
    for pm in plan.meters.values():
        conn.execute(
            text(
                f"""
                insert into meterline.plan_meters
                    (plan_id, plan_version, meter, limit_quantity, hard_limit, pricing_model,
                     included_quantity, package_size{columns})
                values (:plan_id, :v, :meter, :limit, :hard_limit, :pricing, :included,
                        :package_size{params})
                """
            ),
            {
                "plan_id": plan.plan_id,
                "v": version,
                "meter": pm.meter,
                "limit": pm.limit,
                "hard_limit": pm.hard_limit,
                "pricing": pm.pricing,
                "included": pm.included,
                "package_size": pm.package_size,
                **rule_values(pm, METER_RULES),
            },
        )
        _save_tiers(conn, plan.plan_id, version, pm)


def _save_tiers(conn: Connection, plan_id: str, version: int, pm: PlanMeter) -> None:
    columns, params = rule_columns(TIER_RULES)
    for index, tier in enumerate(pm.tiers):
        conn.execute(
            text(
                f"""
                insert into meterline.price_tiers
                    (plan_id, plan_version, meter, tier_index, up_to, unit_price, flat_fee{columns})
                values (:plan_id, :v, :meter, :i, :up_to, :unit_price, :flat_fee{params})
                """
            ),
            {
                "plan_id": plan_id,
                "v": version,
                "meter": pm.meter,
                "i": index,
                "up_to": tier.up_to,
                "unit_price": tier.unit_price,
                "flat_fee": tier.flat_fee,
                **rule_values(tier, TIER_RULES),
            },
        )


def read_catalog(engine: Engine) -> Catalog:
    """The current catalog in Postgres: the latest version of every plan (what a new
    subscription pays). Prices a tenant pays are those of its version: ``read_plan_versions``."""
    with engine.connect() as conn:
        meters = {
            r.meter: Meter(r.meter, r.aggregation, r.unit, r.unique_dimension, r.description)
            for r in conn.execute(text("select * from meterline.meters order by meter"))
        }
        plans = {
            plan_id: plan
            for plan_id, (_, plan) in _read_plans(conn, "meterline.plan_latest").items()
        }
    currency = next(iter(plans.values())).currency if plans else "USD"
    return Catalog(currency=currency, meters=meters, plans=plans)


def read_plan_versions(engine: Engine) -> dict[tuple[str, int], Plan]:
    """Every stored plan version, keyed by (plan_id, plan_version)."""
    with engine.connect() as conn:
        rows = _read_plan_rows(conn, "meterline.plans")
    return {(plan.plan_id, version): plan for version, plan in rows}


def _read_plans(conn: Connection, relation: str) -> dict[str, tuple[int, Plan]]:
    """plan_id -> (version, Plan) for the plan rows of ``relation`` (one version per plan)."""
    return {plan.plan_id: (version, plan) for version, plan in _read_plan_rows(conn, relation)}


def _read_plan_rows(conn: Connection, relation: str) -> list[tuple[int, Plan]]:
    tiers: dict[tuple[str, int, str], list[Tier]] = {}
    for r in conn.execute(
        text(
            "select * from meterline.price_tiers order by plan_id, plan_version, meter, tier_index"
        )
    ):
        tiers.setdefault((r.plan_id, r.plan_version, r.meter), []).append(
            Tier(r.up_to, Decimal(r.unit_price), Decimal(r.flat_fee), **rules_of_row(r, TIER_RULES))
        )
    plan_meters: dict[tuple[str, int], dict[str, PlanMeter]] = {}
    for r in conn.execute(text("select * from meterline.plan_meters order by meter")):
        plan_meters.setdefault((r.plan_id, r.plan_version), {})[r.meter] = PlanMeter(
            meter=r.meter,
            pricing=r.pricing_model,
            limit=r.limit_quantity,
            hard_limit=r.hard_limit,
            included=Decimal(r.included_quantity),
            package_size=r.package_size,
            tiers=tuple(tiers.get((r.plan_id, r.plan_version, r.meter), ())),
            **rules_of_row(r, METER_RULES),
        )
    return [
        (
            r.plan_version,
            Plan(
                plan_id=r.plan_id,
                name=r.name,
                base_fee=Decimal(r.base_fee),
                currency=r.currency.strip(),
                upgrade_to=r.upgrade_to,
                description=r.description,
                meters=plan_meters.get((r.plan_id, r.plan_version), {}),
                **rules_of_row(r, PLAN_RULES),
                collection=Collection(**rules_of_row(r, PLAN_COLLECTION)),
            ),
        )
        for r in conn.execute(text(f"select * from {relation} order by plan_id, plan_version"))
    ]
