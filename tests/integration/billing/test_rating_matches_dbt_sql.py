"""Python rating == dbt SQL rating, to the cent, on >= 500 random plans and usages.

Hypothesis (derandomized) draws 600 cases, collected into one batch: each is a plan with a
random base fee, currency, minimum commitment and spend cap and one priced meter using every
pricing rule (tests.pricing_cases.priced_meter: graduated, volume, package, flat or none; tiers, flat
fees, included units, block sizes, rounding, flat_fee_from_zero, min/max per charge) and one
tenant with a random month of usage (none at all for some), biased towards tier boundaries,
subscribed all month or from / until a random instant of it (prorated base fee and meters);
a sixth of the meters use percentage pricing on up to 6 events of the month. All cases are written at once, ONE dbt build produces analytics.fct_invoice_lines,
and every case is compared with billing.rating.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import strategies as st
from sqlalchemy import text

from billing.catalog import Catalog, Plan, PlanMeter, Tier, load_catalog
from billing.catalog_store import save_catalog
from billing.rating import PlanSpan, rate_period
from meterline.core.dbt_runner import dbt_build
from tests.pricing_cases import (
    PERCENTAGE_HAND_WORKED,
    draw_examples,
    money,
    percentage_meter,
    priced_meter,
)

ROOT = Path(__file__).resolve().parents[3]
DBT_PROJECT = ROOT / "dbt_project"
CASES = 600
MONTH = date(2026, 9, 1)
JAN = datetime(2026, 1, 1, tzinfo=UTC)
SEPT_15 = datetime(2026, 9, 15, 12, tzinfo=UTC)
D = Decimal


@st.composite
def cases(draw):
    """A plan (random base fee, currency, invoice floor/cap) with one priced meter, and usage."""
    meter, quantity = draw(priced_meter())
    values = [quantity] if quantity > 0 else []
    if draw(st.integers(0, 5)) == 0:  # a sixth: percentage pricing on the month's events
        meter, values = draw(percentage_meter())
        quantity = sum(values, D(0))
    fee = draw(st.one_of(st.just(D(0)), money))
    commitment = draw(st.one_of(st.none(), st.none(), money.map(lambda m: m * 4)))
    cap = draw(st.one_of(st.none(), st.none(), money.map(lambda m: m * 40)))
    if commitment is not None and cap is not None and commitment > cap:
        commitment, cap = cap, commitment
    currency = draw(st.sampled_from(["USD", "EUR", "GBP", "JPY", "NGN"]))
    # the subscription: all month, or starting / ending at a random instant of the month
    instant = datetime(2026, 9, 1, tzinfo=UTC) + timedelta(
        days=draw(st.integers(1, 29)), hours=draw(st.integers(0, 23))
    )
    span = draw(st.sampled_from([(JAN, None), (instant, None), (JAN, instant)]))
    return meter, fee, currency, quantity, commitment, cap, span, values


def _write_cases(engine, batch) -> None:
    base = load_catalog()
    plans = {plan.plan_id: plan for plan in _plans(batch)}
    catalog = Catalog(currency="USD", meters=base.meters, plans=plans)
    save_catalog(engine, catalog)  # pricing rules included, in the same transaction
    tenants = [{"t": f"xt{i:04d}", "c": case[2], "p": f"xp{i:04d}"} for i, case in enumerate(batch)]
    events = [
        {"t": f"xt{i:04d}", "e": f"ev{i}-{k}", "v": value, "at": SEPT_15 + timedelta(seconds=k)}
        for i, case in enumerate(batch)
        for k, value in enumerate(case[7])
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into meterline.tenants (tenant_id, name, currency, created_at) values (:t, :t, :c, :s)"
            ),
            [{**t, "s": JAN} for t in tenants],
        )
        conn.execute(
            text(
                "insert into meterline.subscriptions (tenant_id, plan_id, effective_from, effective_to)"
                " values (:t, :p, :s, :e)"
            ),
            [
                {**t, "s": case[6][0], "e": case[6][1]}
                for t, case in zip(tenants, batch, strict=True)
            ],
        )
        conn.execute(
            text(
                """
                insert into raw.usage_events (tenant_id, event_id, meter, value, occurred_at, received_at)
                values (:t, :e, 'api_calls', :v, :at, :at)
                """
            ),
            events,
        )


# https://github.com/getlago/lago-api/pull/1787 (minimum commitment scenario): a $50 plan with
# $10 units and a $100 commitment; 3 units -> "$50 + 3 * $10 = $80 + $20 (true-up fee) = $100".
LAGO_COMMITMENT = (
    PlanMeter("api_calls", "graduated", tiers=(Tier(None, D(10)),)),
    D(50), "USD", D(3), D(100), None, (JAN, None), [D(3)],
)  # fmt: skip
LAGO_LINES = {"base_fee": 5000, "usage:api_calls": 3000, "minimum_commitment": 2000}


def _plans(batch) -> list[Plan]:
    return [
        Plan(
            f"xp{i:04d}", f"Plan {i}", fee, cur, meters={"api_calls": pm},
            minimum_commitment=commitment, maximum_spend=cap,
        )
        for i, (pm, fee, cur, _, commitment, cap, *_) in enumerate(batch)
    ]  # fmt: skip


def _dbt_build(database_url: str, tmp_path: Path) -> None:
    dbt_build(
        database_url, "--select", "+fct_invoice_lines",
        "--exclude-resource-type", "test", "unit_test", "--full-refresh",
        vars={"as_of": "2026-11-01T00:00:00Z"}, target_path=tmp_path / "target",
    )  # fmt: skip


def draw_cases(n: int) -> list:
    """``n`` derandomized hypothesis examples of ``cases()`` (batched for one dbt build)."""
    return draw_examples(cases(), n)


def test_python_rating_equals_dbt_sql(db, test_services, tmp_path_factory):
    # a missing model fails (it used to skip silently, hiding a rename)
    assert any((DBT_PROJECT / "models").rglob("fct_invoice_lines.sql")), (
        "dbt_project/models has no fct_invoice_lines model: nothing to compare the Python rating with"
    )
    batch = draw_cases(CASES)
    assert len(batch) >= 500
    batch.append(LAGO_COMMITMENT)
    worked_from = len(batch)
    batch += [
        (pm, D(0), currency, sum(values, D(0)), None, None, (JAN, None), values)
        for _, pm, values, currency, _ in PERCENTAGE_HAND_WORKED
    ]
    _write_cases(db, batch)
    _dbt_build(test_services.database_url, tmp_path_factory.mktemp("dbt"))
    with db.connect() as conn:
        rows = conn.execute(
            text(
                """
                select tenant_id, line_key, amount, trim(currency) as currency
                from analytics.fct_invoice_lines
                where month::date = :m and tenant_id like 'xt%'
                """
            ),
            {"m": MONTH},
        ).all()
    sql: dict[str, dict[str, int]] = {}
    for row in rows:
        sql.setdefault(row.tenant_id, {})[row.line_key] = int(row.amount)
    mismatches = []
    charged: Counter[str] = Counter()
    for i, plan in enumerate(_plans(batch)):
        pm, _, currency, quantity, _, _, (start, end), values = batch[i]
        usage = {"api_calls": quantity} if values else {}
        lines = rate_period(
            [PlanSpan(plan, start, end)], usage, MONTH, currency, events={"api_calls": values}
        )
        expected = {line.line_key: line.amount for line in lines}
        charged["prorated"] += pm.prorate and (start, end) != (JAN, None) and quantity > 0
        if "usage:api_calls" in expected:
            charged[pm.pricing] += 1
            charged["without usage"] += quantity == 0
        charged.update(k for k in expected if k in ("minimum_commitment", "spend_cap"))
        got = sql.get(f"xt{i:04d}", {})
        if got != expected:
            mismatches.append((i, pm.pricing, quantity, currency, expected, got, pm))
    # the comparison is not vacuous: every priced model produced many charged lines
    assert all(
        charged[m] >= 20
        for m in (
            "graduated",
            "volume",
            "package",
            "flat",
            "percentage",
            "without usage",
            "prorated",
        )
    ), charged
    assert charged["minimum_commitment"] >= 20 and charged["spend_cap"] >= 20, charged
    assert sql[f"xt{worked_from - 1:04d}"] == LAGO_LINES, "Lago's commitment example"
    assert {
        name: sql[f"xt{worked_from + k:04d}"] for k, (name, *_) in enumerate(PERCENTAGE_HAND_WORKED)
    } == {name: {"usage:api_calls": expected} for name, *_, expected in PERCENTAGE_HAND_WORKED}
    assert not mismatches, (
        f"{len(mismatches)} of {len(batch)} cases differ, first: {mismatches[:3]}"
    )
