"""Pricing rules on par with peers, in Python: hand-worked cases (some from Stripe's and Lago's
docs) and the catalog errors naming plan, meter and field. The same cases run through the dbt
SQL in tests/integration/billing/test_pricing_rules_match_dbt_sql.py."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.catalog import CatalogError, Plan, PlanMeter, Tier, parse_catalog
from billing.money import to_minor
from billing.pricing_rules import rate_events
from billing.rating import PlanSpan, days_in_force, prorated, rate_invoice, rate_meter, rate_period
from tests.pricing_cases import HAND_WORKED, PERCENTAGE_HAND_WORKED, PRORATED_HAND_WORKED

D = Decimal


@pytest.mark.parametrize(
    ("meter", "quantity", "currency", "expected"),
    [case[1:] for case in HAND_WORKED],
    ids=[case[0] for case in HAND_WORKED],
)
def test_hand_worked_charges(meter, quantity, currency, expected):
    assert to_minor(rate_meter(meter, quantity), currency) == expected


@pytest.mark.parametrize(
    ("meter", "quantity", "currency", "days", "in_month", "expected"),
    [case[1:] for case in PRORATED_HAND_WORKED],
    ids=[case[0] for case in PRORATED_HAND_WORKED],
)
def test_hand_worked_prorated_charges(meter, quantity, currency, days, in_month, expected):
    assert to_minor(rate_meter(prorated(meter, days, in_month), quantity), currency) == expected


@pytest.mark.parametrize(
    ("meter", "values", "currency", "expected"),
    [case[1:] for case in PERCENTAGE_HAND_WORKED],
    ids=[case[0] for case in PERCENTAGE_HAND_WORKED],
)
def test_hand_worked_percentage_charges(meter, values, currency, expected):
    assert to_minor(rate_events(meter, values), currency) == expected


def test_a_percentage_meter_on_an_invoice_needs_its_events():
    meter = PERCENTAGE_HAND_WORKED[0][1]
    plan = Plan("p", "P", D(0), "USD", meters={"api_calls": meter})
    lines = rate_invoice(plan, {"api_calls": D(150)}, events={"api_calls": [D(100), D(50)]})
    assert [(line.line_key, line.amount) for line in lines] == [("usage:api_calls", 495)]


def test_a_subscription_starting_mid_month_prorates_by_days_in_force():
    # starts 2026-09-16 10:00 UTC: days 16..30 of September = 15 of 30 days in force
    meter = PRORATED_HAND_WORKED[0][1]
    plan = Plan("p", "P", D(0), "USD", meters={"api_calls": meter})
    spans = [PlanSpan(plan, datetime(2026, 9, 16, 10, tzinfo=UTC))]
    lines = rate_period(spans, {"api_calls": D(1000)}, date(2026, 9, 1))
    assert [(line.line_key, line.amount) for line in lines] == [("usage:api_calls", 500)]
    assert days_in_force(spans, date(2026, 9, 1)) == (15, 30)


def _plan(**limits) -> Plan:
    meter = PlanMeter("api_calls", "graduated", tiers=(Tier(None, D(10)),))
    return Plan("p", "P", D(50), "USD", meters={"api_calls": meter}, **limits)


def test_lago_minimum_commitment_adds_a_top_up_line():
    # https://github.com/getlago/lago-api/pull/1787 (minimum commitment scenario):
    # "$50 + 3 * $10 = $80 + $20 (true-up fee) = $100".
    lines = rate_invoice(_plan(minimum_commitment=D(100)), {"api_calls": D(3)})
    assert [(line.line_key, line.amount) for line in lines] == [
        ("base_fee", 5000),
        ("usage:api_calls", 3000),
        ("minimum_commitment", 2000),
    ]
    assert lines[-1].description == "Minimum commitment top-up"


def test_spend_cap_adds_a_negative_line_down_to_the_cap():
    lines = rate_invoice(_plan(maximum_spend=D(60)), {"api_calls": D(3)})
    assert lines[-1].line_key == "spend_cap" and lines[-1].amount == -2000
    assert sum(line.amount for line in lines) == 6000


def test_totals_between_commitment_and_cap_get_no_extra_line():
    lines = rate_invoice(_plan(minimum_commitment=D(70), maximum_spend=D(90)), {"api_calls": D(3)})
    assert [line.line_key for line in lines] == ["base_fee", "usage:api_calls"]


def test_a_meter_with_a_minimum_is_on_the_invoice_without_usage():
    meter = PlanMeter("storage_gb", "graduated", tiers=(Tier(None, D(1)),), min_amount=D(5))
    plan = Plan("p", "P", D(0), "USD", meters={"storage_gb": meter})
    assert [(line.line_key, line.amount) for line in rate_invoice(plan, {})] == [
        ("usage:storage_gb", 500)
    ]


def _catalog(plan: dict) -> dict:
    return {"meters": {"api_calls": {"aggregation": "sum"}}, "plans": {"p": plan}}


GRADUATED = {"pricing": "graduated", "tiers": [{"up_to": None, "unit_price": "1"}]}


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (
            {"meters": {"api_calls": {**GRADUATED, "min_amount": "5", "max_amount": "4"}}},
            "plans.p.meters.api_calls.min_amount (5) must not exceed "
            "plans.p.meters.api_calls.max_amount (4)",
        ),
        (
            {"meters": {"api_calls": {"pricing": "none", "min_amount": "5"}}},
            "plans.p.meters.api_calls.min_amount/max_amount need a priced meter",
        ),
        (
            {"meters": {"api_calls": {**GRADUATED, "max_amount": "-1"}}},
            "plans.p.meters.api_calls.max_amount must be >= 0",
        ),
        (
            {"meters": {"api_calls": {"pricing": "package", "package_size": 10,
                                      "tiers": [{"up_to": None, "unit_price": "1"}],
                                      "flat_fee_from_zero": True}}},
            "plans.p.meters.api_calls.flat_fee_from_zero applies to graduated, volume or flat",
        ),
        (
            {"meters": {"api_calls": {**GRADUATED, "flat_fee_from_zero": "yes"}}},
            "plans.p.meters.api_calls.flat_fee_from_zero must be true or false",
        ),
        (
            {"meters": {"api_calls": {"pricing": "package", "package_size": 10,
                                      "tiers": [{"up_to": None, "unit_price": "1"}],
                                      "rounding": "nearest"}}},
            "plans.p.meters.api_calls.rounding must be up or down, got 'nearest'",
        ),
        (
            {"meters": {"api_calls": {**GRADUATED, "rounding": "down"}}},
            "plans.p.meters.api_calls.rounding needs package pricing or a tier with block_size",
        ),
        (
            {"meters": {"api_calls": {"pricing": "graduated", "tiers": [
                {"up_to": None, "unit_price": "1", "block_size": 0}]}}},
            "plans.p.meters.api_calls.tiers[0].block_size must be > 0",
        ),
        (
            {"meters": {"api_calls": {"pricing": "package", "package_size": 10, "tiers": [
                {"up_to": None, "unit_price": "1", "block_size": 5}]}}},
            "plans.p.meters.api_calls.tiers[0].block_size applies to graduated or volume",
        ),
        (
            {"meters": {"api_calls": {"pricing": "percentage", "fixed_fee": "0.3"}}},
            "plans.p.meters.api_calls.rate is required for percentage pricing",
        ),
        (
            {"meters": {"api_calls": {**GRADUATED, "rate": "2.9"}}},
            "plans.p.meters.api_calls.rate is only allowed with pricing: percentage",
        ),
        (
            {"meters": {"api_calls": {"pricing": "percentage", "rate": "1", "free_events": -1}}},
            "plans.p.meters.api_calls.free_events must be a whole number >= 0",
        ),
        (
            {"meters": {"api_calls": {"pricing": "percentage", "rate": "1",
                                      "per_event_min": "2", "per_event_max": "1"}}},
            "plans.p.meters.api_calls.per_event_min (2) must not exceed",
        ),
        (
            {"minimum_commitment": "100", "maximum_spend": "50"},
            "plans.p.minimum_commitment (100) must not exceed plans.p.maximum_spend (50)",
        ),
        (
            {"maximum_spend": "lots"},
            "plans.p.maximum_spend must be a number, got 'lots'",
        ),
    ],
)  # fmt: skip
def test_invalid_pricing_rules_are_refused_naming_plan_meter_and_field(plan, message):
    with pytest.raises(CatalogError) as error:
        parse_catalog(_catalog(plan))
    assert message in str(error.value)


def test_pricing_rules_parse_from_yaml_fields():
    catalog = parse_catalog(
        _catalog(
            {
                "minimum_commitment": "100",
                "maximum_spend": "1000",
                "meters": {
                    "api_calls": {
                        "pricing": "graduated",
                        "min_amount": "1",
                        "max_amount": "90",
                        "flat_fee_from_zero": True,
                        "rounding": "down",
                        "tiers": [
                            {"up_to": 100, "unit_price": "0", "flat_fee": "20"},
                            {"up_to": None, "unit_price": "5", "block_size": 1000},
                        ],
                    }
                },
            }
        )
    )
    plan = catalog.plans["p"]
    meter = plan.meters["api_calls"]
    assert (plan.minimum_commitment, plan.maximum_spend) == (D(100), D(1000))
    assert (meter.min_amount, meter.max_amount, meter.flat_fee_from_zero, meter.rounding) == (
        D(1), D(90), True, "down",
    )  # fmt: skip
    assert meter.tiers[1].block_size == D(1000) and meter.always_charged
