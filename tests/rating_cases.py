"""Random months of usage for the rating parity tests (Python rating == dbt SQL): each case is
one tenant's September 2026 on one plan version, or with one or two plan changes, every pricing
rule drawn (tests.pricing_cases). ``write_cases`` puts a batch into the database (catalog
versions, tenants, subscriptions, events) for ONE dbt build; ``expected_lines`` rates a case
with billing.rating."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import strategies as st
from sqlalchemy import text

from billing.catalog import Catalog, Plan, load_catalog
from billing.catalog_store import save_catalog
from billing.rating import PlanSpan, plan_segments, rate_period
from meterline.core.dbt_runner import dbt_build
from tests.pricing_cases import draw_examples, money, percentage_meter, priced_meter

MONTH = date(2026, 9, 1)
JAN = datetime(2026, 1, 1, tzinfo=UTC)
SEPT_1 = datetime(2026, 9, 1, tzinfo=UTC)
SEPT_15 = datetime(2026, 9, 15, 12, tzinfo=UTC)
MONTH_SECONDS = 30 * 86_400
D = Decimal


@dataclass(frozen=True)
class Case:
    """One tenant's month. ``versions`` are versions 1, 2... of its plan 'p'; ``other`` is a
    second plan 'q' (version 1); ``terms`` are (plan 'p'|'q', version, start, end) in time
    order; ``events`` are the month's (instant, value) of api_calls."""

    currency: str
    versions: tuple[Plan, ...]
    other: Plan | None
    terms: tuple[tuple[str, int, datetime, datetime | None], ...]
    events: tuple[tuple[datetime, Decimal], ...]


@st.composite
def plan_version(draw, currency: str) -> tuple[Plan, Decimal]:
    """A plan (random base fee, invoice floor/cap) with one priced meter, and a quantity."""
    meter, quantity = draw(priced_meter())
    if draw(st.integers(0, 5)) == 0:  # a sixth: percentage pricing on the month's events
        meter, values = draw(percentage_meter())
        quantity = sum(values, D(0))
    fee = draw(st.one_of(st.just(D(0)), money))
    commitment = draw(st.one_of(st.none(), st.none(), money.map(lambda m: m * 4)))
    cap = draw(st.one_of(st.none(), st.none(), money.map(lambda m: m * 40)))
    if commitment is not None and cap is not None and commitment > cap:
        commitment, cap = cap, commitment
    plan = Plan(
        "p", "Plan", fee, currency, meters={"api_calls": meter},
        minimum_commitment=commitment, maximum_spend=cap,
    )  # fmt: skip
    return plan, quantity


@st.composite
def one_plan_case(draw) -> Case:
    """All month on one plan, or starting / ending at a random instant of the month."""
    currency = draw(st.sampled_from(["USD", "EUR", "GBP", "JPY", "NGN"]))
    plan, quantity = draw(plan_version(currency))
    meter = plan.meters["api_calls"]
    if meter.pricing == "percentage":
        values = draw(percentage_meter())[1]
    else:
        values = [quantity] if quantity > 0 else []
    instant = SEPT_1 + timedelta(days=draw(st.integers(1, 29)), hours=draw(st.integers(0, 23)))
    start, end = draw(st.sampled_from([(JAN, None), (instant, None), (JAN, instant)]))
    events = tuple((SEPT_15 + timedelta(seconds=k), v) for k, v in enumerate(values))
    return Case(currency, (plan,), None, (("p", 1, start, end),), events)


# plan versions of the segments, in time order: upgrades and downgrades between versions of a
# plan and to another plan, and a return to a version already used in the month
SEQUENCES = [
    (("p", 1), ("p", 2)),
    (("p", 1), ("q", 1)),
    (("p", 2), ("p", 1)),
    (("p", 1), ("q", 1), ("p", 2)),
    (("p", 1), ("q", 1), ("p", 1)),
    (("q", 1), ("p", 2), ("p", 1)),
]


@st.composite
def plan_change_case(draw) -> Case:
    """One or two plan changes at random seconds of the month (2 or 3 segments)."""
    currency = draw(st.sampled_from(["USD", "EUR", "GBP", "JPY", "NGN"]))
    first, q1 = draw(plan_version(currency))
    second, q2 = draw(plan_version(currency))
    other, q3 = draw(plan_version(currency))
    second = replace(second, name="Plan v2")  # a new version even when the prices are equal
    other = replace(other, name="Other")
    sequence = draw(st.sampled_from(SEQUENCES))
    hours = sorted(draw(st.sets(st.integers(1, 718), min_size=len(sequence) - 1, max_size=2)))
    changes = [h * 3600 + draw(st.integers(0, 1799)) for h in hours[: len(sequence) - 1]]
    instants = [SEPT_1 + timedelta(seconds=s) for s in changes]
    start = draw(st.sampled_from([JAN, SEPT_1 + timedelta(seconds=draw(st.integers(0, 3599)))]))
    last_end = draw(st.sampled_from([None, None, SEPT_1 + timedelta(days=30, seconds=-1)]))
    gap = draw(st.sampled_from([0, 0, 0, 1800]))  # a cancellation 30 minutes before a change
    bounds = [start, *instants, last_end]
    terms = tuple(
        (plan, version, bounds[k], None if bounds[k + 1] is None else
            bounds[k + 1] - timedelta(seconds=gap if k + 1 < len(sequence) else 0))
        for k, (plan, version) in enumerate(sequence)
    )  # fmt: skip
    quantities = [q for q in (q1, q2, q3) if q > 0] or [D(0)]
    offsets = draw(st.sets(st.integers(0, MONTH_SECONDS - 1), min_size=0, max_size=5))
    events = tuple(
        (SEPT_1 + timedelta(seconds=s), draw(st.sampled_from(quantities)) or D(1))
        for s in sorted(offsets)
    )
    return Case(currency, (first, second), other, terms, events)


@st.composite
def cases(draw) -> Case:
    return draw(plan_change_case() if draw(st.booleans()) else one_plan_case())


def ids(i: int) -> tuple[str, str, str]:
    return f"xt{i:04d}", f"xp{i:04d}", f"xq{i:04d}"


def plan_of(case: Case, i: int, which: str, version: int) -> Plan:
    _, p, q = ids(i)
    if which == "q":
        return replace(case.other, plan_id=q, name=f"Other {i}")
    return replace(
        case.versions[version - 1], plan_id=p, name=f"Plan {i}" + (" B" if version == 2 else "")
    )


def write_cases(engine, batch: list[Case]) -> None:
    base = load_catalog()
    for version in (1, 2):  # version 1 of every plan, then version 2 where a case has one
        plans = {
            plan.plan_id: plan
            for i, case in enumerate(batch)
            if len(case.versions) >= version
            for plan in [plan_of(case, i, "p", version)]
            + ([plan_of(case, i, "q", 1)] if case.other is not None and version == 1 else [])
        }
        load = save_catalog(engine, Catalog(currency="USD", meters=base.meters, plans=plans))
        assert set(load.new_versions.values()) == {version}
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into meterline.tenants (tenant_id, name, currency, created_at)"
                " values (:t, :t, :c, :s)"
            ),
            [{"t": ids(i)[0], "c": case.currency, "s": JAN} for i, case in enumerate(batch)],
        )
        conn.execute(
            text(
                "insert into meterline.subscriptions"
                " (tenant_id, plan_id, plan_version, effective_from, effective_to)"
                " values (:t, :p, :v, :s, :e)"
            ),
            [
                {
                    "t": ids(i)[0],
                    "p": ids(i)[1 if which == "p" else 2],
                    "v": version,
                    "s": start,
                    "e": end,
                }
                for i, case in enumerate(batch)
                for which, version, start, end in case.terms
            ],
        )
        conn.execute(
            text(
                """
                insert into raw.usage_events (tenant_id, event_id, meter, value, occurred_at, received_at)
                values (:t, :e, 'api_calls', :v, :at, :at)
                """
            ),
            [
                {"t": ids(i)[0], "e": f"ev{i}-{k}", "v": value, "at": at}
                for i, case in enumerate(batch)
                for k, (at, value) in enumerate(case.events)
            ],
        )


def expected_lines(case: Case, i: int):
    """The case's lines by billing.rating: the month's usage, or each segment's."""
    spans = [
        PlanSpan(plan_of(case, i, which, version), start, end, version)
        for which, version, start, end in case.terms
    ]
    segments = plan_segments(spans, MONTH)
    values = [value for _, value in case.events]
    usage = {"api_calls": sum(values, D(0))} if values else {}
    in_segment = [[v for at, v in case.events if segment.contains(at)] for segment in segments]
    return segments, rate_period(
        spans, usage, MONTH, case.currency, events={"api_calls": values},
        segment_usage=[{"api_calls": sum(v, D(0))} if v else {} for v in in_segment],
        segment_events=[{"api_calls": v} for v in in_segment],
    )  # fmt: skip


def dbt_build_lines(database_url: str, tmp_path: Path, *, full_refresh: bool = True) -> None:
    """Build analytics.fct_invoice_lines (and what it reads), without tests, as of November."""
    dbt_build(
        database_url, "--select", "+fct_invoice_lines",
        "--exclude-resource-type", "test", "unit_test", *(["--full-refresh"] if full_refresh else []),
        vars={"as_of": "2026-11-01T00:00:00Z"}, target_path=tmp_path / "target",
    )  # fmt: skip


def draw_cases(n: int) -> list[Case]:
    """``n`` derandomized hypothesis examples of ``cases()`` (batched for one dbt build)."""
    return draw_examples(cases(), n)
