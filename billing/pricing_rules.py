"""Pricing rules on par with peers, shared by ``billing.rating``: block counting (package and
tier ``block_size``, ``rounding``), proration of a plan meter by days in force, spend clamps,
and percentage pricing per event. Each is the same rule as the dbt macro ``rated_amount`` (or,
for percentage, ``int_usage_months_rated``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from billing.catalog import PlanMeter

ZERO = Decimal(0)
PRORATED_PLACES = Decimal("0.000001")


def prorated(plan_meter: PlanMeter, days: Decimal | int, days_in_month: Decimal | int) -> PlanMeter:
    """``plan_meter`` for a month in force ``days`` of ``days_in_month`` days (or a usage
    segment on its plan ``seconds`` of the month's seconds): with ``prorate``, included units
    and tier bounds scaled by the fraction, rounded half-up to 6 decimals."""
    if not plan_meter.prorate or days >= days_in_month:
        return plan_meter

    def scale(value: Decimal) -> Decimal:
        return (value * days / days_in_month).quantize(PRORATED_PLACES, rounding=ROUND_HALF_UP)

    tiers = tuple(
        replace(tier, up_to=None if tier.up_to is None else scale(tier.up_to))
        for tier in plan_meter.tiers
    )
    return replace(plan_meter, included=scale(plan_meter.included), tiers=tiers)


def blocks(units: Decimal, size: Decimal | None, rounding: str = "up") -> Decimal:
    """``units`` counted in blocks of ``size``: started blocks (``up``) or completed (``down``)."""
    if size is None:
        return units
    return (units / size).to_integral_value(
        rounding=ROUND_FLOOR if rounding == "down" else ROUND_CEILING
    )


def rate_events(plan_meter: PlanMeter, values: Sequence[Decimal]) -> Decimal:
    """The exact charge of a percentage meter for the month's event values, in event order:
    each event costs ``value * rate / 100`` plus ``fixed_fee`` (not for the first
    ``free_events`` events, like Lago's free units per event), clamped into
    ``[per_event_min, per_event_max]``; the sum is clamped by ``min_amount``/``max_amount``."""
    rate = plan_meter.rate or ZERO
    total = ZERO
    for number, value in enumerate(values, start=1):
        fee = Decimal(value) * rate / 100
        if number > plan_meter.free_events:
            fee += plan_meter.fixed_fee
        if plan_meter.per_event_min is not None:
            fee = max(fee, plan_meter.per_event_min)
        if plan_meter.per_event_max is not None:
            fee = min(fee, plan_meter.per_event_max)
        total += fee
    return clamped(plan_meter, total)


def clamped(plan_meter: PlanMeter, total: Decimal) -> Decimal:
    if plan_meter.min_amount is not None:
        total = max(total, plan_meter.min_amount)
    if plan_meter.max_amount is not None:
        total = min(total, plan_meter.max_amount)
    return total
