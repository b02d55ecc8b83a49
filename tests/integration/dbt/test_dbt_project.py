"""The dbt project against real Postgres: incremental rollups, rating to the cent, MRR, docs.

dbt builds cost seconds each, so every test shares a few builds across many assertions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import text

from meterline.core.dbt_runner import DbtError, dbt_build, dbt_command
from meterline.core.tenants import cancel_tenant, create_tenant, set_plan

MARTS = (
    "analytics.fct_usage_hourly",
    "analytics.fct_usage_daily",
    "analytics.fct_usage_monthly",
    "analytics.fct_quota_status",
    "analytics.fct_tenant_overview",
    "analytics.fct_invoice_lines",
    "analytics.fct_invoices",
    "analytics.fct_cost_allocation",
    "analytics.fct_mrr",
    "analytics.fct_mrr_summary",
    "analytics_intermediate.int_usage_values_deduplicated",
)
# Intermediate builds skip the data tests (the final full build runs them all): saves seconds.
MODELS_ONLY = ("--resource-type", "seed", "--resource-type", "model")


@pytest.fixture(scope="module")
def dbt_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private dbt target dir (partial parsing is reused between the builds of this module)."""
    return tmp_path_factory.mktemp("dbt_target")


def month_start(moment: datetime, months_back: int = 0) -> datetime:
    year, month = moment.year, moment.month - months_back
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 1, tzinfo=UTC)


class Events:
    """Collects usage events and inserts them straight into raw.usage_events (a 'load')."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.rows: list[dict] = []
        self.count = 0

    def add(self, tenant, meter, value, at, user=None) -> None:
        self.rows.append(
            {
                "t": tenant,
                "id": f"{self.prefix}{self.count}",
                "m": meter,
                "v": Decimal(str(value)),
                "at": at,
                "d": json.dumps({"user_id": user} if user else {}),
            }
        )
        self.count += 1

    def load(self, engine) -> int:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "insert into raw.usage_events "
                    "(tenant_id, event_id, meter, value, occurred_at, dimensions, received_at) "
                    "values (:t, :id, :m, :v, :at, cast(:d as jsonb), :at)"
                ),
                self.rows,
            )
        count, self.rows = len(self.rows), []
        return count


def snapshot(engine) -> dict[str, list[tuple]]:
    out = {}
    with engine.connect() as conn:
        for table in MARTS:
            rows = conn.execute(text(f"select * from {table}")).all()
            out[table] = sorted((tuple(r) for r in rows), key=repr)
    return out


def rollup(engine, table: str, period: str, tenant: str, meter: str, start) -> tuple | None:
    with engine.connect() as conn:
        return conn.execute(
            text(
                f"select quantity, event_count from {table} "
                f"where tenant_id = :t and meter = :m and {period} = :p"
            ),
            {"t": tenant, "m": meter, "p": start},
        ).first()


# Mid-month on purpose: the events sit 2 to 8 days before now and the test counts one month's
# users, so on the first days of a real month they split across two months (it failed on
# 2026-12-03). The clock ticks from this instant; dbt gets it through METERLINE_AS_OF.
@time_machine.travel(datetime(2027, 5, 17, 12, 0, tzinfo=UTC), tick=True)
def test_incremental_runs_equal_full_refresh_and_pick_up_late_and_imported_events(db, dbt_target):
    url = db.url.render_as_string(hide_password=False)
    now = datetime.now(UTC).replace(microsecond=0)
    last_month = month_start(now, 1)
    create_tenant(db, "acme", "starter", at=month_start(now, 5))
    set_plan(db, "acme", "pro", at=last_month + timedelta(days=10))
    create_tenant(db, "payg1", "payg", at=month_start(now, 5))
    create_tenant(db, "gone", "pro", at=month_start(now, 5))
    cancel_tenant(db, "gone", at=month_start(now, 3) + timedelta(days=3))
    with db.begin() as conn:
        conn.execute(
            text(
                "insert into raw.infra_costs (month, cost_pool, driver_meter, amount) values "
                "(:m, 'compute', 'api_calls', 1234.56), (:m, 'support', null, 99.99)"
            ),
            {"m": last_month.date()},
        )

    ev = Events("a")
    for i in range(48):
        at = now - timedelta(days=6, hours=i)
        ev.add("acme", "api_calls", 1000 + i, at)
        ev.add("acme", "active_users", 1, at, user=f"u{i % 7}")
        ev.add("payg1", "storage_gb", 10 + i % 13, at)
        ev.add("payg1", "compute_seconds", 300, at)
    for i in range(30):
        ev.add("payg1", "api_calls", 5000, last_month + timedelta(days=i % 27, hours=i))
        ev.add("gone", "api_calls", 10, month_start(now, 3) + timedelta(hours=i))
    ev.load(db)
    dbt_build(url, "--full-refresh", *MODELS_ONLY, target_path=dbt_target)

    # 1. new events plus a late event from two days ago, loaded after the build
    two_days_ago = (now - timedelta(days=2)).replace(minute=17, second=0)
    ev.add("acme", "api_calls", 777, two_days_ago)
    ev.add("acme", "active_users", 1, two_days_ago, user="u_late")
    for i in range(5):
        ev.add("acme", "api_calls", 1, now - timedelta(minutes=5 * i))
    ev.load(db)
    dbt_build(url, *MODELS_ONLY, target_path=dbt_target)  # data tests run in the final build

    hour = two_days_ago.replace(minute=0)
    assert rollup(db, "analytics.fct_usage_hourly", "hour", "acme", "api_calls", hour) == (777, 1)
    day_row = rollup(db, "analytics.fct_usage_daily", "day", "acme", "api_calls", hour.date())
    assert day_row is not None and day_row[0] >= 777
    with db.connect() as conn:
        raw_month_total = conn.execute(
            text(
                "select sum(value), count(*) from raw.usage_events where tenant_id = 'acme' "
                "and meter = 'api_calls' and date_trunc('month', occurred_at, 'UTC') = :s"
            ),
            {"s": month_start(hour)},
        ).first()
    monthly = rollup(
        db, "analytics.fct_usage_monthly", "month", "acme", "api_calls", month_start(hour).date()
    )
    assert monthly == tuple(raw_month_total)
    users = rollup(
        db, "analytics.fct_usage_monthly", "month", "acme", "active_users", month_start(hour).date()
    )
    assert users[0] == 8  # u0..u6 + u_late, an exact distinct count

    # 2. `meterline import` of a whole past month (loaded now), more new and late events
    imported_month = month_start(now, 2)
    for day in range(31):
        at = imported_month + timedelta(days=day, hours=3)
        if at >= month_start(now, 1):
            break
        ev.add("payg1", "api_calls", 1000, at)
        ev.add("payg1", "storage_gb", 40 + day, at)
    ev.add("acme", "api_calls", 5, now - timedelta(days=20))
    ev.add("payg1", "storage_gb", 999, last_month + timedelta(days=3))  # a new peak, late
    ev.add("acme", "api_calls", 2, now - timedelta(minutes=1))
    ev.load(db)
    dbt_build(url, *MODELS_ONLY, target_path=dbt_target)

    with db.connect() as conn:
        lines = {
            r.line_key: r.amount
            for r in conn.execute(
                text(
                    "select line_key, amount from analytics.fct_invoice_lines "
                    "where tenant_id = 'payg1' and month = :m"
                ),
                {"m": imported_month.date()},
            )
        }
    days = (month_start(now, 1) - imported_month).days
    calls = 1000 * days
    expected_calls = max(0, min(calls, 100_000) - 10_000) * Decimal("0.001") + max(
        0, calls - 100_000
    ) * Decimal("0.0005")
    peak = 40 + days - 1
    expected_storage = (min(peak, 100) - 5) * Decimal("0.25")
    assert lines == {
        "usage:api_calls": int((expected_calls * 100).to_integral_value()),
        "usage:storage_gb": int((expected_storage * 100).to_integral_value()),
    }
    peak_row = rollup(
        db, "analytics.fct_usage_monthly", "month", "payg1", "storage_gb", last_month.date()
    )
    assert peak_row[0] == 999

    # 3. an explicit hourly window (what a partitioned Dagster run passes), with a late event
    #    inside the lookback
    window_start = (now - timedelta(hours=3)).replace(minute=0, second=0)
    ev.add("acme", "api_calls", 11, window_start + timedelta(minutes=30))
    ev.add("acme", "api_calls", 13, window_start - timedelta(days=1))
    ev.load(db)
    # the last incremental build and the full refresh it is compared with run at one instant:
    # fct_tenant_overview projects the month from the time elapsed (a cent moved when the
    # two builds were seconds apart on a loaded machine)
    with time_machine.travel(datetime.now(UTC), tick=False):
        dbt_build(
            url,
            *MODELS_ONLY,
            vars={
                "min_date": window_start.isoformat(),
                "max_date": (window_start + timedelta(hours=1)).isoformat(),
            },
            target_path=dbt_target,
        )
        in_window = rollup(
            db, "analytics.fct_usage_hourly", "hour", "acme", "api_calls", window_start
        )
        assert in_window is not None and in_window[0] >= 11
        late = rollup(
            db,
            "analytics.fct_usage_hourly",
            "hour",
            "acme",
            "api_calls",
            window_start - timedelta(days=1),
        )
        assert late is not None and late[0] >= 13

        incremental = snapshot(db)
        dbt_build(url, "--full-refresh", target_path=dbt_target)
        full = snapshot(db)
    for table in MARTS:
        assert incremental[table] == full[table], f"{table} differs after incremental runs"
    assert len(full["analytics.fct_usage_hourly"]) > 100


def test_seed_pricing_mrr_bridge_allocation_and_docs(db, dbt_target):
    url = db.url.render_as_string(hide_password=False)
    now = datetime.now(UTC)
    month = month_start(now, 1)
    create_tenant(db, "big", "payg", at=month_start(now, 3))
    create_tenant(db, "small", "payg", at=month_start(now, 3))
    create_tenant(db, "t_new", "starter", at=month_start(now, 4))
    set_plan(db, "t_new", "pro", at=month_start(now, 3) + timedelta(days=9))
    set_plan(db, "t_new", "starter", at=month_start(now, 2))
    cancel_tenant(db, "t_new", at=month_start(now, 2) + timedelta(days=5))
    set_plan(db, "t_new", "enterprise", at=month + timedelta(days=2))
    create_tenant(db, "flat", "pro", at=month_start(now, 4))
    create_tenant(db, "down", "pro", at=month_start(now, 4))
    set_plan(db, "down", "starter", at=month_start(now, 2) + timedelta(days=1))
    # a plan change this month, halfway through the time elapsed so far
    moved_at = month_start(now) + (now - month_start(now)) / 2
    create_tenant(db, "mover", "payg", at=month_start(now, 3))
    set_plan(db, "mover", "pro", at=moved_at)
    ev = Events("s")
    ev.add("mover", "api_calls", 30_000, month_start(now))  # payg: 20,000 x $0.001 = $20
    ev.add("mover", "api_calls", 1_000, now - timedelta(seconds=1))  # pro: far below included
    for i in range(10):
        ev.add("big", "api_calls", 1_000_000, month + timedelta(hours=i))
    for value, h in ((50, 1), (150, 40), (120, 300)):
        ev.add("big", "storage_gb", value, month + timedelta(hours=h))
    ev.add("big", "compute_seconds", 4000, month + timedelta(days=2))
    ev.add("big", "compute_seconds", 6000, month + timedelta(days=9))
    ev.add("small", "api_calls", 10_000, month + timedelta(days=1))
    ev.add("small", "api_calls", 5, month + timedelta(days=20))
    ev.add("flat", "api_calls", 10, now - timedelta(hours=1))
    ev.load(db)
    with db.begin() as conn:
        conn.execute(
            text(
                "insert into raw.infra_costs (month, cost_pool, driver_meter, amount) values "
                "(:m, 'compute', 'api_calls', 1000.00), (:m, 'support', null, 100.01)"
            ),
            {"m": month.date()},
        )
    dbt_build(url, "--full-refresh", target_path=dbt_target)

    with db.connect() as conn:
        lines = {
            (r.tenant_id, r.line_key): (r.amount, r.currency, r.description)
            for r in conn.execute(
                text("select * from analytics.fct_invoice_lines where month = :m"),
                {"m": month.date()},
            )
        }
        invoices = {
            r.tenant_id: r.total_amount
            for r in conn.execute(
                text("select * from analytics.fct_invoices where month = :m"), {"m": month.date()}
            )
        }
        mrr = conn.execute(text("select * from analytics.fct_mrr")).all()
        summary = conn.execute(text("select * from analytics.fct_mrr_summary order by month")).all()
        allocation = conn.execute(
            text(
                "select cost_pool, sum(allocated_cost) from analytics.fct_cost_allocation "
                "group by cost_pool"
            )
        ).all()
        overview = {
            r.tenant_id: r
            for r in conn.execute(text("select * from analytics.fct_tenant_overview"))
        }

    # seed pricing of plan payg (acceptance): $2,340.00, $31.25, $32.00 and $0.01
    assert lines[("big", "usage:api_calls")] == (
        234000,
        "USD",
        "API calls: 10,000,000 calls",
    )
    assert lines[("big", "usage:storage_gb")][0] == 3125
    assert lines[("big", "usage:compute_seconds")][0] == 3200
    assert lines[("small", "usage:api_calls")][0] == 1
    assert invoices["big"] == 234000 + 3125 + 3200
    assert invoices["small"] == 1
    # plan change inside the month: enterprise from day 3, prorated by time on the plan
    days_in_month = (month_start(now) - month).days
    expected_base = Decimal(499) * (days_in_month - 2) / days_in_month
    assert lines[("t_new", "base_fee")][0] == int(
        (expected_base * 100).quantize(Decimal(1), rounding="ROUND_HALF_UP")
    )

    # MRR: every tenant-month has a category, the bridge closes every month
    categories = {(r.tenant_id, r.month): r.change_category for r in mrr}
    assert all(categories.values())
    assert set(categories.values()) >= {"new", "expansion", "contraction", "churn", "reactivation"}
    assert categories[("t_new", month.date())] == "reactivation"
    assert categories[("down", month_start(now, 2).date())] == "contraction"
    previous_ending = 0
    for row in summary:
        assert row.starting == previous_ending
        assert (
            row.starting + row.new + row.expansion + row.contraction + row.churn + row.reactivation
            == row.ending
        )
        previous_ending = row.ending
    assert summary[-1].month == month_start(now).date()

    # cost allocation sums to each pool to the cent
    assert dict(allocation) == {"compute": 100000, "support": 10001}

    assert overview["flat"].plan_id == "pro"
    assert overview["flat"].estimated_cost == 9900 and overview["flat"].currency == "USD"
    assert overview["t_new"].top_meter is not None
    # this month's projection after a plan change: the payg segment as rated ($20, not
    # extrapolated), the pro segment's calls extrapolated over its own time (still included)
    with db.connect() as conn:
        mover_base_fee = conn.execute(
            text(
                "select base_fee_amount from analytics.fct_invoices"
                " where tenant_id = 'mover' and month = :m"
            ),
            {"m": month_start(now).date()},
        ).scalar()
    assert overview["mover"].projected_cost == mover_base_fee + 2000
    assert overview["mover"].estimated_cost == mover_base_fee + 2000

    dbt_command(url, "docs", "generate", target_path=dbt_target)
    manifest = json.loads((dbt_target / "manifest.json").read_text())
    catalog = json.loads((dbt_target / "catalog.json").read_text())
    exposures = {e["name"] for e in manifest["exposures"].values()}
    assert {"usage_dashboard", "stripe_invoices", "invoice_reconciliation"} <= exposures
    assert "model.meterline.fct_invoice_lines" in catalog["nodes"]


INVOICE_CHECK = "assert_invoice_totals_match_independent_rating"
# A plan priced with every pricing model (and a 'last' and a 'count' meter), and a JPY plan.
EXTRA_CATALOG = """
insert into meterline.meters (meter, aggregation, unit) values
    ('gauge', 'last', 'units'), ('requests', 'count', 'requests');
insert into meterline.plans (plan_id, name, base_fee, currency) values
    ('mix', 'Mix', 49.99, 'USD'), ('yen', 'Yen', 3333, 'JPY');
insert into meterline.plan_meters (plan_id, meter, pricing_model, included_quantity, package_size)
values
    ('mix', 'api_calls', 'volume', 100, null),
    ('mix', 'bandwidth_gb', 'package', 0, 10),
    ('mix', 'compute_seconds', 'flat', 50, null),
    ('mix', 'storage_gb', 'graduated', 1, null),
    ('mix', 'gauge', 'graduated', 0, null),
    ('mix', 'requests', 'volume', 0, null),
    ('mix', 'active_users', 'package', 2, 3),
    ('yen', 'api_calls', 'graduated', 0, null);
insert into meterline.price_tiers (plan_id, meter, tier_index, up_to, unit_price, flat_fee) values
    ('mix', 'api_calls', 0, 1000, 0.01, 1.5),
    ('mix', 'api_calls', 1, null, 0.005, 2.25),
    ('mix', 'bandwidth_gb', 0, null, 1.25, 0),
    ('mix', 'compute_seconds', 0, null, 0, 7.77),
    ('mix', 'storage_gb', 0, 10, 0.333333, 0.5),
    ('mix', 'storage_gb', 1, null, 0.2, 1.005),
    ('mix', 'gauge', 0, 5, 0.015, 0),
    ('mix', 'gauge', 1, null, 0.0025, 0.1),
    ('mix', 'requests', 0, 3, 0.5, 0),
    ('mix', 'requests', 1, null, 0.25, 0.005),
    ('mix', 'active_users', 0, null, 2.5, 0),
    ('yen', 'api_calls', 0, 10, 0.5, 0),
    ('yen', 'api_calls', 1, null, 0.75, 3);
"""


def invoice_check_failures(engine, dbt_target: Path) -> set[tuple]:
    """The rows the invoice check returns, from the SQL dbt last compiled for it."""
    compiled = dbt_target / "compiled" / "meterline" / "tests" / "singular" / f"{INVOICE_CHECK}.sql"
    with engine.connect() as conn:
        rows = conn.execute(text(compiled.read_text())).mappings().all()
    return {
        (r["problem"], r["tenant_id"], r["month"], r["total_amount"], r["expected_total_amount"])
        for r in rows
    }


def test_invoice_check_recomputes_every_pricing_model_and_fails_on_corrupt_data(db, dbt_target):
    url = db.url.render_as_string(hide_password=False)
    now = datetime.now(UTC)
    month = month_start(now, 1)
    with db.begin() as conn:
        conn.execute(text(EXTRA_CATALOG))
    create_tenant(db, "mixer", "starter", at=month_start(now, 3))
    set_plan(db, "mixer", "mix", at=month + timedelta(days=10, hours=13))  # prorated base fee
    # payg -> pro in the middle of the month: usage before and after the change is rated on its
    # own plan, each from zero (and the check recomputes it independently)
    change = month + timedelta(days=15, hours=6, minutes=30, seconds=15)
    create_tenant(db, "switcher", "payg", at=month_start(now, 3))
    set_plan(db, "switcher", "pro", at=change)
    create_tenant(db, "jp", "yen", currency="JPY", at=month_start(now, 2) + timedelta(days=17))
    create_tenant(db, "big", "payg", at=month_start(now, 3))
    cancel_tenant(db, "big", at=month + timedelta(days=20))  # usage rated on its last plan
    ev = Events("i")
    for i in range(12):
        at = month + timedelta(days=i, hours=i)
        ev.add("jp", "api_calls", Decimal("102.9"), at)
        at = month + timedelta(days=11 + i, hours=i)  # on mix (from day 11, 13:00)
        ev.add("mixer", "api_calls", Decimal("1028.875"), at)
        ev.add("mixer", "bandwidth_gb", Decimal("1.9"), at)
        ev.add("mixer", "compute_seconds", 5, at)
        ev.add("mixer", "storage_gb", 3 * i % 17, at)
        ev.add("mixer", "gauge", 20 - i, at)  # the last value (9) counts, not the peak
        ev.add("mixer", "requests", 1, at)
        ev.add("mixer", "active_users", 1, at, user=f"u{i % 7}")
    ev.add("switcher", "api_calls", 30_000, month + timedelta(days=1))
    ev.add("switcher", "storage_gb", 150, month + timedelta(days=2))
    ev.add("switcher", "api_calls", 600_000, change)  # at the change instant: on pro
    ev.add("switcher", "storage_gb", 60, month + timedelta(days=25))
    for value, hours in ((50, 1), (150, 40), (120, 300)):
        ev.add("big", "storage_gb", value, month + timedelta(hours=hours))
    ev.add("big", "api_calls", 150_000, month + timedelta(days=2))
    ev.add("mixer", "requests", 1, now - timedelta(hours=1))
    ev.load(db)

    # correct data: the whole build passes, the check included
    dbt_build(url, "--full-refresh", target_path=dbt_target)
    with db.connect() as conn:
        charged = {
            (r.tenant_id, r.meter)
            for r in conn.execute(
                text("select * from analytics.fct_invoice_lines where month = :m and amount > 0"),
                {"m": month.date()},
            )
        }
    mix_meters = ("api_calls", "bandwidth_gb", "compute_seconds", "storage_gb", "gauge", "requests")
    assert {("mixer", m) for m in (*mix_meters, "active_users")} <= charged  # every pricing model
    assert {("jp", "api_calls"), ("big", "storage_gb"), ("big", "api_calls")} <= charged
    with db.connect() as conn:
        switcher = {
            r.line_key: (r.amount, r.plan_id, r.description)
            for r in conn.execute(
                text(
                    "select * from analytics.fct_invoice_lines"
                    " where month = :m and tenant_id = 'switcher' and line_type = 'usage'"
                ),
                {"m": month.date()},
            )
        }
    # payg: 30,000 calls - 10,000 free = $20; a 150 GB peak = $31.25. pro, from zero: 600,000
    # calls - 500,000 included = $100; a 60 GB peak - 50 included = $2.50. (Rated on pro as a
    # whole month it would have been 630,000 calls -> $130 and a 150 GB peak -> $25.)
    assert {key: amount for key, (amount, *_) in switcher.items()} == {
        "usage:api_calls@payg.v1": 2000,
        "usage:storage_gb@payg.v1": 3125,
        "usage:api_calls@pro.v1": 10000,
        "usage:storage_gb@pro.v1": 250,
    }
    assert switcher["usage:api_calls@pro.v1"][1:] == (
        "pro",
        f"API calls: 600,000 calls on Pro v1, {change:%Y-%m-%d %H:%M} to "
        f"{month_start(now):%Y-%m-%d %H:%M} UTC",
    )
    assert switcher["usage:storage_gb@payg.v1"][2].endswith(
        f" on Pay as you go v1, {month:%Y-%m-%d} 00:00 to {change:%Y-%m-%d %H:%M} UTC"
    )

    # 1. the catalog's price no longer is the price invoiced: the check names that invoice
    with db.begin() as conn:
        conn.execute(text("set local session_replication_role = replica"))  # versions are immutable
        conn.execute(
            text(
                "update meterline.price_tiers set unit_price = 0.006 "
                "where plan_id = 'mix' and meter = 'api_calls' and tier_index = 1"
            )
        )
    with pytest.raises(DbtError, match=INVOICE_CHECK):
        dbt_command(url, "test", "--select", INVOICE_CHECK, target_path=dbt_target)
    failures = invoice_check_failures(db, dbt_target)
    assert {(f[1], f[2]) for f in failures} == {("mixer", month.date())}
    # 12 * 1028.875 - 100 included = 12246.5 calls, 0.001 more each: $12.2465 -> 1225 cents
    assert [f[4] - f[3] for f in failures] == [1225]
    with db.begin() as conn:
        conn.execute(text("set local session_replication_role = replica"))  # versions are immutable
        conn.execute(
            text(
                "update meterline.price_tiers set unit_price = 0.005 "
                "where plan_id = 'mix' and meter = 'api_calls' and tier_index = 1"
            )
        )

    # 2. a rollup that lost usage (a 150 GB peak read as 50), carried through the invoice models:
    #    the invoice still equals the sum of its lines, yet the check fails on it
    with db.begin() as conn:
        conn.execute(
            text(
                "update analytics.fct_usage_monthly set quantity = quantity - 100 "
                "where tenant_id = 'big' and meter = 'storage_gb' and month = :m"
            ),
            {"m": month.date()},
        )
    dbt_command(
        url,
        "run",
        "--select",
        "int_usage_months_rated",
        "fct_invoice_lines",
        "fct_invoices",
        target_path=dbt_target,
    )
    with db.connect() as conn:
        total, lines_total = conn.execute(
            text(
                "select i.total_amount, (select sum(amount) from analytics.fct_invoice_lines l "
                "where l.tenant_id = i.tenant_id and l.month = i.month) "
                "from analytics.fct_invoices i where tenant_id = 'big' and month = :m"
            ),
            {"m": month.date()},
        ).one()
    assert total == lines_total
    with pytest.raises(DbtError, match=INVOICE_CHECK):
        dbt_command(url, "test", "--select", INVOICE_CHECK, target_path=dbt_target)
    failures = invoice_check_failures(db, dbt_target)
    assert {(f[1], f[2]) for f in failures} == {("big", month.date())}
    # storage on payg: 150 GB = $31.25, 50 GB = $11.25
    assert [f[4] - f[3] for f in failures] == [2000]

    # 3. a month invoiced before the upgrade to usage segments (migration 0010 records the first
    #    month after the last invoice) keeps the month-end rule: with the rule from this month on,
    #    last month's payg -> pro switch is rated as one month on pro, as it was invoiced; the
    #    check recomputes it the same way (only the corrupted 'big' still fails)
    with db.begin() as conn:
        conn.execute(
            text(
                "insert into meterline.rating_rules (rule, effective_from) values"
                " ('usage_segments', :m) on conflict (rule) do update"
                " set effective_from = excluded.effective_from"
            ),
            {"m": month_start(now).date()},
        )
    dbt_command(url, "run", "--select", "int_usage_segments+", target_path=dbt_target)
    with db.connect() as conn:
        switcher_lines = dict(
            conn.execute(
                text(
                    "select line_key, amount from analytics.fct_invoice_lines"
                    " where month = :m and tenant_id = 'switcher' and line_type = 'usage'"
                ),
                {"m": month.date()},
            ).all()
        )
    # on pro all month: 630,000 calls - 500,000 = $130; a 150 GB peak - 50 GB = $25
    assert switcher_lines == {"usage:api_calls": 13000, "usage:storage_gb": 2500}
    with pytest.raises(DbtError, match=INVOICE_CHECK):
        dbt_command(url, "test", "--select", INVOICE_CHECK, target_path=dbt_target)
    assert {(f[1], f[2]) for f in invoice_check_failures(db, dbt_target)} == {("big", month.date())}
