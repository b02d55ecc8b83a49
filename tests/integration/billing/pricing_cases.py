"""Hypothesis strategies shared by the Python == SQL rating tests: a priced meter using every
pricing rule of the catalog (tiers, flat fees, included units, package size, tier block sizes,
rounding up/down, flat_fee_from_zero, min/max per charge) and a usage biased to tier edges."""

from __future__ import annotations

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
