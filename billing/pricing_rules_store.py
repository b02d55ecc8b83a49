"""Write the catalog's pricing rules (migration ``0007_pricing_rules``) next to the rows
``billing.catalog_store.save_catalog`` wrote: spend floors/caps per meter and per plan, flat fees
from zero, block rounding and tier block sizes. Call it right after ``save_catalog``; until the
two are merged into one transaction, a missing rule only means the default (today's rating)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from billing.catalog import Catalog


def save_pricing_rules(engine: Engine, catalog: Catalog) -> None:
    """Set the pricing-rule columns of every plan, plan meter and tier of ``catalog``."""
    plans, meters, tiers = [], [], []
    for plan in catalog.plans.values():
        plans.append({"p": plan.plan_id, "lo": plan.minimum_commitment, "hi": plan.maximum_spend})
        for pm in plan.meters.values():
            meters.append(
                {
                    "p": plan.plan_id,
                    "m": pm.meter,
                    "lo": pm.min_amount,
                    "hi": pm.max_amount,
                    "z": pm.flat_fee_from_zero,
                    "r": pm.rounding,
                    "pr": pm.prorate,
                    "rate": pm.rate,
                    "fee": pm.fixed_fee,
                    "free": pm.free_events,
                    "emin": pm.per_event_min,
                    "emax": pm.per_event_max,
                }
            )
            tiers += [
                {"p": plan.plan_id, "m": pm.meter, "i": i, "b": tier.block_size}
                for i, tier in enumerate(pm.tiers)
                if tier.block_size is not None
            ]
    with engine.begin() as conn:
        if plans:
            conn.execute(
                text(
                    "update meterline.plans set minimum_commitment = :lo, maximum_spend = :hi"
                    " where plan_id = :p"
                ),
                plans,
            )
        if meters:
            conn.execute(
                text(
                    "update meterline.plan_meters set min_amount = :lo, max_amount = :hi,"
                    " flat_fee_from_zero = :z, rounding = :r, prorate = :pr, percentage_rate = :rate,"
                    " fixed_fee = :fee, free_events = :free, per_event_min = :emin,"
                    " per_event_max = :emax"
                    " where plan_id = :p and meter = :m"
                ),
                meters,
            )
        if tiers:
            conn.execute(
                text(
                    "update meterline.price_tiers set block_size = :b"
                    " where plan_id = :p and meter = :m and tier_index = :i"
                ),
                tiers,
            )


def with_pricing_rules(engine: Engine, catalog: Catalog) -> Catalog:
    """``catalog`` (as ``read_catalog`` gives it) with the pricing-rule columns read back."""
    from dataclasses import replace
    from decimal import Decimal

    with engine.connect() as conn:
        limits = {
            r.plan_id: r
            for r in conn.execute(
                text("select plan_id, minimum_commitment, maximum_spend from meterline.plans")
            )
        }
        rules = {
            (r.plan_id, r.meter): r
            for r in conn.execute(text("select * from meterline.plan_meters"))
        }
        blocks = {
            (r.plan_id, r.meter, r.tier_index): r.block_size
            for r in conn.execute(
                text("select * from meterline.price_tiers where block_size is not null")
            )
        }
    plans = {}
    for plan_id, plan in catalog.plans.items():
        meters = {}
        for name, pm in plan.meters.items():
            r = rules.get((plan_id, name))
            tiers = tuple(
                replace(tier, block_size=blocks.get((plan_id, name, i)))
                for i, tier in enumerate(pm.tiers)
            )
            meters[name] = replace(
                pm,
                tiers=tiers,
                min_amount=r.min_amount,
                max_amount=r.max_amount,
                flat_fee_from_zero=r.flat_fee_from_zero,
                rounding=r.rounding,
                prorate=r.prorate,
                rate=r.percentage_rate,
                fixed_fee=Decimal(r.fixed_fee),
                free_events=r.free_events,
                per_event_min=r.per_event_min,
                per_event_max=r.per_event_max,
            ) if r is not None else pm  # fmt: skip
        limit = limits.get(plan_id)
        plans[plan_id] = replace(
            plan,
            meters=meters,
            minimum_commitment=limit.minimum_commitment if limit else None,
            maximum_spend=limit.maximum_spend if limit else None,
        )
    return replace(catalog, plans=plans)
