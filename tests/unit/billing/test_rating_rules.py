from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.catalog import Plan, PlanMeter, Tier, load_catalog
from billing.money import to_minor
from billing.rating import (
    PlanSpan,
    RatingError,
    describe_usage,
    invoice_total,
    plan_segments,
    rate_invoice,
    rate_meter,
    rate_period,
)

D = Decimal
CATALOG = load_catalog()
PAYG = CATALOG.plans["payg"]


def pm(pricing: str, tiers, *, included="0", package_size=None) -> PlanMeter:
    return PlanMeter(
        meter="api_calls",
        pricing=pricing,
        included=D(included),
        package_size=None if package_size is None else D(package_size),
        tiers=tuple(
            Tier(
                up_to=None if t[0] is None else D(t[0]),
                unit_price=D(t[1]),
                flat_fee=D(t[2]) if len(t) > 2 else D(0),
            )
            for t in tiers
        ),
    )


@pytest.mark.parametrize(
    ("meter", "quantity", "expected"),
    [
        ("api_calls", "10000000", "2340.00"),
        ("storage_gb", "150", "31.25"),
        ("compute_seconds", "10000", "32.00"),
        ("api_calls", "10005", "0.005"),  # rounds half-up to 0.01 on the line
        ("api_calls", "10004", "0.004"),
        ("api_calls", "10000", "0.00"),  # exactly the free tier
        ("api_calls", "0", "0.00"),
        ("api_calls", "100000", "90.00"),  # tier boundary belongs to the lower tier
        ("api_calls", "100001", "90.0005"),
        ("storage_gb", "5", "0"),
        ("storage_gb", "100", "23.75"),
        ("storage_gb", "100.5", "23.825"),
    ],
)
def test_payg_meters(meter, quantity, expected):
    exact = rate_meter(PAYG.meters[meter], D(quantity))
    assert exact == D(expected)
    assert to_minor(exact, "USD") == to_minor(D(expected), "USD")


def test_half_cent_rounds_up_once_per_line():
    assert [line.amount for line in rate_invoice(PAYG, {"api_calls": D(10_005)})] == [1]
    assert rate_invoice(PAYG, {"api_calls": D(10_004)}) == []


def test_payg_invoice_of_the_acceptance_case():
    lines = rate_invoice(
        PAYG,
        {"api_calls": D(10_000_000), "storage_gb": D(150), "compute_seconds": D(10_000)},
        "USD",
    )
    assert [(line.line_key, line.amount) for line in lines] == [
        ("usage:api_calls", 234000),
        ("usage:compute_seconds", 3200),
        ("usage:storage_gb", 3125),
    ]
    assert invoice_total(lines) == 240325
    assert lines[0].description == "API calls: 10,000,000 calls"


def test_total_is_sum_of_rounded_lines_not_rounded_sum():
    # two lines of 0.005 each: rounded per line 0.01 + 0.01 = 0.02 (a rounded sum would give 0.01)
    plan = Plan(
        "p",
        "P",
        D(0),
        "USD",
        meters={
            "api_calls": pm("graduated", [(None, "0.005")]),
            "compute_seconds": PlanMeter(
                "compute_seconds", "graduated", tiers=(Tier(None, D("0.005")),)
            ),
        },
    )
    lines = rate_invoice(plan, {"api_calls": D(1), "compute_seconds": D(1)}, "USD")
    assert [line.amount for line in lines] == [1, 1]
    assert invoice_total(lines) == 2


def test_included_units_then_tiers():
    pro = CATALOG.plans["pro"]
    assert rate_meter(pro.meters["api_calls"], D(500_000)) == 0  # exactly included
    assert rate_meter(pro.meters["api_calls"], D(500_001)) == D("0.001")
    lines = rate_invoice(pro, {"api_calls": D(600_000), "active_users": D(52)}, "USD")
    assert [(line.line_key, line.amount) for line in lines] == [
        ("base_fee", 9900),
        ("usage:active_users", 800),
        ("usage:api_calls", 10000),
    ]


def test_volume_vs_graduated():
    tiers = [(100, "1"), (1000, "0.5"), (None, "0.1")]
    assert rate_meter(pm("graduated", tiers), D(150)) == D("125")  # 100*1 + 50*0.5
    assert rate_meter(pm("volume", tiers), D(150)) == D("75")  # 150*0.5
    assert rate_meter(pm("volume", tiers), D(100)) == D("100")  # boundary: first tier
    assert rate_meter(pm("volume", tiers), D(1001)) == D("100.1")
    assert rate_meter(pm("volume", tiers), D(0)) == 0


def test_flat_fees_package_and_flat():
    tiers = [(10, "0", "5"), (None, "1", "2")]
    assert rate_meter(pm("graduated", tiers), D(0)) == 0
    assert rate_meter(pm("graduated", tiers), D(10)) == D("5")
    assert rate_meter(pm("graduated", tiers), D(11)) == D("8")  # 5 + 1*1 + 2
    assert rate_meter(pm("volume", tiers), D(11)) == D("13")  # 11*1 + 2
    pack = pm("package", [(None, "2.50")], package_size="1000", included="100")
    assert rate_meter(pack, D(100)) == 0
    assert rate_meter(pack, D(101)) == D("2.50")
    assert rate_meter(pack, D(1100)) == D("2.50")
    assert rate_meter(pack, D(1101)) == D("5.00")
    flat = pm("flat", [(None, "0", "9")], included="3")
    assert (rate_meter(flat, D(3)), rate_meter(flat, D(4))) == (0, D(9))
    assert rate_meter(PlanMeter("api_calls"), D(10**9)) == 0


def test_zero_usage_invoice_has_only_the_base_fee():
    assert [
        line.amount for line in rate_invoice(CATALOG.plans["starter"], {"api_calls": D(0)})
    ] == [2900]
    assert rate_invoice(PAYG, {"api_calls": D(0)}) == []


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("USD", 234000), ("EUR", 234000), ("GBP", 234000), ("JPY", 2340), ("NGN", 234000)],
)
def test_currencies_minor_units(currency, expected):
    lines = rate_invoice(PAYG, {"api_calls": D(10_000_000)}, currency)
    assert lines[0].amount == expected and lines[0].currency == currency


def test_jpy_rounds_half_up_to_whole_yen():
    plan = Plan("y", "Y", D(0), "JPY", meters={"api_calls": pm("graduated", [(None, "0.5")])})
    assert rate_invoice(plan, {"api_calls": D(1)})[0].amount == 1
    assert rate_invoice(plan, {"api_calls": D(3)})[0].amount == 2


def test_negative_quantity_is_refused_with_the_meter_name():
    with pytest.raises(RatingError, match="api_calls: quantity must be >= 0"):
        rate_meter(PAYG.meters["api_calls"], D(-1))


def test_describe_usage():
    assert describe_usage("api_calls", D(1_234_567)) == "API calls: 1,234,567 calls"
    assert describe_usage("storage_gb", D("150.500")) == "Storage (peak): 150.5 GB"


def test_mid_month_plan_change_prorates_base_fee_and_rates_each_segment_on_its_plan():
    starter, pro = CATALOG.plans["starter"], CATALOG.plans["pro"]
    change = datetime(2026, 9, 16, tzinfo=UTC)  # 15 of 30 days on each
    spans = [
        PlanSpan(starter, datetime(2026, 1, 1, tzinfo=UTC), change),
        PlanSpan(pro, change, None),
    ]
    segments = plan_segments(spans, date(2026, 9, 1))
    assert [(s.key_suffix, s.usage_from.day, s.usage_to.month) for s in segments] == [
        ("@starter.v1", 1, 9),
        ("@pro.v1", 16, 10),
    ]
    # 50,000 calls on starter (pricing none) + 550,000 on pro: pro's 500,000 included units
    # start from zero at the change, so 50,000 are billed at $0.001
    lines = rate_period(
        spans,
        {"api_calls": D(600_000)},
        date(2026, 9, 1),
        segment_usage=[{"api_calls": D(50_000)}, {"api_calls": D(550_000)}],
    )
    assert [(line.line_key, line.amount) for line in lines] == [
        ("base_fee", 6400),  # 29/2 + 99/2, one line rounded once
        ("usage:api_calls@pro.v1", 5000),
    ]
    assert lines[0].description == "Base fee, prorated: Starter 50.0% + Pro 50.0%"
    assert lines[1].description == (
        "API calls: 550,000 calls on Pro v1, 2026-09-16 00:00 to 2026-10-01 00:00 UTC"
    )
    with pytest.raises(RatingError, match="2 usage segments"):
        rate_period(spans, {"api_calls": D(600_000)}, date(2026, 9, 1))


def test_a_change_back_to_the_same_version_is_one_segment_and_a_return_is_numbered():
    starter, pro = CATALOG.plans["starter"], CATALOG.plans["pro"]
    at = [datetime(2026, 9, d, tzinfo=UTC) for d in (5, 10, 20)]
    # pro -> pro (a cancel and resubscribe, gap included) is one segment
    same = [PlanSpan(pro, datetime(2026, 1, 1, tzinfo=UTC), at[0]), PlanSpan(pro, at[1])]
    assert [s.key_suffix for s in plan_segments(same, date(2026, 9, 1))] == ["@pro.v1"]
    back = [
        PlanSpan(pro, datetime(2026, 1, 1, tzinfo=UTC), at[0]),
        PlanSpan(starter, at[0], at[1]),
        PlanSpan(pro, at[1], at[2]),
        PlanSpan(pro, at[2], None, version=2),
    ]
    assert [s.key_suffix for s in plan_segments(back, date(2026, 9, 1))] == [
        "@pro.v1",
        "@starter.v1",
        "@pro.v1#2",
        "@pro.v2",
    ]

    # a plan for the whole month: no proration, plain key
    whole = rate_period([PlanSpan(pro, datetime(2026, 1, 1, tzinfo=UTC))], {}, date(2026, 9, 1))
    assert [(line.line_key, line.amount) for line in whole] == [("base_fee", 9900)]
    # started mid-month: prorated
    late = rate_period([PlanSpan(pro, datetime(2026, 9, 21, tzinfo=UTC))], {}, date(2026, 9, 1))
    assert [(line.line_key, line.amount) for line in late] == [("base_fee", 3300)]


# Property-based invariants ------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=10, places=6, allow_nan=False, allow_infinity=False)
quantities = st.decimals(
    min_value=0, max_value=10**7, places=3, allow_nan=False, allow_infinity=False
)


@st.composite
def tier_lists(draw, order=None):
    bounds = sorted(draw(st.sets(st.integers(1, 10**6), min_size=0, max_size=4)))
    unit_prices = [draw(prices) for _ in range(len(bounds) + 1)]
    if order == "decreasing":
        unit_prices.sort(reverse=True)
    elif order == "increasing":
        unit_prices.sort()
    return [(b, p) for b, p in zip([*bounds, None], unit_prices, strict=True)]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    tiers=tier_lists(),
    pricing=st.sampled_from(["graduated", "volume"]),
    included=quantities,
    a=quantities,
    b=quantities,
)
def test_monotonic_in_quantity_without_flat_fees_for_graduated(tiers, pricing, included, a, b):
    meter = pm(pricing, tiers, included=str(included))
    lo, hi = sorted((a, b))
    if pricing == "graduated":
        assert rate_meter(meter, lo) <= rate_meter(meter, hi)
    assert rate_meter(meter, lo) >= 0
    if hi <= included:
        assert rate_meter(meter, hi) == 0


@settings(max_examples=200, deadline=None, derandomize=True)
@given(tiers=tier_lists(order="decreasing"), q=quantities)
def test_volume_never_exceeds_graduated_when_prices_decrease(tiers, q):
    assert rate_meter(pm("volume", tiers), q) <= rate_meter(pm("graduated", tiers), q)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(tiers=tier_lists(order="increasing"), q=quantities)
def test_graduated_never_exceeds_volume_when_prices_increase(tiers, q):
    assert rate_meter(pm("graduated", tiers), q) <= rate_meter(pm("volume", tiers), q)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(price=prices, q=quantities)
def test_single_tier_models_agree(price, q):
    one = [(None, price)]
    assert rate_meter(pm("graduated", one), q) == rate_meter(pm("volume", one), q) == q * price


@settings(max_examples=200, deadline=None, derandomize=True)
@given(tiers=tier_lists(), q=quantities, extra=st.integers(1, 10**6))
def test_graduated_is_additive_over_the_tier_walk(tiers, q, extra):
    # the marginal cost of extra units is at most extra * max price and at least extra * min price
    meter = pm("graduated", tiers)
    delta = rate_meter(meter, q + extra) - rate_meter(meter, q)
    unit_prices = [D(t[1]) for t in tiers]
    assert extra * min(unit_prices) <= delta <= extra * max(unit_prices)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(size=st.integers(1, 5000), price=prices, q=quantities)
def test_package_charges_whole_packages(size, price, q):
    meter = pm("package", [(None, price)], package_size=str(size))
    charge = rate_meter(meter, q)
    packages = charge / price if price else None
    if packages is not None:
        assert packages == packages.to_integral_value()
        assert (packages - 1) * size < q <= packages * size or q == 0
