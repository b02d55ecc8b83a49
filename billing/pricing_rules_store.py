"""The catalog's pricing rules (migration ``0007_pricing_rules``) as columns of a plan version:
spend floors/caps per meter and per plan, flat fees from zero, block rounding, prorating,
percentage pricing and tier block sizes.

The rules are part of a plan version (migration ``0006_plan_versions``): a change of any rule
writes a new version (``billing.catalog_diff``) and ``billing.catalog_store`` inserts the rules
with the version's rows, in the same transaction; a stored version is never updated."""

from __future__ import annotations

from typing import Any

# column of meterline.<table> -> attribute of billing.catalog.<class>
PLAN_RULES = {"minimum_commitment": "minimum_commitment", "maximum_spend": "maximum_spend"}
METER_RULES = {
    "min_amount": "min_amount",
    "max_amount": "max_amount",
    "flat_fee_from_zero": "flat_fee_from_zero",
    "rounding": "rounding",
    "prorate": "prorate",
    "percentage_rate": "rate",
    "fixed_fee": "fixed_fee",
    "free_events": "free_events",
    "per_event_min": "per_event_min",
    "per_event_max": "per_event_max",
}
TIER_RULES = {"block_size": "block_size"}


def rule_columns(rules: dict[str, str]) -> tuple[str, str]:
    """``(", col_a, col_b", ", :col_a, :col_b")``: the rule columns of an INSERT and their
    bind parameters (the names are the constants above, never input)."""
    return "".join(f", {c}" for c in rules), "".join(f", :{c}" for c in rules)


def rule_values(item: Any, rules: dict[str, str]) -> dict[str, Any]:
    """The bind parameters of ``item``'s rules (a Plan, PlanMeter or Tier)."""
    return {column: getattr(item, attribute) for column, attribute in rules.items()}


def rules_of_row(row: Any, rules: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments of a Plan, PlanMeter or Tier: the rules read back from ``row``."""
    return {attribute: getattr(row, column) for column, attribute in rules.items()}
