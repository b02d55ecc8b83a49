"""Adjustments == Python rating of the whole month, to the cent, on 300 random months.

Each case of tests.rating_cases (one tenant's September on one plan version or with one or two
plan changes, every pricing rule drawn) is rated by dbt and recorded as September's invoice:
finalized in Stripe (``open``), or ``skipped`` (below the minimum: its lines are carried whole).
Then late usage for September arrives: more events at random seconds of the month and
corrections that cancel an event already billed (negative values). After an incremental dbt
build, billing.invoicing.adjustments puts October's prior-period lines together from the marts.

For every case and every line, what September billed plus October's adjustment of that line
must equal billing.rating of all of September's events, the on-time and the late ones: tiers,
floors, caps and segments re-rated on the whole month, never on the late events alone.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from billing.invoicing.adjustments import compute_adjustments
from tests.rating_cases import (
    MONTH,
    MONTH_SECONDS,
    SEPT_1,
    Case,
    dbt_build_lines,
    draw_cases,
    expected_lines,
    ids,
    write_cases,
)

CASES = 300
OCTOBER = date(2026, 10, 1)
LATE = datetime(2026, 10, 5, 9, tzinfo=UTC)
D = Decimal


def late_events(case: Case, i: int) -> tuple[tuple[datetime, Decimal], ...]:
    """Zero to three late events of ``case``: more usage at a random second of September, or a
    correction cancelling one of its events (same instant, negated value)."""
    rnd = random.Random(i)
    late = []
    uncorrected = list(case.events)  # each event is cancelled at most once
    for _ in range(rnd.randint(0, 3)):
        if uncorrected and rnd.random() < 0.4:
            at, value = uncorrected.pop(rnd.randrange(len(uncorrected)))
            late.append((at, -value))
        else:
            value = rnd.choice(case.events)[1] if case.events else D(rnd.randint(1, 5000))
            late.append((SEPT_1 + timedelta(seconds=rnd.randrange(MONTH_SECONDS)), value))
    return tuple(late)


def in_event_order(case: Case, late: tuple, i: int) -> tuple[tuple[datetime, Decimal], ...]:
    """On-time and late events in the order the rating numbers them (free events, per-event
    fees): by occurred_at, then event id, as int_usage_months_rated does. A correction sits
    at the instant of the event it cancels, so only the id orders the two."""
    keyed = [(at, f"ev{i}-{k}", v) for k, (at, v) in enumerate(case.events)]
    keyed += [(at, f"late{i}-{k}", v) for k, (at, v) in enumerate(late)]
    return tuple((at, v) for at, _, v in sorted(keyed))


def is_skipped(i: int) -> bool:
    return i % 3 == 0


def record_september(conn, batch: list[Case]) -> dict[str, dict[str, int]]:
    """September's invoice of every case, its lines copied from the marts; returns them."""
    rows = conn.execute(
        text(
            """
            select tenant_id, line_key, meter, description, quantity, amount,
                   upper(trim(currency)) as currency
            from analytics.fct_invoice_lines where month::date = :m and tenant_id like 'xt%'
            """
        ),
        {"m": MONTH},
    ).all()
    conn.execute(
        text(
            "insert into meterline.invoices (tenant_id, period, stripe_invoice_id, status,"
            " currency, finalized_at) values (:t, :p, :s, :status, :c, :f)"
        ),
        [
            {
                "t": ids(i)[0], "p": MONTH, "c": case.currency,
                "s": None if is_skipped(i) else f"in_parity_{i:04d}",
                "status": "skipped" if is_skipped(i) else "open",
                "f": None if is_skipped(i) else datetime(2026, 10, 2, tzinfo=UTC),
            }
            for i, case in enumerate(batch)
        ],
    )  # fmt: skip
    if rows:
        conn.execute(
            text(
                "insert into meterline.invoice_lines (tenant_id, period, line_key, meter,"
                " description, quantity, amount, currency)"
                " values (:tenant_id, :p, :line_key, :meter, :description, :quantity, :amount,"
                " :currency)"
            ),
            [{**row._asdict(), "p": MONTH} for row in rows],
        )
    billed: dict[str, dict[str, int]] = {}
    for row in rows:
        billed.setdefault(row.tenant_id, {})[row.line_key] = int(row.amount)
    return billed


def write_late(conn, batch: list[Case], late: list[tuple]) -> None:
    rows = [
        {"t": ids(i)[0], "e": f"late{i}-{k}", "v": value, "at": at, "r": LATE}
        for i in range(len(batch))
        for k, (at, value) in enumerate(late[i])
    ]
    conn.execute(
        text(
            "insert into raw.usage_events (tenant_id, event_id, meter, value, occurred_at,"
            " received_at) values (:t, :e, 'api_calls', :v, :at, :r)"
        ),
        rows,
    )


def test_billed_plus_adjustments_equal_the_rating_of_the_whole_month(
    db, test_services, tmp_path_factory
):
    batch = draw_cases(CASES)
    write_cases(db, batch)
    dbt_build_lines(test_services.database_url, tmp_path_factory.mktemp("dbt"))
    with db.begin() as conn:
        september = record_september(conn, batch)
        late = [late_events(case, i) for i, case in enumerate(batch)]
        write_late(conn, batch, late)
    dbt_build_lines(test_services.database_url, tmp_path_factory.mktemp("dbt"), full_refresh=False)

    seen: Counter[str] = Counter()
    mismatches = []
    with db.connect() as conn:
        for i, case in enumerate(batch):
            tenant = ids(i)[0]
            _, lines = expected_lines(replace(case, events=in_event_order(case, late[i], i)), i)
            whole_month = {line.line_key: line.amount for line in lines}
            billed = {} if is_skipped(i) else september.get(tenant, {})
            adjustments = compute_adjustments(conn, tenant, OCTOBER, case.currency)
            adjusted = {a.line_key.removeprefix("adjustment:2026-09:"): a for a in adjustments}
            assert all(a.line_key.startswith("adjustment:2026-09:") for a in adjustments)
            assert all(a.currency == case.currency for a in adjustments)
            got = {
                key: billed.get(key, 0) + (adjusted[key].amount if key in adjusted else 0)
                for key in set(billed) | set(adjusted) | set(whole_month)
            }
            if {k: v for k, v in got.items() if v} != {k: v for k, v in whole_month.items() if v}:
                mismatches.append((i, whole_month, billed, adjusted, late[i], case))
            _count(seen, i, late[i], adjusted)
    # not vacuous: late usage and corrections moved money both ways, on skipped and on
    # finalized months, on single-plan and on split (segment) lines
    for kind in (
        "raised",
        "lowered",
        "carried whole",
        "after a correction",
        "segment line",
        "floor or cap",
        "no late usage, nothing to adjust",
    ):
        assert seen[kind] >= 1, (kind, seen)
    assert seen["raised"] + seen["lowered"] >= 50, seen
    assert not mismatches, f"{len(mismatches)} of {len(batch)} differ, first: {mismatches[:2]}"


def _count(seen: Counter[str], i: int, late: tuple, adjusted: dict) -> None:
    amounts = [a.amount for a in adjusted.values()]
    seen["raised"] += any(a > 0 for a in amounts) and not is_skipped(i)
    seen["lowered"] += any(a < 0 for a in amounts)
    seen["carried whole"] += is_skipped(i) and bool(amounts)
    seen["after a correction"] += any(v < 0 for _, v in late) and bool(amounts)
    seen["segment line"] += any("@" in key for key in adjusted)
    seen["floor or cap"] += any(k in ("minimum_commitment", "spend_cap") for k in adjusted)
    seen["no late usage, nothing to adjust"] += not late and not is_skipped(i) and not amounts
