"""Hypothesis strategies shared by the Python == SQL rating tests: a priced meter using every
pricing rule of the catalog (tiers, flat fees, included units, package size, tier block sizes,
rounding up/down, flat_fee_from_zero, min/max per charge, prorate) and the days in force and a usage biased to tier edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from billing.catalog import PlanMeter, Tier

D = Decimal
# Decimals drawn as scaled integers: as exact as st.decimals and several times faster to draw.
money = st.integers(100, 500_000).map(lambda n: D(n).scaleb(-4))
unit_prices = st.one_of(
    st.sampled_from([D("0.001"), D("0.0005"), D("0.0002"), D("0.005"), D("0.25"), D("0.015")]),
    st.integers(1, 2_000_000).map(lambda n: D(n).scaleb(-6)),
)
block_sizes = st.one_of(st.none(), st.sampled_from([D(1), D(10), D(100), D(1000), D("0.5"), D(7)]))


@st.composite
def priced_meter(draw) -> tuple[PlanMeter, Decimal]:
    """A plan meter (named api_calls) drawing from every pricing rule, and a monthly quantity."""
    pricing = draw(st.sampled_from(["graduated", "volume", "package", "flat", "none"]))
    n_bounds = 0 if pricing in ("package", "flat") else draw(st.integers(0, 4))
    bounds = sorted(draw(st.sets(st.integers(1, 2_000_000), min_size=n_bounds, max_size=n_bounds)))
    blocky = pricing in ("graduated", "volume")
    tiers = tuple(
        Tier(
            up_to=None if up_to is None else D(up_to),
            unit_price=draw(unit_prices),
            flat_fee=draw(money if pricing == "flat" else st.one_of(st.just(D(0)), money)),
            block_size=draw(block_sizes) if blocky else None,
        )
        for up_to in [*bounds, None]
    )
    has_blocks = pricing == "package" or any(t.block_size is not None for t in tiers)
    min_amount = max_amount = None
    if pricing != "none":
        min_amount = draw(st.one_of(st.none(), st.just(D(0)), money))
        max_amount = draw(st.one_of(st.none(), money.map(lambda m: m * 20)))
        if min_amount is not None and max_amount is not None and min_amount > max_amount:
            min_amount, max_amount = max_amount, min_amount
    included = draw(
        st.one_of(st.just(D(0)), st.integers(0, 1_000_000).map(lambda n: D(n).scaleb(-2)))
    )
    meter = PlanMeter(
        meter="api_calls",
        pricing=pricing,
        included=included,
        package_size=D(draw(st.integers(1, 10_000))) if pricing == "package" else None,
        tiers=() if pricing == "none" else tiers,
        min_amount=min_amount,
        max_amount=max_amount,
        flat_fee_from_zero=draw(st.booleans())
        if pricing in ("graduated", "volume", "flat")
        else False,
        rounding=draw(st.sampled_from(["up", "down"])) if has_blocks else "up",
        prorate=pricing != "none" and draw(st.booleans()),
    )
    edges = [
        included + b + delta for b in [D(0), *map(D, bounds)] for delta in (D(0), D(1), D("-0.5"))
    ]
    quantity = draw(
        st.one_of(
            st.just(D(0)),
            st.integers(10_000, 3_000_000).map(D),
            st.integers(1_000, 5_000_000_000).map(lambda n: D(n).scaleb(-3)),
            st.sampled_from([q for q in edges if q >= 0] or [D(0)]),
        )
    )
    return meter, quantity


@st.composite
def month_in_force(draw) -> tuple[int, int]:
    """(days in force, days in the month): a whole month for a third of the cases."""
    days_in_month = draw(st.sampled_from([28, 29, 30, 31]))
    return draw(st.one_of(st.just(days_in_month), st.integers(1, days_in_month))), days_in_month


def draw_examples(strategy, n: int) -> list:
    """``n`` derandomized hypothesis examples of ``strategy``, collected for one batched check."""
    collected: list = []

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def collect(case):
        collected.append(case)

    collect()
    return collected


def _tiers(*rows) -> tuple[Tier, ...]:
    """Tiers from (up_to, unit_price, flat_fee, block_size) rows; strings become Decimals."""
    return tuple(
        Tier(
            up_to=None if up_to is None else D(up_to),
            unit_price=D(price),
            flat_fee=D(fee),
            block_size=None if block is None else D(block),
        )
        for up_to, price, fee, block in rows
    )


def _meter(pricing: str, tiers: tuple[Tier, ...], **rules) -> PlanMeter:
    return PlanMeter(meter="api_calls", pricing=pricing, tiers=tiers, **rules)


# (name, PlanMeter, quantity, currency, expected minor units). Each is worked by hand; the ones
# from a peer's published docs name the page. Python and SQL must both give exactly this.
HAND_WORKED = [
    # https://docs.stripe.com/billing/subscriptions/usage-based/transform-quantities
    # "Charge 10 USD per hour, round up": 150 minutes -> 3 hours -> 30 USD.
    ("stripe transform_quantity up", _meter(
        "package", _tiers((None, "10", "0", None)), package_size=D(60)), D(150), "USD", 3000),
    # same price with transform_quantity[round]=down: 150 minutes -> 2 whole hours -> 20 USD.
    ("stripe transform_quantity down", _meter(
        "package", _tiers((None, "10", "0", None)), package_size=D(60), rounding="down"),
        D(150), "USD", 2000),
    # https://getlago.com/docs/guide/plans/charges/charge-models/package
    # "$5 per 100 units and offer the first 100 units": 201 units -> $0 + $5 + $5 = $10.
    ("lago package with free units", _meter(
        "package", _tiers((None, "5", "0", None)), package_size=D(100), included=D(100)),
        D(201), "USD", 1000),
    # https://getlago.com/docs/guide/plans/charges/spending-minimum
    # $0.010 per tracked user, spending minimum $100, consumption worth $50 -> $100 in total
    # (Lago shows the $50 true-up as a separate item; Meterline raises the meter line itself).
    ("lago charge spending minimum", _meter(
        "graduated", _tiers((None, "0.010", "0", None)), min_amount=D(100)),
        D(5000), "USD", 10000),
    # Spending minimum on a month without usage still charges the minimum.
    ("minimum without usage", _meter(
        "graduated", _tiers((None, "0.010", "0", None)), min_amount=D(100)), D(0), "USD", 10000),
    # max_amount: 10,000 units at $0.01 = $100, capped at $50.
    ("charge cap", _meter(
        "graduated", _tiers((None, "0.01", "0", None)), max_amount=D(50)), D(10000), "USD", 5000),
    # flat_fee_from_zero: the first tier's $20 platform fee is due at 0 units...
    ("flat fee from zero", _meter(
        "graduated", _tiers(("100", "0", "20", None), (None, "0.1", "0", None)),
        flat_fee_from_zero=True), D(0), "USD", 2000),
    # ...and without it nothing is due at 0 units (today's rule).
    ("flat fee not from zero", _meter(
        "graduated", _tiers(("100", "0", "20", None), (None, "0.1", "0", None))),
        D(0), "USD", 0),
    # volume at 0 units with flat_fee_from_zero: the first tier's flat fee, in JPY.
    ("volume flat fee from zero", _meter(
        "volume", _tiers(("10", "100", "500", None), (None, "50", "0", None)),
        flat_fee_from_zero=True), D(0), "JPY", 500),
    # graduated with tier blocks: 1,250 units = 1,000 in tier 1 (10 blocks of 100 at $1) +
    # 250 in tier 2 (a started block of 1,000 at $5) = $15.
    ("graduated tier blocks up", _meter(
        "graduated", _tiers(("1000", "1", "0", "100"), (None, "5", "0", "1000"))),
        D(1250), "USD", 1500),
    # the same with rounding down: the 250 units do not complete a block of tier 2 -> $10.
    ("graduated tier blocks down", _meter(
        "graduated", _tiers(("1000", "1", "0", "100"), (None, "5", "0", "1000")),
        rounding="down"), D(1250), "USD", 1000),
    # volume with blocks: 1,050 units fall in tier 2: ceil(1050 / 100) = 11 blocks at $1.
    ("volume tier blocks", _meter(
        "volume", _tiers(("1000", "2", "0", "100"), (None, "1", "0", "100"))),
        D(1050), "USD", 1100),
]  # fmt: skip

# (name, PlanMeter, quantity, currency, days in force, days in the month, expected minor units)
PRORATED_HAND_WORKED = [
    # 1,000 free units then $0.01, subscribed 15 of 30 days: the free tier shrinks to 500 units,
    # so 1,000 units cost 500 * $0.01 = $5 (a whole month: $0).
    ("prorated free tier", _meter(
        "graduated", _tiers(("1000", "0", "0", None), (None, "0.01", "0", None)), prorate=True),
        D(1000), "USD", 15, 30, 500),
    # 100 included units, 10 of 31 days: 100 * 10 / 31 = 32.258065 included; 40 units leave
    # 7.741935 billable at $1 -> $7.74.
    ("prorated included units", _meter(
        "graduated", _tiers((None, "1", "0", None)), included=D(100), prorate=True),
        D(40), "USD", 10, 31, 774),
    # without prorate the same month rates as a whole month: 40 units are all included.
    ("not prorated", _meter(
        "graduated", _tiers((None, "1", "0", None)), included=D(100)), D(40), "USD", 10, 31, 0),
]  # fmt: skip


@st.composite
def percentage_meter(draw) -> tuple[PlanMeter, list[Decimal]]:
    """A percentage-priced meter (rate, fixed fee, free events, per-event and monthly clamps)
    and the month's event values, in event order."""
    low = draw(st.one_of(st.none(), st.integers(1, 200).map(lambda n: D(n).scaleb(-2))))
    high = draw(st.one_of(st.none(), st.integers(100, 50_000).map(lambda n: D(n).scaleb(-2))))
    if low is not None and high is not None and low > high:
        low, high = high, low
    meter = PlanMeter(
        meter="api_calls",
        pricing="percentage",
        rate=draw(st.integers(0, 500).map(lambda n: D(n).scaleb(-2))),
        fixed_fee=draw(
            st.one_of(st.just(D(0)), st.integers(1, 100).map(lambda n: D(n).scaleb(-2)))
        ),
        free_events=draw(st.integers(0, 3)),
        per_event_min=low,
        per_event_max=high,
        min_amount=draw(st.one_of(st.none(), st.none(), money)),
        max_amount=draw(st.one_of(st.none(), st.none(), money.map(lambda m: m * 10))),
    )
    if meter.min_amount and meter.max_amount and meter.min_amount > meter.max_amount:
        meter = PlanMeter(**{**vars(meter), "min_amount": meter.max_amount})
    values = draw(st.lists(st.integers(1, 500_000_00).map(lambda n: D(n).scaleb(-2)), max_size=6))
    return meter, values


def _percent(rate: str, fee: str = "0", **rules) -> PlanMeter:
    return PlanMeter(
        meter="api_calls", pricing="percentage", rate=D(rate), fixed_fee=D(fee), **rules
    )


# (name, PlanMeter, event values in order, currency, expected minor units)
PERCENTAGE_HAND_WORKED = [
    # https://getlago.com/docs/templates/per-transaction/stripe : card payments 2.9% + $0.30;
    # $100 and $50 -> (2.90 + 0.30) + (1.45 + 0.30) = $4.95.
    ("stripe card fees via lago", _percent("2.9", "0.30"), [D(100), D(50)], "USD", 495),
    # https://docs.upvest.co/products/tol/guides/fees/fees_transaction_fees_designing :
    # "1 % fee per order, not less than 1 EUR, not more than 100 EUR": orders of 50, 500 and
    # 20,000 EUR -> 1 + 5 + 100 = 106 EUR.
    ("upvest per-order min and max", _percent(
        "1", per_event_min=D(1), per_event_max=D(100)), [D(50), D(500), D(20000)], "EUR", 10600),
    # https://getlago.com/docs/guide/plans/charges/charge-models/percentage : free units per
    # event are "not subject to the fixed fee"; 1.2% + $0.10 with the first 3 events free of
    # the fee, 5 events of $10 -> 5 * 0.12 + 2 * 0.10 = $0.80.
    ("lago free events", _percent("1.2", "0.10", free_events=3), [D(10)] * 5, "USD", 80),
]  # fmt: skip


def _plan(plan_id: str, name: str, base_fee: str, meter: PlanMeter, currency: str = "USD"):
    from billing.catalog import Plan

    return Plan(plan_id, name, D(base_fee), currency, meters={"api_calls": meter})


SEPT = datetime(2026, 9, 1, tzinfo=UTC)

# (name, currency, plan before, plan after, change instant, events (instant, calls), expected
# lines in minor units) for September 2026 (30 days). Worked by hand; each segment's tiers and
# included units start from zero at the change (Lago: "tiers restart"; Stripe: usage after the
# change is on the new price).
PLAN_CHANGE_HAND_WORKED = [
    # Upgrade on Sep 11 00:00 (10 days on Basic, 20 on Plus). Basic: $30/month, 1,000 calls
    # included, then $0.01; Plus: $90/month, 10,000 included, then $0.005; neither prorated.
    # Base fee 30 * 10/30 + 90 * 20/30 = $70. 3,000 calls on Sep 5 on Basic: 2,000 * $0.01 =
    # $20. 12,000 calls on Sep 20 on Plus: 2,000 * $0.005 = $10. (The old rule rated all
    # 15,000 on Plus: 5,000 * $0.005 = $25.)
    ("mid-month upgrade", "USD",
     _plan("basic", "Basic", "30", _meter(
         "graduated", _tiers((None, "0.01", "0", None)), included=D(1000))),
     _plan("plus", "Plus", "90", _meter(
         "graduated", _tiers((None, "0.005", "0", None)), included=D(10000))),
     SEPT + timedelta(days=10),
     ((SEPT + timedelta(days=4), D(3000)), (SEPT + timedelta(days=19), D(12000))),
     {"base_fee": 7000, "usage:api_calls@xp{}.v1": 2000, "usage:api_calls@xq{}.v1": 1000}),
    # Downgrade on Sep 21 00:00 (20 days = 2/3 of the month on Scale, 10 days = 1/3 on Lite),
    # both prorated: Scale $300/month, up to 100,000 calls at $0.002 then $0.001; Lite $0,
    # 10,000 free then $0.01. Base fee 300 * 2/3 = $200. Scale's first tier shrinks to
    # 66,666.666667 calls: 150,000 calls on Sep 10 cost 66,666.666667 * $0.002 + 83,333.333333
    # * $0.001 = $216.666666667 -> $216.67. Lite's free tier shrinks to 3,333.333333: 8,000
    # calls on Sep 25 cost 4,666.666667 * $0.01 = $46.67.
    ("mid-month downgrade, prorated", "USD",
     _plan("scale", "Scale", "300", _meter(
         "graduated", _tiers(("100000", "0.002", "0", None), (None, "0.001", "0", None)),
         prorate=True)),
     _plan("lite", "Lite", "0", _meter(
         "graduated", _tiers(("10000", "0", "0", None), (None, "0.01", "0", None)),
         prorate=True)),
     SEPT + timedelta(days=20),
     ((SEPT + timedelta(days=9), D(150000)), (SEPT + timedelta(days=24), D(8000))),
     {"base_fee": 20000, "usage:api_calls@xp{}.v1": 21667, "usage:api_calls@xq{}.v1": 4667}),
]  # fmt: skip
