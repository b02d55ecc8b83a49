"""What `meterline catalog load` reports as changed between two versions of a plan."""

from decimal import Decimal as D

from billing.catalog import Plan, PlanMeter, Tier
from billing.catalog_diff import plan_changes


def plan(base_fee="29", limit="50000", tiers=(Tier(None, D("0.001")),), **meters) -> Plan:
    api = PlanMeter("api_calls", "graduated", D(limit), True, D(0), None, tiers)
    return Plan("starter", "Starter", D(base_fee), "USD", "pro", "", {"api_calls": api, **meters})


def test_the_same_plan_read_back_with_database_scale_is_not_a_change():
    stored = plan(base_fee="29.000000", limit="50000.000000", tiers=(Tier(None, D("0.001000")),))
    assert plan_changes(stored, plan()) == []


def test_each_changed_field_is_named_with_its_old_and_new_value():
    new = plan(
        base_fee="39",
        limit="60000",
        tiers=(Tier(D(1000), D(0)), Tier(None, D("0.002"), D(5))),
        gauge=PlanMeter("gauge"),
    )
    assert [str(c) for c in plan_changes(plan(), new)] == [
        "starter: base_fee 29 -> 39",
        "starter: meters.api_calls.limit 50000 -> 60000",
        "starter: meters.api_calls.tiers [<=inf@0.001] -> [<=1000@0, <=inf@0.002 +5]",
        "starter: meters.gauge - -> added",
    ]
    assert [str(c) for c in plan_changes(new, plan())][
        -1
    ] == "starter: meters.gauge listed -> removed"


def test_a_plan_never_loaded_before_is_reported_as_new():
    assert [str(c) for c in plan_changes(None, plan())] == ["starter: plan - -> new plan"]
