"""The price catalog: meters, plans, limits and price tiers, validated on load.

A mistake names its path in the YAML and the problem, e.g.
``plans.pro.meters.api_calls.tiers[2].up_to must be greater than 100000``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from billing.collection import COLLECTION_FIELDS, Collection, parse_collection

DEFAULT_CATALOG = Path(__file__).with_name("catalog.yaml")
AGGREGATIONS = ("sum", "count", "max", "last", "unique_count")
PRICING_MODELS = ("graduated", "volume", "package", "flat", "percentage", "none")
PERCENTAGE_FIELDS = ("rate", "fixed_fee", "free_events", "per_event_min", "per_event_max")
ROUNDINGS = ("up", "down")
PLAN_METER_FIELDS = {
    "pricing", "limit", "hard_limit", "included", "package_size", "tiers",
    "min_amount", "max_amount", "flat_fee_from_zero", "rounding", "prorate", *PERCENTAGE_FIELDS,
}  # fmt: skip
MAX_QUANTITY = Decimal("1e15")


class CatalogError(ValueError):
    """The catalog is invalid; the message starts with the path of the offending value."""


@dataclass(frozen=True)
class Meter:
    meter: str
    aggregation: str
    unit: str
    unique_dimension: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None
    unit_price: Decimal = Decimal(0)
    flat_fee: Decimal = Decimal(0)
    block_size: Decimal | None = None  # units in the tier are priced per block of this size


@dataclass(frozen=True)
class PlanMeter:
    meter: str
    pricing: str = "none"
    limit: Decimal | None = None
    hard_limit: bool = False
    included: Decimal = Decimal(0)
    package_size: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    min_amount: Decimal | None = None  # floor of the month's charge (applies at zero usage)
    max_amount: Decimal | None = None  # cap of the month's charge
    flat_fee_from_zero: bool = False  # the first tier's flat_fee is charged even at 0 billable
    rounding: str = "up"  # package and tier blocks: count started (up) or completed (down)
    prorate: bool = False  # included units and tier bounds scale with the days in force
    # percentage pricing: per event, value * rate / 100 + fixed_fee (not on the month's first
    # free_events events) clamped into [per_event_min, per_event_max]
    rate: Decimal | None = None
    fixed_fee: Decimal = Decimal(0)
    free_events: int = 0
    per_event_min: Decimal | None = None
    per_event_max: Decimal | None = None

    @property
    def always_charged(self) -> bool:
        """Whether the meter's line exists for every month on the plan, with or without usage."""
        return self.pricing != "none" and (
            self.flat_fee_from_zero or (self.min_amount is not None and self.min_amount > 0)
        )


@dataclass(frozen=True)
class Plan:
    plan_id: str
    name: str
    base_fee: Decimal
    currency: str
    upgrade_to: str | None = None
    description: str = ""
    meters: dict[str, PlanMeter] = field(default_factory=dict)
    minimum_commitment: Decimal | None = None  # floor of the month's invoice total
    maximum_spend: Decimal | None = None  # cap of the month's invoice total
    collection: Collection = field(default_factory=Collection)  # how Stripe collects it


@dataclass(frozen=True)
class Catalog:
    currency: str
    meters: dict[str, Meter]
    plans: dict[str, Plan]


def _decimal(value: Any, path: str, *, allow_none: bool = False) -> Decimal | None:
    if value is None:
        if allow_none:
            return None
        raise CatalogError(f"{path} is required")
    if isinstance(value, bool):
        raise CatalogError(f"{path} must be a number, got {value!r}")
    if isinstance(value, float):
        # YAML floats are inexact; accept only those that round-trip through str exactly.
        value = repr(value)
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise CatalogError(f"{path} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise CatalogError(f"{path} must be a finite number, got {value!r}")
    if number < 0:
        raise CatalogError(f"{path} must be >= 0, got {number}")
    if number > MAX_QUANTITY:
        raise CatalogError(f"{path} must be at most {MAX_QUANTITY:.0e}, got {number}")
    return number


def _positive(value: Any, path: str) -> Decimal | None:
    number = _decimal(value, path, allow_none=True)
    if number is not None and number <= 0:
        raise CatalogError(f"{path} must be > 0 (or left out), got {number}")
    return number


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise CatalogError(f"{path} must be true or false, got {value!r}")
    return value


def _min_max(raw: dict, path: str, low: str, high: str) -> tuple[Decimal | None, Decimal | None]:
    lo = _decimal(raw.get(low), f"{path}.{low}", allow_none=True)
    hi = _decimal(raw.get(high), f"{path}.{high}", allow_none=True)
    if lo is not None and hi is not None and lo > hi:
        raise CatalogError(f"{path}.{low} ({lo}) must not exceed {path}.{high} ({hi})")
    return lo, hi


def _pricing_rules(raw: dict, pricing: str, tiers: tuple[Tier, ...], path: str) -> dict:
    """The peer pricing rules of a plan meter (spend floor/cap, flat fee from zero, rounding)."""
    min_amount, max_amount = _min_max(raw, path, "min_amount", "max_amount")
    if pricing == "none" and (min_amount is not None or max_amount is not None):
        raise CatalogError(f"{path}.min_amount/max_amount need a priced meter (pricing is none)")
    from_zero = _bool(raw.get("flat_fee_from_zero", False), f"{path}.flat_fee_from_zero")
    if from_zero and pricing not in ("graduated", "volume", "flat"):
        raise CatalogError(
            f"{path}.flat_fee_from_zero applies to graduated, volume or flat pricing, not {pricing}"
        )
    rounding = raw.get("rounding", "up")
    if rounding not in ROUNDINGS:
        raise CatalogError(f"{path}.rounding must be up or down, got {rounding!r}")
    has_blocks = pricing == "package" or any(t.block_size is not None for t in tiers)
    if "rounding" in raw and not has_blocks:
        raise CatalogError(
            f"{path}.rounding needs package pricing or a tier with block_size (nothing to round)"
        )
    if pricing not in ("graduated", "volume"):
        for index, tier in enumerate(tiers):
            if tier.block_size is not None:
                raise CatalogError(
                    f"{path}.tiers[{index}].block_size applies to graduated or volume pricing "
                    f"(use package_size for package pricing)"
                )
    prorate = _bool(raw.get("prorate", False), f"{path}.prorate")
    if prorate and pricing == "none":
        raise CatalogError(f"{path}.prorate needs a priced meter (pricing is none)")
    return {
        "min_amount": min_amount,
        "max_amount": max_amount,
        "flat_fee_from_zero": from_zero,
        "rounding": rounding,
        "prorate": prorate,
    }


def _mapping(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise CatalogError(f"{path} must be a mapping, got {type(value).__name__}")
    return value


def _unknown_keys(data: dict, allowed: set[str], path: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise CatalogError(
            f"{path}.{extra[0]} is not a known field (expected one of {', '.join(sorted(allowed))})"
        )


def _currency(value: Any, path: str) -> str:
    from billing.money import MINOR_UNITS

    code = str(value or "").upper()
    if code not in MINOR_UNITS:
        raise CatalogError(
            f"{path} must be an ISO 4217 code Meterline knows ({', '.join(sorted(MINOR_UNITS))}), "
            f"got {value!r}"
        )
    return code


def _parse_tiers(raw: Any, path: str) -> tuple[Tier, ...]:
    if not isinstance(raw, list) or not raw:
        raise CatalogError(f"{path} must be a non-empty list of tiers")
    tiers: list[Tier] = []
    previous: Decimal | None = Decimal(0)
    for index, item in enumerate(raw):
        tpath = f"{path}[{index}]"
        item = _mapping(item, tpath)
        _unknown_keys(item, {"up_to", "unit_price", "flat_fee", "block_size"}, tpath)
        if "up_to" not in item:
            raise CatalogError(f"{tpath}.up_to is required (use null for the last, unbounded tier)")
        up_to = _decimal(item.get("up_to"), f"{tpath}.up_to", allow_none=True)
        if previous is None:
            raise CatalogError(
                f"{tpath} follows an unbounded tier; only the last tier may have up_to: null"
            )
        if up_to is not None and up_to <= previous:
            raise CatalogError(f"{tpath}.up_to must be greater than {previous}")
        tiers.append(
            Tier(
                up_to=up_to,
                unit_price=_decimal(item.get("unit_price", 0), f"{tpath}.unit_price"),
                flat_fee=_decimal(item.get("flat_fee", 0), f"{tpath}.flat_fee"),
                block_size=_positive(item.get("block_size"), f"{tpath}.block_size"),
            )
        )
        previous = up_to
    if tiers[-1].up_to is not None:
        raise CatalogError(
            f"{path}[{len(tiers) - 1}].up_to must be null: the last tier is unbounded"
        )
    return tuple(tiers)


def _parse_plan_meter(name: str, raw: Any, path: str, meters: dict[str, Meter]) -> PlanMeter:
    if name not in meters:
        raise CatalogError(f"{path} refers to unknown meter {name!r} (known: {', '.join(meters)})")
    raw = _mapping(raw, path)
    _unknown_keys(raw, PLAN_METER_FIELDS, path)
    pricing = raw.get("pricing", "none")
    if pricing not in PRICING_MODELS:
        raise CatalogError(
            f"{path}.pricing must be one of {', '.join(PRICING_MODELS)}, got {pricing!r}"
        )
    hard_limit = raw.get("hard_limit", False)
    if not isinstance(hard_limit, bool):
        raise CatalogError(f"{path}.hard_limit must be true or false, got {hard_limit!r}")
    limit = _decimal(raw.get("limit"), f"{path}.limit", allow_none=True)
    if hard_limit and limit is None:
        raise CatalogError(f"{path}.limit is required when hard_limit is true")
    package_size = _decimal(raw.get("package_size"), f"{path}.package_size", allow_none=True)
    tiers: tuple[Tier, ...] = ()
    if pricing == "percentage":
        if "tiers" in raw:
            raise CatalogError(f"{path}.tiers must be absent for percentage pricing (use rate)")
    elif pricing == "none":
        if "tiers" in raw:
            raise CatalogError(f"{path}.tiers must be absent when pricing is none")
    else:
        tiers = _parse_tiers(raw.get("tiers"), f"{path}.tiers")
    if pricing == "package":
        if package_size is None or package_size <= 0:
            raise CatalogError(f"{path}.package_size must be > 0 for package pricing")
        if len(tiers) != 1:
            raise CatalogError(f"{path}.tiers must hold exactly one tier (the package price)")
    elif package_size is not None:
        raise CatalogError(f"{path}.package_size is only allowed with pricing: package")
    if pricing == "flat" and len(tiers) != 1:
        raise CatalogError(
            f"{path}.tiers must hold exactly one tier (its flat_fee) for flat pricing"
        )
    return PlanMeter(
        meter=name,
        pricing=pricing,
        limit=limit,
        hard_limit=hard_limit,
        included=_decimal(raw.get("included", 0), f"{path}.included"),
        package_size=package_size,
        tiers=tiers,
        **_pricing_rules(raw, pricing, tiers, path),
        **_percentage_rules(raw, pricing, path),
    )


def _percentage_rules(raw: dict, pricing: str, path: str) -> dict:
    """rate (percent of the event's value), fixed_fee, free_events, per_event_min/max."""
    if pricing != "percentage":
        for name in PERCENTAGE_FIELDS:
            if name in raw:
                raise CatalogError(f"{path}.{name} is only allowed with pricing: percentage")
        return {}
    if raw.get("rate") is None:
        raise CatalogError(f'{path}.rate is required for percentage pricing (e.g. "2.9" for 2.9%)')
    free_events = raw.get("free_events", 0)
    if isinstance(free_events, bool) or not isinstance(free_events, int) or free_events < 0:
        raise CatalogError(f"{path}.free_events must be a whole number >= 0, got {free_events!r}")
    low, high = _min_max(raw, path, "per_event_min", "per_event_max")
    return {
        "rate": _decimal(raw.get("rate"), f"{path}.rate"),
        "fixed_fee": _decimal(raw.get("fixed_fee", 0), f"{path}.fixed_fee"),
        "free_events": free_events,
        "per_event_min": low,
        "per_event_max": high,
    }


def parse_catalog(data: Any) -> Catalog:
    data = _mapping(data, "catalog")
    _unknown_keys(data, {"currency", "meters", "plans"}, "catalog")
    currency = _currency(data.get("currency", "USD"), "currency")
    raw_meters = _mapping(data.get("meters"), "meters")
    if not raw_meters:
        raise CatalogError("meters must define at least one meter")
    meters: dict[str, Meter] = {}
    for name, raw in raw_meters.items():
        path = f"meters.{name}"
        if (
            not isinstance(name, str)
            or not name.replace("_", "").isalnum()
            or not name[0].isalpha()
        ):
            raise CatalogError(
                f"{path}: meter names use letters, digits and '_' and start with a letter"
            )
        raw = _mapping(raw, path)
        _unknown_keys(raw, {"aggregation", "unit", "unique_dimension", "description"}, path)
        aggregation = raw.get("aggregation")
        if aggregation not in AGGREGATIONS:
            raise CatalogError(
                f"{path}.aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}"
            )
        unique_dimension = raw.get("unique_dimension")
        if (aggregation == "unique_count") != bool(unique_dimension):
            raise CatalogError(
                f"{path}.unique_dimension is required for unique_count meters and only for them"
            )
        meters[name] = Meter(
            meter=name,
            aggregation=aggregation,
            unit=str(raw.get("unit") or "units"),
            unique_dimension=unique_dimension,
            description=str(raw.get("description", "")),
        )
    raw_plans = _mapping(data.get("plans"), "plans")
    if not raw_plans:
        raise CatalogError("plans must define at least one plan")
    plans: dict[str, Plan] = {}
    for plan_id, raw in raw_plans.items():
        path = f"plans.{plan_id}"
        raw = _mapping(raw, path)
        _unknown_keys(
            raw,
            {"name", "base_fee", "currency", "upgrade_to", "description", "meters"}
            | {"minimum_commitment", "maximum_spend", *COLLECTION_FIELDS},
            path,
        )
        commitment, cap = _min_max(raw, path, "minimum_commitment", "maximum_spend")
        plan_meters = {
            name: _parse_plan_meter(name, item, f"{path}.meters.{name}", meters)
            for name, item in _mapping(raw.get("meters", {}), f"{path}.meters").items()
        }
        plans[plan_id] = Plan(
            plan_id=plan_id,
            name=str(raw.get("name") or plan_id),
            base_fee=_decimal(raw.get("base_fee", 0), f"{path}.base_fee"),
            currency=_currency(raw.get("currency", currency), f"{path}.currency"),
            upgrade_to=raw.get("upgrade_to"),
            description=str(raw.get("description", "")),
            meters=plan_meters,
            minimum_commitment=commitment,
            maximum_spend=cap,
            collection=parse_collection(raw, path, CatalogError),
        )
    for plan in plans.values():
        if plan.upgrade_to is not None and plan.upgrade_to not in plans:
            raise CatalogError(
                f"plans.{plan.plan_id}.upgrade_to refers to unknown plan {plan.upgrade_to!r}"
            )
    return Catalog(currency=currency, meters=meters, plans=plans)


def load_catalog(path: str | Path | None = None) -> Catalog:
    import yaml

    path = Path(path) if path else DEFAULT_CATALOG
    try:
        text = path.read_text()
    except OSError as exc:
        raise CatalogError(f"cannot read catalog file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path} is not valid YAML: {exc}") from None
    return parse_catalog(data)
