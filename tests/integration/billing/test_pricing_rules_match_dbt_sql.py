"""Every pricing rule rates the same in Python (billing.rating) and SQL (macro rated_amount),
to the cent, on 2,000 random plan meters and usages, in one batch.

Hypothesis (derandomized) draws the cases (tests.pricing_cases.priced_meter: tiers, flat fees,
included units, package size, tier block sizes, rounding up/down, flat_fee_from_zero, min/max
per charge, prorate with random days in force). All plans are saved at once, the pricing models are built once, and ONE query runs
the dbt macro over a scratch table holding every case.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

from hypothesis import strategies as st
from sqlalchemy import text

from billing.catalog import Catalog, Plan, load_catalog
from billing.catalog_store import save_catalog
from billing.money import MINOR_UNITS, to_minor
from billing.rating import prorated, rate_meter
from meterline.core.dbt_runner import dbt_command
from tests.pricing_cases import (
    HAND_WORKED,
    PRORATED_HAND_WORKED,
    draw_examples,
    month_in_force,
    priced_meter,
)

CASES = 2000
CURRENCIES = ("USD", "EUR", "JPY", "BHD")  # case i is rated in CURRENCIES[i % 4]
RATE_ALL_CASES = """
select c.case_id,
    {{ to_minor_units(
        rated_amount('c.plan_id', "'api_calls'", 'c.quantity', '1', 'c.days', 'c.days_in_month'),
        'c.minor_unit',
    ) }} as amount
from public.rating_cases as c
"""


def compile_rating_query(database_url: str, target: Path) -> str:
    """The macro over the scratch table, compiled by dbt (independent of the data)."""
    compiled = dbt_command(
        database_url, "compile", "--inline", RATE_ALL_CASES, "--output", "json",
        "--log-format", "json", target_path=target,
    )  # fmt: skip
    return next(
        json.loads(line)["data"]["compiled"]
        for line in compiled.stdout.splitlines()
        if '"compiled"' in line
    )


def rate_in_sql(engine, database_url: str, batch: list, target: Path, query) -> dict[int, int]:
    """Save the batch's plans, build the pricing models, run the compiled macro (``query``, a
    future) once over all cases."""
    plans = {
        f"rp{i:04d}": Plan(f"rp{i:04d}", f"Plan {i}", Decimal(0), "USD", meters={"api_calls": pm})
        for i, (pm, *_) in enumerate(batch)
    }
    catalog = Catalog(currency="USD", meters=load_catalog().meters, plans=plans)
    assert set(save_catalog(engine, catalog).new_versions.values()) == {1}  # version 1 of each
    with engine.begin() as conn:
        conn.execute(
            text(
                "create table public.rating_cases"
                " (case_id int primary key, plan_id text, quantity numeric, minor_unit int,"
                " days int, days_in_month int)"
            )
        )
        conn.execute(
            text("insert into public.rating_cases values (:i, :p, :q, :m, :d, :dm)"),
            [
                {"i": i, "p": f"rp{i:04d}", "q": q, "m": MINOR_UNITS[cur], "d": d, "dm": dm}
                for i, (_, q, cur, d, dm) in enumerate(batch)
            ],
        )
    dbt_command(
        database_url, "run", "--select", "+int_plan_meters_priced", "+int_price_tiers_ordered",
        target_path=target,
    )  # fmt: skip
    with engine.connect() as conn:
        return {row.case_id: int(row.amount) for row in conn.execute(text(query.result()))}


def test_every_pricing_rule_rates_the_same_in_python_and_sql(db, test_services, tmp_path_factory):
    url = test_services.database_url
    with ThreadPoolExecutor(1) as pool:  # dbt compiles while hypothesis draws and dbt runs
        query = pool.submit(compile_rating_query, url, tmp_path_factory.mktemp("compile"))
        drawn = draw_examples(st.tuples(priced_meter(), month_in_force()), CASES)
        assert len(drawn) >= 2000
        batch = [
            (pm, q, CURRENCIES[i % 4], days, in_month)
            for i, ((pm, q), (days, in_month)) in enumerate(drawn)
        ] + [(pm, q, currency, 1, 1) for _, pm, q, currency, _ in HAND_WORKED]
        batch += [case[1:6] for case in PRORATED_HAND_WORKED]
        target = tmp_path_factory.mktemp("dbt")
        sql = rate_in_sql(db, url, batch, target, query)
    mismatches = []
    exercised: Counter[str] = Counter()
    for i, (pm, quantity, currency, days, in_month) in enumerate(batch):
        expected = to_minor(rate_meter(prorated(pm, days, in_month), quantity), currency)
        if expected:
            exercised[pm.pricing] += 1
            exercised["blocks"] += any(t.block_size for t in pm.tiers)
            exercised["rounding down"] += pm.rounding == "down"
            exercised["from zero at 0"] += pm.flat_fee_from_zero and quantity <= pm.included
            exercised["min applied"] += bool(pm.min_amount) and expected == to_minor(
                pm.min_amount, currency
            )
            exercised["prorated"] += pm.prorate and days < in_month
            exercised["max applied"] += pm.max_amount is not None and expected == to_minor(
                pm.max_amount, currency
            )
        if sql.get(i) != expected:
            mismatches.append((i, quantity, expected, sql.get(i), pm))
    # not vacuous: every model and every rule produced many charged cases
    assert all(exercised[rule] >= 20 for rule in (
        "graduated", "volume", "package", "flat", "blocks", "rounding down",
        "from zero at 0", "min applied", "max applied", "prorated",
    )), exercised  # fmt: skip
    assert not mismatches, f"{len(mismatches)} of {len(batch)} cases differ: {mismatches[:3]}"
    # the hand-worked cases (some from Stripe's and Lago's docs) give their worked amount in SQL
    worked = HAND_WORKED + PRORATED_HAND_WORKED
    assert {name: sql[len(drawn) + k] for k, (name, *_) in enumerate(worked)} == {
        name: expected for name, *_, expected in worked
    }
