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
