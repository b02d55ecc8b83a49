"""What changed between two versions of a plan, field by field (``meterline catalog load``)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing.catalog import Plan, PlanMeter, Tier
from billing.collection import COLLECTION_FIELDS
from billing.pricing_rules_store import METER_RULES, PLAN_RULES

# every field of a version: a change of any of them, pricing rules included, is a new version
PLAN_FIELDS = ("name", "base_fee", "currency", "upgrade_to", "description", *PLAN_RULES.values())
METER_FIELDS = (
    "pricing", "limit", "hard_limit", "included", "package_size", *METER_RULES.values(),
)  # fmt: skip


@dataclass(frozen=True)
class FieldChange:
    plan_id: str
    field: str  # "base_fee", "meters.api_calls.tiers", "meters.gauge" (added/removed)...
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.plan_id}: {self.field} {self.old} -> {self.new}"


def show(value: object) -> str:
    """A value as the catalog YAML would write it (Decimals without trailing zeros)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    if isinstance(value, Tier):
        up_to = "inf" if value.up_to is None else show(Decimal(value.up_to))
        flat = f" +{show(value.flat_fee)}" if value.flat_fee else ""
        block = f" per {show(value.block_size)}" if value.block_size is not None else ""
        return f"<={up_to}@{show(value.unit_price)}{block}{flat}"
    return repr(value) if isinstance(value, str) else str(value)


def _same(a: object, b: object) -> bool:
    if isinstance(a, (int, Decimal)) and isinstance(b, (int, Decimal)):
        return Decimal(a) == Decimal(b)
    return a == b


def _tiers(tiers: tuple[Tier, ...]) -> str:
    return "[" + ", ".join(show(t) for t in tiers) + "]"


def _same_tiers(a: tuple[Tier, ...], b: tuple[Tier, ...]) -> bool:
    return len(a) == len(b) and all(
        _same(x.up_to, y.up_to)
        and _same(x.unit_price, y.unit_price)
        and _same(x.flat_fee, y.flat_fee)
        and _same(x.block_size, y.block_size)
        for x, y in zip(a, b, strict=True)
    )


def _meter_changes(plan_id: str, old: PlanMeter, new: PlanMeter) -> list[FieldChange]:
    changes = [
        FieldChange(
            plan_id, f"meters.{new.meter}.{f}", show(getattr(old, f)), show(getattr(new, f))
        )
        for f in METER_FIELDS
        if not _same(getattr(old, f), getattr(new, f))
    ]
    if not _same_tiers(old.tiers, new.tiers):
        changes.append(
            FieldChange(plan_id, f"meters.{new.meter}.tiers", _tiers(old.tiers), _tiers(new.tiers))
        )
    return changes


def plan_changes(old: Plan | None, new: Plan) -> list[FieldChange]:
    """Every difference from ``old`` (the latest stored version; None: a new plan) to ``new``."""
    if old is None:
        return [FieldChange(new.plan_id, "plan", "-", "new plan")]
    changes = [
        FieldChange(new.plan_id, f, show(getattr(old, f)), show(getattr(new, f)))
        for f in PLAN_FIELDS
        if not _same(getattr(old, f), getattr(new, f))
    ]
    changes += [
        FieldChange(
            new.plan_id, f, show(getattr(old.collection, f)), show(getattr(new.collection, f))
        )
        for f in COLLECTION_FIELDS
        if getattr(old.collection, f) != getattr(new.collection, f)
    ]
    for meter in sorted(old.meters.keys() | new.meters.keys()):
        before, after = old.meters.get(meter), new.meters.get(meter)
        if before is None:
            changes.append(FieldChange(new.plan_id, f"meters.{meter}", "-", "added"))
        elif after is None:
            changes.append(FieldChange(new.plan_id, f"meters.{meter}", "listed", "removed"))
        else:
            changes.extend(_meter_changes(new.plan_id, before, after))
    return changes
