"""The rating engine: usage quantities and a plan's prices -> invoice lines, in ``Decimal``.

The rule (the same as the dbt rating models, to the cent):

- ``billable = max(0, quantity - included)``; tiers apply to billable units.
- graduated: tier ``i`` covers ``(up_to[i-1], up_to[i]]`` (the first starts at 0, the last is
  unbounded); every unit costs its tier's ``unit_price``, and each tier with at least one unit
  adds its ``flat_fee`` once.
- volume: all billable units at the ``unit_price`` of the first tier with ``up_to >= billable``
  (or the unbounded last one), plus that tier's ``flat_fee``; nothing when ``billable == 0``.
- package: ``ceil(billable / package_size) * tiers[0].unit_price`` (``floor`` with
  ``rounding: down``).
- flat: ``tiers[0].flat_fee`` once when ``billable > 0``.
- none: never charged.
- a tier with ``block_size``: its units are priced per block, ``unit_price`` being the price of
  a block: ``ceil(units_in_tier / block_size)`` blocks (``floor`` with ``rounding: down``);
  for volume the tier the total falls in prices ``blocks(billable)``.
- ``flat_fee_from_zero``: the first tier's ``flat_fee`` is charged even when ``billable == 0``
  (graduated, volume, flat), and the meter's line exists every month on the plan.
- ``min_amount`` / ``max_amount``: the meter's charge is clamped into ``[min, max]`` (a
  ``min_amount`` > 0 also makes the line exist every month).
- ``prorate``: in a month the tenant was subscribed for only part of (first to last UTC day in
  force, ``days`` of ``days_in_month``), ``included`` and every tier's ``up_to`` are multiplied
  by ``days / days_in_month``, rounded half-up to 6 decimals (``prorated``).
- percentage (``rate_events``): per event of the month, in (occurred_at, event_id) order,
  ``value * rate / 100 + fixed_fee`` (no fixed fee for the first ``free_events``) clamped into
  ``[per_event_min, per_event_max]``; the sum is then clamped by min/max_amount.
  ``rate_meter`` has only the month's total: it estimates ``total * rate / 100`` (portal only).
- the plan's ``minimum_commitment`` / ``maximum_spend`` act on the month's total of rounded
  lines: a ``minimum_commitment`` line tops a smaller total up to the commitment, a
  ``spend_cap`` line (negative) brings a larger total down to the cap.

``rate_meter`` is exact (unrounded). Each invoice line is rounded once, half-up, to the
currency's minor unit (``billing.money.to_minor``); an invoice total is the sum of its rounded
lines. A mid-month plan change prorates base fees by seconds on each plan and splits usage at
the change instant: each usage segment (``billing.usage_segments``) is rated on its own version
from zero (``prorate`` meters scaled by its seconds / the month's), keyed
``usage:<meter>@<plan>.v<version>``; a month on one version keeps ``usage:<meter>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from billing.catalog import Plan, PlanMeter
from billing.meter_labels import meter_label
from billing.money import minor_unit, to_minor
from billing.pricing_rules import blocks, clamped, prorated, rate_events
from billing.usage_segments import PlanSpan, UsageSegment, plan_segments, segment_note
from meterline.core.numbers import format_quantity
from meterline.core.periods import month_bounds

ZERO = Decimal(0)

# The unit a usage line names when the caller gives none (the catalog's units).
METER_UNITS = {
    "api_calls": "calls",
    "storage_gb": "GB",
    "compute_seconds": "s",
    "bandwidth_gb": "GB",
    "active_users": "users",
}


class RatingError(ValueError):
    """A plan cannot be rated as configured; the message names the plan/meter and the fix."""


@dataclass(frozen=True)
class InvoiceLine:
    """One rated invoice line. ``amount`` is in integer minor units of ``currency``."""

    line_key: str
    line_type: str  # base_fee | usage | adjustment
    meter: str | None
    plan_id: str | None
    quantity: Decimal
    amount: int
    currency: str
    description: str
    exact_amount: Decimal = ZERO


def billable_quantity(plan_meter: PlanMeter, quantity: Decimal) -> Decimal:
    return max(ZERO, Decimal(quantity) - plan_meter.included)


def days_in_force(spans: Sequence[PlanSpan], period: date) -> tuple[int, int]:
    """``(days, days_in_month)``: UTC days from the first to the last day of ``period`` on
    which any span is in force (a partial day counts), and the days of the month."""
    start, end = month_bounds(period)
    los = [max(start, s.start) for s in spans]
    his = [min(end, s.end) if s.end is not None else end for s in spans]
    first = min(lo for lo, hi in zip(los, his, strict=True) if hi > lo)
    last = max(hi for lo, hi in zip(los, his, strict=True) if hi > lo)
    days = ((last - timedelta(microseconds=1)).date() - first.date()).days + 1
    return days, (end - start).days


def rate_meter(plan_meter: PlanMeter, quantity: Decimal) -> Decimal:
    """The exact (unrounded) charge for ``quantity`` of one meter under ``plan_meter``."""
    quantity = Decimal(quantity)
    if quantity < 0:
        raise RatingError(
            f"{plan_meter.meter}: quantity must be >= 0, got {quantity}; "
            "negative usage is a data error upstream"
        )
    if plan_meter.pricing == "none":
        return ZERO
    if not plan_meter.tiers and plan_meter.pricing != "percentage":
        raise RatingError(
            f"{plan_meter.meter}: pricing {plan_meter.pricing} needs at least one tier"
        )
    if plan_meter.pricing == "percentage":  # an estimate: per-event rules need rate_events
        return clamped(plan_meter, quantity * (plan_meter.rate or ZERO) / 100)
    total = _tiered_amount(plan_meter, billable_quantity(plan_meter, quantity))
    return clamped(plan_meter, total)


def _tiered_amount(plan_meter: PlanMeter, billable: Decimal) -> Decimal:
    pricing, tiers, rounding = plan_meter.pricing, plan_meter.tiers, plan_meter.rounding
    first_fee = tiers[0].flat_fee if billable > 0 or plan_meter.flat_fee_from_zero else ZERO
    if pricing == "graduated":
        total = first_fee
        lower = ZERO
        for index, tier in enumerate(tiers):
            upper = billable if tier.up_to is None else min(billable, tier.up_to)
            units = upper - lower
            if units > 0:
                total += blocks(units, tier.block_size, rounding) * tier.unit_price
                total += tier.flat_fee if index > 0 else ZERO
            if tier.up_to is None or tier.up_to >= billable:
                break
            lower = tier.up_to
        return total
    if pricing == "volume":
        if billable == 0:
            return first_fee
        for tier in tiers:
            if tier.up_to is None or tier.up_to >= billable:
                return blocks(billable, tier.block_size, rounding) * tier.unit_price + tier.flat_fee
        raise RatingError(f"{plan_meter.meter}: the last volume tier must be unbounded")
    if pricing == "package":
        size = plan_meter.package_size
        if size is None or size <= 0:
            raise RatingError(f"{plan_meter.meter}: package pricing needs package_size > 0")
        return blocks(billable, size, rounding) * tiers[0].unit_price
    if pricing == "flat":
        return first_fee
    raise RatingError(
        f"{plan_meter.meter}: unknown pricing {pricing!r} (use graduated, volume, package, flat or none)"
    )


def describe_usage(meter: str, quantity: Decimal, unit: str | None = None) -> str:
    """The invoice line text for a usage line: ``API calls: 1,234,567 calls``."""
    unit = unit or METER_UNITS.get(meter, "units")
    return f"{meter_label(meter)}: {format_quantity(quantity)} {unit}"


def usage_line(
    plan: Plan,
    meter: str,
    quantity: Decimal,
    currency: str,
    in_force: tuple[Decimal | int, Decimal | int] = (1, 1),
    events: Sequence[Decimal] | None = None,
) -> InvoiceLine:
    """The line of one meter; ``in_force`` = the share of the month in force for prorated
    meters, as (days, days_in_month) or, for a usage segment, (seconds, month_seconds);
    ``events``: the month's event values in order (required for percentage pricing)."""
    plan_meter = plan.meters[meter]
    if plan_meter.pricing == "percentage":
        if events is None:
            raise RatingError(
                f"plans.{plan.plan_id}.meters.{meter}: percentage pricing is rated per event; "
                "pass the month's event values (events=...)"
            )
        exact = rate_events(plan_meter, events)
    else:
        exact = rate_meter(prorated(plan_meter, *in_force), quantity)
    return InvoiceLine(
        line_key=f"usage:{meter}",
        line_type="usage",
        meter=meter,
        plan_id=plan.plan_id,
        quantity=Decimal(quantity),
        amount=to_minor(exact, currency),
        currency=currency.upper(),
        description=describe_usage(meter, quantity),
        exact_amount=exact,
    )


def base_fee_line(
    plan: Plan, currency: str, *, fraction: Decimal = Decimal(1), key: str = "base_fee"
) -> InvoiceLine:
    exact = plan.base_fee * fraction
    text = f"{plan.name} plan base fee"
    if fraction != 1:
        text += f" (prorated {(fraction * 100).quantize(Decimal('0.01'))}% of the month)"
    return InvoiceLine(
        line_key=key,
        line_type="base_fee",
        meter=None,
        plan_id=plan.plan_id,
        quantity=fraction,
        amount=to_minor(exact, currency),
        currency=currency.upper(),
        description=text,
        exact_amount=exact,
    )


def rate_invoice(
    plan: Plan,
    usage: Mapping[str, Decimal],
    currency: str | None = None,
    *,
    include_zero: bool = False,
    events: Mapping[str, Sequence[Decimal]] | None = None,
) -> list[InvoiceLine]:
    """Lines of a month on one plan: the base fee, then one line per charged meter.

    ``usage`` maps meter -> quantity for the month. Lines of amount 0 are left out unless
    ``include_zero``. Meters the plan does not price are ignored (they are not billable).
    """
    currency = (currency or plan.currency).upper()
    minor_unit(currency)  # unknown currency -> clear error
    lines: list[InvoiceLine] = []
    base = base_fee_line(plan, currency)
    if include_zero or base.amount != 0:
        lines.append(base)
    lines += _usage_lines(plan, usage, currency, include_zero, events=events)
    return lines + spend_limit_lines(plan, lines, currency)


def invoice_total(lines: Sequence[InvoiceLine]) -> int:
    """The invoice total: the sum of the rounded lines (minor units)."""
    return sum(line.amount for line in lines)


def rate_period(
    spans: Sequence[PlanSpan],
    usage: Mapping[str, Decimal],
    period: date,
    currency: str | None = None,
    *,
    include_zero: bool = False,
    events: Mapping[str, Sequence[Decimal]] | None = None,
    segment_usage: Sequence[Mapping[str, Decimal]] | None = None,
    segment_events: Sequence[Mapping[str, Sequence[Decimal]]] | None = None,
) -> list[InvoiceLine]:
    """Lines of a month with a plan history: a prorated base fee + usage per segment.

    Each plan in force during the month contributes ``base_fee * seconds_on_plan /
    seconds_in_month``; the sum is one ``base_fee`` line, rounded once (as the dbt mart does).
    A month on one plan version (one segment of ``plan_segments``) rates ``usage`` (the
    month's quantities) on it; its ``prorate`` meters are prorated by the days in force
    (``days_in_force``). A month with a plan change rates each segment on its own version:
    ``segment_usage`` (and, for percentage meters, ``segment_events``) gives each segment's
    quantities in the order of ``plan_segments(spans, period)``; ``usage``/``events`` are then
    not used. The invoice floor and cap are those of the plan in force at month end.
    """
    start, end = month_bounds(period)
    month_seconds = Decimal(int((end - start).total_seconds()))
    overlapping: list[tuple[PlanSpan, Decimal]] = []
    for span in sorted(spans, key=lambda s: s.start):
        lo = max(start, span.start)
        hi = min(end, span.end) if span.end is not None else end
        if hi > lo:
            seconds = Decimal(int((hi - lo).total_seconds()))
            overlapping.append((span, seconds / month_seconds))
    if not overlapping:
        return []
    final_plan = overlapping[-1][0].plan
    currency = (currency or final_plan.currency).upper()
    lines: list[InvoiceLine] = []
    exact = sum((span.plan.base_fee * fraction for span, fraction in overlapping), ZERO)
    if len(overlapping) == 1 and overlapping[0][1] == 1:
        text = f"{final_plan.name} plan base fee"
    else:
        notes = " + ".join(
            f"{span.plan.name} {(fraction * 100).quantize(Decimal('0.1'))}%"
            for span, fraction in overlapping
        )
        text = f"Base fee, prorated: {notes}"
    base = InvoiceLine(
        line_key="base_fee",
        line_type="base_fee",
        meter=None,
        plan_id=final_plan.plan_id,
        quantity=Decimal(1),
        amount=to_minor(exact, currency),
        currency=currency,
        description=text,
        exact_amount=exact,
    )
    if include_zero or base.amount != 0:
        lines.append(base)
    segments = plan_segments([span for span, _ in overlapping], period)
    if len(segments) == 1:
        in_force = days_in_force([span for span, _ in overlapping], period)
        lines += _usage_lines(segments[0].plan, usage, currency, include_zero, in_force, events)
    else:
        lines += _segment_lines(segments, segment_usage, segment_events, currency, include_zero)
    return lines + spend_limit_lines(final_plan, lines, currency)


def _segment_lines(
    segments: Sequence[UsageSegment],
    segment_usage: Sequence[Mapping[str, Decimal]] | None,
    segment_events: Sequence[Mapping[str, Sequence[Decimal]]] | None,
    currency: str,
    include_zero: bool,
) -> list[InvoiceLine]:
    """Usage lines of a month with a plan change: each segment rated on its own version, the
    line keyed and described with the segment."""
    if segment_usage is None or len(segment_usage) != len(segments):
        raise RatingError(
            f"this month has {len(segments)} usage segments (a plan change): pass "
            "segment_usage=[{meter: quantity}, ...], one mapping per segment in the order of "
            "plan_segments(spans, period)"
        )
    lines = []
    for number, segment in enumerate(segments):
        share = (segment.covered_seconds, segment.month_seconds)
        events = segment_events[number] if segment_events is not None else None
        for line in _usage_lines(
            segment.plan, segment_usage[number], currency, include_zero, share, events
        ):
            lines.append(
                replace(
                    line,
                    line_key=line.line_key + segment.key_suffix,
                    description=line.description + segment_note(segment),
                )
            )
    return lines


def _usage_lines(
    plan: Plan,
    usage: Mapping[str, Decimal],
    currency: str,
    include_zero: bool,
    in_force: tuple[Decimal | int, Decimal | int] = (1, 1),
    events: Mapping[str, Sequence[Decimal]] | None = None,
) -> list[InvoiceLine]:
    """One line per meter with usage, plus the plan's always-charged meters (at 0 usage)."""
    always = {meter for meter, pm in plan.meters.items() if pm.always_charged}
    lines = []
    for meter in sorted(set(usage) | always):
        if meter not in plan.meters:
            continue
        quantity = Decimal(usage.get(meter, ZERO))
        values = (
            (events or {}).get(meter, ()) if plan.meters[meter].pricing == "percentage" else None
        )
        line = usage_line(plan, meter, quantity, currency, in_force, values)
        if include_zero or line.amount != 0:
            lines.append(line)
    return lines


def spend_limit_lines(plan: Plan, lines: Sequence[InvoiceLine], currency: str) -> list[InvoiceLine]:
    """The plan's invoice floor and cap, acting on the month's total of rounded lines.

    ``minimum_commitment``: a ``minimum_commitment`` line worth ``commitment - total`` when the
    total is below it. ``maximum_spend``: a negative ``spend_cap`` line worth ``cap - total``
    when the total is above it. At most one of them (the commitment never exceeds the cap).
    """
    total = invoice_total(lines)
    extra: list[tuple[str, str, int]] = []
    if plan.minimum_commitment is not None:
        floor = to_minor(plan.minimum_commitment, currency)
        if total < floor:
            extra.append(("minimum_commitment", "Minimum commitment top-up", floor - total))
    if plan.maximum_spend is not None:
        cap = to_minor(plan.maximum_spend, currency)
        if total > cap:
            extra.append(("spend_cap", "Spend cap", cap - total))
    scale = Decimal(10) ** minor_unit(currency)
    return [
        InvoiceLine(
            line_key=key,
            line_type=key,
            meter=None,
            plan_id=plan.plan_id,
            quantity=Decimal(1),
            amount=amount,
            currency=currency.upper(),
            description=text,
            exact_amount=Decimal(amount) / scale,
        )
        for key, text, amount in extra
    ]
