"""Invoicing and reconciliation through the official stripe SDK, over HTTP, against the
emulator, with real Postgres.

``analytics.fct_invoice_lines`` (the dbt mart, a fixed contract) is written by the tests
themselves from the Python rating engine, so these tests do not depend on a dbt build; the
Python == SQL equivalence is tested separately (test_rating_matches_dbt_sql.py).
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import requests
import stripe
from sqlalchemy import text

from billing.catalog import load_catalog
from billing.invoicing import InvoicingError, create_invoices
from billing.rating import InvoiceLine, PlanSpan, rate_invoice, rate_period
from billing.reconciliation import reconcile
from billing.stripe_client import RetryPolicy, make_stripe_client, metadata_of
from meterline.core.tenants import create_tenant, set_plan
from tests.integration.billing.conftest import admin

D = Decimal
CATALOG = load_catalog()
FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05)
SEP, AUG, OCT = date(2026, 9, 1), date(2026, 8, 1), date(2026, 10, 1)
ACCEPTANCE_USAGE = {"api_calls": D(10_000_000), "storage_gb": D(150), "compute_seconds": D(10_000)}


def cutoff(period: date) -> datetime:
    nxt = date(period.year + period.month // 12, period.month % 12 + 1, 1)
    return datetime(nxt.year, nxt.month, 1, tzinfo=UTC) + timedelta(hours=72)


def fault(emulator, **spec) -> None:
    requests.post(
        f"{emulator.url}/_emulator/faults",
        json=spec,
        headers={"X-Emulator-Token": emulator.admin_token},
        timeout=5,
    ).raise_for_status()


def clear_faults(emulator) -> None:
    requests.delete(
        f"{emulator.url}/_emulator/faults",
        headers={"X-Emulator-Token": emulator.admin_token},
        timeout=5,
    ).raise_for_status()


class Mart:
    """A stand-in for the dbt mart analytics.fct_invoice_lines (same columns)."""

    def __init__(self, engine):
        self.engine = engine
        with engine.begin() as conn:
            conn.execute(text("create schema if not exists analytics"))
            kind = conn.execute(
                text(
                    "select relkind from pg_class where oid = to_regclass('analytics.fct_invoice_lines')"
                )
            ).scalar()
            if kind is not None:  # left by a dbt build: a table or a view
                what = "view" if kind == "v" else "table"
                conn.execute(text(f"drop {what} analytics.fct_invoice_lines cascade"))
            conn.execute(
                text(
                    """
                    create table analytics.fct_invoice_lines (
                        tenant_id text, month date, line_key text, line_type text, meter text,
                        plan_id text, quantity numeric, amount bigint, currency text,
                        description text)
                    """
                )
            )

    def put(self, tenant_id: str, month: date, plan_id: str, usage: dict, currency: str = "USD"):
        self.put_lines(tenant_id, month, rate_invoice(CATALOG.plans[plan_id], usage, currency))

    def put_lines(self, tenant_id: str, month: date, lines: list[InvoiceLine]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("delete from analytics.fct_invoice_lines where tenant_id = :t and month = :m"),
                {"t": tenant_id, "m": month},
            )
            for line in lines:
                conn.execute(
                    text(
                        """
                        insert into analytics.fct_invoice_lines values
                            (:t, :m, :k, :lt, :meter, :plan, :q, :a, :c, :d)
                        """
                    ),
                    {
                        "t": tenant_id, "m": month, "k": line.line_key, "lt": line.line_type,
                        "meter": line.meter, "plan": line.plan_id, "q": line.quantity,
                        "a": line.amount, "c": line.currency, "d": line.description,
                    },
                )  # fmt: skip


@pytest.fixture
def mart(db):
    return Mart(db)


def stripe_invoices(client, period: date, tenant_id: str | None = None) -> list:
    """The period's invoices (of ``tenant_id``), newest first, by list: search may lag."""
    return [
        inv
        for inv in client.v1.invoices.list(params={"limit": 100}).auto_paging_iter()
        if metadata_of(inv).get("meterline_period") == f"{period:%Y-%m}"
        and (tenant_id is None or metadata_of(inv).get("meterline_tenant_id") == tenant_id)
    ]


def search_lag(emulator, seconds: int) -> None:
    """Stripe's search is eventually consistent: nothing new is searchable for ``seconds``."""
    admin(emulator, "POST", "config", {"search_lag_seconds": seconds})


def lines_of(client, invoice) -> list[tuple[str, int]]:
    items = client.v1.invoice_items.list(params={"invoice": invoice.id, "limit": 100})
    return sorted((i.metadata["line_key"], i.amount) for i in items.auto_paging_iter())


def test_payg_acceptance_invoice(db, mart, client):
    create_tenant(db, "acme", "payg", email="billing@acme.test", at=date(2026, 1, 1))
    mart.put("acme", SEP, "payg", ACCEPTANCE_USAGE)

    result = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)

    assert result.count("created") == 1
    [invoice] = stripe_invoices(client, SEP)
    assert (invoice.total, invoice.currency, invoice.status) == (240325, "usd", "open")
    assert invoice.metadata["meterline_tenant_id"] == "acme"
    descriptions = sorted((li.description, li.amount) for li in invoice.lines.data)
    assert descriptions == [
        ("API calls: 10,000,000 calls", 234000),
        ("Compute: 10,000 s", 3200),
        ("Storage (peak): 150 GB", 3125),
    ]
    assert all(
        li.metadata["meter"] and li.metadata["meterline_period"] == "2026-09"
        for li in invoice.lines.data
    )
    customer = client.v1.customers.retrieve(invoice.customer)
    assert customer.metadata["meterline_tenant_id"] == "acme"
    with db.connect() as conn:
        rec = conn.execute(text("select * from meterline.invoices where tenant_id = 'acme'")).one()
        items = conn.execute(
            text(
                "select count(stripe_invoice_item_id) from meterline.invoice_lines where tenant_id='acme'"
            )
        ).scalar()
        cust = conn.execute(
            text("select stripe_customer_id from meterline.stripe_customers")
        ).scalar()
    assert (rec.stripe_invoice_id, rec.status, rec.amount_due) == (invoice.id, "open", 240325)
    assert rec.usage_cutoff == cutoff(SEP) and items == 3 and cust == invoice.customer
    assert "$" not in result.markdown() and "2,403.25 USD" in result.markdown()


def test_a_month_with_a_plan_change_is_invoiced_per_usage_segment(db, mart, client):
    change = datetime(2026, 9, 16, 6, 30, tzinfo=UTC)
    create_tenant(db, "acme", "payg", at=date(2026, 1, 1))
    set_plan(db, "acme", "pro", at=change)
    spans = [
        PlanSpan(CATALOG.plans["payg"], datetime(2026, 1, 1, tzinfo=UTC), change),
        PlanSpan(CATALOG.plans["pro"], change),
    ]
    lines = rate_period(
        spans, {}, SEP,
        segment_usage=[{"api_calls": D(30_000)}, {"api_calls": D(600_000)}],
    )  # fmt: skip
    mart.put_lines("acme", SEP, lines)

    create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)

    [invoice] = stripe_invoices(client, SEP)
    # base fee: $99 for 14 days 17.5 hours of 30 = $48.60625 -> $48.61; payg's 30,000 calls - 10,000
    # free = $20; pro's 600,000 calls from zero - 500,000 included = $100
    assert lines_of(client, invoice) == [
        ("base_fee", 4861),
        ("usage:api_calls@payg.v1", 2000),
        ("usage:api_calls@pro.v1", 10000),
    ]
    assert invoice.total == 4861 + 2000 + 10000
    assert sorted(
        li.description for li in invoice.lines.data if "usage:" in li.metadata["line_key"]
    ) == [
        "API calls: 30,000 calls on Pay as you go v1, 2026-09-01 00:00 to 2026-09-16 06:30 UTC",
        "API calls: 600,000 calls on Pro v1, 2026-09-16 06:30 to 2026-10-01 00:00 UTC",
    ]


def _three_tenants(db, mart):
    create_tenant(db, "acme", "payg", at=date(2026, 1, 1))
    create_tenant(db, "beta", "pro", at=date(2026, 1, 1))
    create_tenant(db, "gamma", "starter", at=date(2026, 1, 1))
    create_tenant(db, "delta", "free", at=date(2026, 1, 1))
    mart.put("acme", SEP, "payg", ACCEPTANCE_USAGE)
    mart.put("beta", SEP, "pro", {"api_calls": D(612_345), "active_users": D(53)})
    mart.put("gamma", SEP, "starter", {"api_calls": D(40_000)})
    mart.put("delta", SEP, "free", {"api_calls": D(900)})  # owes nothing: no lines
    return {"acme": 240325, "beta": 9900 + 11235 + 1200, "gamma": 2900}


def test_three_runs_one_with_500s_mid_run_leave_one_invoice_per_tenant(db, mart, client, emulator):
    expected = _three_tenants(db, mart)
    search_lag(emulator, 3600)  # Stripe's search during an incident: nothing new is found

    # Run 1: from the 5th invoice item on, every invoice-item call fails with 500 -> a partial run.
    fault(emulator, status=500, count=1000, path_prefix="/v1/invoiceitems", method="POST", skip=4)
    with pytest.raises(InvoicingError, match="re-run the partition to resume") as failed:
        create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=RetryPolicy(3, 0.01, 0.02))
    assert failed.value.result.failed
    clear_faults(emulator)

    # Run 2: transient trouble that the retries absorb (lost responses, 429, 503, a timeout).
    fault(
        emulator, status=500, count=2, path_prefix="/v1/invoiceitems", method="POST", mode="after"
    )
    fault(emulator, status=429, count=1, path_prefix="/v1/invoices", method="POST")
    fault(emulator, status=503, count=1, path_prefix="/v1/invoices/", method="POST", mode="after")
    fault(
        emulator,
        status=None,
        delay_seconds=1.5,
        count=1,
        path_prefix="/v1/invoiceitems",
        method="POST",
        mode="after",
    )
    slow_client = make_stripe_client("sk_test_emulator", emulator.url, timeout=1)
    # the timed-out request is still running: its key is in use (409) until it finishes, so
    # the backoff must outlast it (Stripe: "retry this request later")
    patient = RetryPolicy(max_attempts=8, base_delay=0.1, max_delay=0.8)
    second = create_invoices(db, slow_client, SEP, usage_cutoff=cutoff(SEP), retry=patient)
    assert {i.tenant_id for i in second.invoices} == set(expected)
    assert second.count("resumed") + second.count("unchanged") + second.count("created") == 3
    log = requests.get(
        f"{emulator.url}/_emulator/requests",
        headers={"X-Emulator-Token": emulator.admin_token},
        timeout=5,
    ).json()["requests"]
    assert any(r["replayed"] for r in log), "a lost response was replayed by its idempotency key"

    # Run 3: nothing left to do.
    third = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    assert third.count("unchanged") == 3

    for tenant_id, total in expected.items():
        [invoice] = stripe_invoices(client, SEP, tenant_id)
        assert (invoice.status, invoice.total) == ("open", total), tenant_id
        keys = [k for k, _ in lines_of(client, invoice)]
        assert len(keys) == len(set(keys)), f"duplicate line on {tenant_id}'s invoice"
        assert sum(a for _, a in lines_of(client, invoice)) == total
    assert stripe_invoices(client, SEP, "delta") == []
    assert len(list(client.v1.customers.list(params={"limit": 100}).auto_paging_iter())) == 3
    beta = stripe_invoices(client, SEP, "beta")[0]
    assert lines_of(client, beta) == [
        ("base_fee", 9900), ("usage:active_users", 1200), ("usage:api_calls", 11235),
    ]  # fmt: skip
    assert sorted(li.description for li in beta.lines.data) == [
        "API calls: 612,345 calls", "Active users: 53 users", "Pro plan base fee",
    ]  # fmt: skip

    report = reconcile(db, client, SEP, reports_dir=db_reports(db))
    assert report.counts()["matched"] == 3 and not report.has_unexplained_differences


def db_reports(db):
    import os
    from pathlib import Path

    return Path(os.environ["METERLINE_HOME"]) / "reports"


def test_a_stored_500_is_resumed_by_a_rerun_with_the_next_key_generation(
    db, mart, client, emulator
):
    """Stripe stores a 500 under the key of a request that started executing and replays it
    for 24 h: the re-run looks for what exists, then uses the key's next generation."""
    expected = _three_tenants(db, mart)
    search_lag(emulator, 3600)
    fault(
        emulator, status=500, count=1, path_prefix="/v1/invoiceitems", method="POST", skip=1,
        mode="during", keep_changes=False,
    )  # fmt: skip
    with pytest.raises(InvoicingError, match="re-run the partition to resume"):
        create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    log = admin(emulator, "GET", "requests")["requests"]
    assert any(r["replayed"] and r["status"] == 500 for r in log), "the stored 500 was replayed"

    second = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    assert {i.tenant_id for i in second.invoices} == set(expected)
    third = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    assert third.count("unchanged") == 3
    for tenant_id, total in expected.items():
        [invoice] = stripe_invoices(client, SEP, tenant_id)
        assert (invoice.status, invoice.total) == ("open", total), tenant_id
    keys = [r["idempotency_key"] for r in admin(emulator, "GET", "requests")["requests"]]
    assert any(k and k.endswith(":g1") for k in keys), "the re-run moved to generation 1"
    report = reconcile(db, client, SEP, reports_dir=db_reports(db))
    assert report.counts()["matched"] == 3 and not report.has_unexplained_differences


def test_minimum_amount_and_open_month_guard(db, mart, client):
    create_tenant(db, "small", "payg", at=date(2026, 1, 1))
    mart.put("small", SEP, "payg", {"api_calls": D(10_500)})  # $0.50
    result = create_invoices(
        db, client, SEP, usage_cutoff=cutoff(SEP), minimum_amount="1.00", retry=FAST
    )
    assert result.count("skipped") == 1 and stripe_invoices(client, SEP) == []
    report = reconcile(db, client, SEP, reports_dir=db_reports(db))
    assert [(r.tenant_id, r.category) for r in report.rows] == [("small", "matched")]
    with pytest.raises(InvoicingError, match="not closed yet"):
        create_invoices(db, client, date(2026, 11, 1), usage_cutoff=datetime(2026, 12, 4, tzinfo=UTC),
                        now=datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip


def test_reconciliation_untouched_month_all_matched(db, mart, client, tmp_path):
    expected = _three_tenants(db, mart)
    create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    result = reconcile(db, client, SEP, reports_dir=tmp_path)
    assert result.counts()["matched"] == 3
    assert not result.has_unexplained_differences
    assert {r.tenant_id: r.stripe_amount for r in result.rows} == expected
    assert result.html_path == tmp_path / "2026-09" / "reconciliation.html"
    page = result.html_path.read_text()
    assert (
        "Every invoice matches" in page
        and "2,403.25" in page
        and "<link" not in page
        and "<script" not in page
    )
    with result.csv_path.open() as handle:
        assert {row["tenant_id"]: row["category"] for row in csv.DictReader(handle)} == {
            "acme": "matched", "beta": "matched", "gamma": "matched",
        }  # fmt: skip
    assert "everything matched" in result.markdown()


@pytest.mark.parametrize("lag", [0, 3600], ids=["search_current", "search_lagging"])
def test_reconciliation_reports_direct_stripe_changes(db, mart, client, emulator, tmp_path, lag):
    search_lag(emulator, lag)  # the same categories whether or not search has caught up
    expected = _three_tenants(db, mart)
    create_tenant(db, "eps", "starter", at=date(2026, 1, 1))
    mart.put("eps", SEP, "starter", {})
    create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)

    acme = stripe_invoices(client, SEP, "acme")[0]
    client.v1.invoices.void_invoice(acme.id)  # voided, not replaced
    beta = stripe_invoices(client, SEP, "beta")[0]
    client.v1.invoices.void_invoice(beta.id)  # voided and replaced by a hand-made invoice
    hand = client.v1.invoices.create(params={
        "customer": beta.customer, "currency": "usd", "pending_invoice_items_behavior": "exclude",
        "metadata": {"meterline_tenant_id": "beta", "meterline_period": "2026-09"},
    })  # fmt: skip
    client.v1.invoice_items.create(
        params={
            "customer": beta.customer,
            "invoice": hand.id,
            "amount": 20000,
            "currency": "usd",
            "description": "Manual",
        }
    )
    client.v1.invoices.finalize_invoice(hand.id)
    delta_customer = client.v1.customers.create(
        params={"name": "delta", "metadata": {"meterline_tenant_id": "delta"}}
    )
    extra = client.v1.invoices.create(params={
        "customer": delta_customer.id, "metadata": {"meterline_tenant_id": "delta", "meterline_period": "2026-09"},
    })  # fmt: skip
    client.v1.invoice_items.create(
        params={
            "customer": delta_customer.id,
            "invoice": extra.id,
            "amount": 5000,
            "currency": "usd",
        }
    )
    client.v1.invoices.finalize_invoice(extra.id)
    gamma = stripe_invoices(client, SEP, "gamma")[0]
    dup = client.v1.invoices.create(
        params={"customer": gamma.customer, "metadata": gamma.metadata.to_dict()}
    )
    client.v1.invoice_items.create(
        params={"customer": gamma.customer, "invoice": dup.id, "amount": 2900, "currency": "usd"}
    )
    client.v1.invoices.finalize_invoice(dup.id)
    eps = stripe_invoices(client, SEP, "eps")[0]
    client.v1.invoices.mark_uncollectible(eps.id)

    result = reconcile(db, client, SEP, reports_dir=tmp_path)
    got = {
        (r.tenant_id, r.category): (
            r.expected_amount,
            r.stripe_amount,
            r.difference,
            r.stripe_invoice_id,
        )
        for r in result.rows
    }
    assert got == {
        ("acme", "status_issue"): (expected["acme"], 0, -expected["acme"], acme.id),
        ("beta", "amount_mismatch"): (expected["beta"], 20000, 20000 - expected["beta"], hand.id),
        ("beta", "replaced"): (0, 0, 0, beta.id),
        ("delta", "unexpected_in_stripe"): (0, 5000, 5000, extra.id),
        ("gamma", "matched"): (2900, 2900, 0, gamma.id),
        ("gamma", "duplicate_in_stripe"): (0, 2900, 2900, dup.id),
        ("eps", "status_issue"): (2900, 2900, 0, eps.id),
    }
    assert result.has_unexplained_differences
    page = result.html_path.read_text()
    assert "Unexplained differences" in page and 'class="bad"' in page
    # a re-run replaces the month's rows
    reconcile(db, client, SEP, reports_dir=tmp_path)
    with db.connect() as conn:
        stored = conn.execute(
            text(
                "select tenant_id, category, difference from meterline.invoice_reconciliation where period = :p"
            ),
            {"p": SEP},
        ).all()
    assert sorted((t, c) for t, c, _ in stored) == sorted(got)
    assert (
        dict(((t, c), d) for t, c, d in stored)[("beta", "amount_mismatch")]
        == 20000 - expected["beta"]
    )


def test_late_event_becomes_adjustment_on_next_invoice_and_is_explained(db, mart, client, tmp_path):
    create_tenant(db, "acme", "payg", at=date(2026, 1, 1))
    mart.put("acme", AUG, "payg", {"api_calls": D(10_000_000)})
    create_invoices(db, client, AUG, usage_cutoff=cutoff(AUG), retry=FAST)
    [aug] = stripe_invoices(client, AUG)
    assert aug.total == 234000

    # an August event loaded now, long after the August invoice was finalized
    with db.begin() as conn:
        conn.execute(
            text(
                """
                insert into raw.usage_events (tenant_id, event_id, meter, value, occurred_at, received_at, loaded_at)
                values ('acme', 'late-1', 'api_calls', 1000000, '2026-08-20T10:00:00Z', now(), now())
                """
            )
        )
    mart.put("acme", AUG, "payg", {"api_calls": D(11_000_000)})  # the dbt rebuild: 2540.00

    pending = reconcile(db, client, AUG, reports_dir=tmp_path)
    [row] = pending.rows
    assert (row.category, row.difference) == ("adjustment_explained", -20000)
    assert "will be billed" in row.explanation and not pending.has_unexplained_differences

    mart.put("acme", SEP, "payg", {"api_calls": D(20_000)})  # $10.00
    create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    [sep] = stripe_invoices(client, SEP)
    assert lines_of(client, sep) == [
        ("adjustment:2026-08:usage:api_calls", 20000),
        ("usage:api_calls", 1000),
    ]
    adjustment = next(li for li in sep.lines.data if li.metadata["line_type"] == "adjustment")
    assert adjustment.description.startswith(
        "Prior-period adjustment 2026-08 - API calls: +1,000,000 calls"
    )
    assert client.v1.invoices.retrieve(aug.id).total == 234000  # the finalized invoice is untouched

    explained = reconcile(db, client, AUG, reports_dir=tmp_path)
    [row] = explained.rows
    assert row.category == "adjustment_explained" and sep.id in row.explanation
    assert not explained.has_unexplained_differences
    september = reconcile(db, client, SEP, reports_dir=tmp_path)
    assert [(r.category, r.expected_amount) for r in september.rows] == [("matched", 21000)]

    # re-running September or invoicing October never bills the adjustment twice
    assert (
        create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST).count("unchanged")
        == 1
    )
    mart.put("acme", OCT, "payg", {"api_calls": D(20_000)})
    create_invoices(db, client, OCT, usage_cutoff=cutoff(OCT), retry=FAST)
    [oct_invoice] = stripe_invoices(client, OCT)
    assert lines_of(client, oct_invoice) == [("usage:api_calls", 1000)]


def test_recovers_an_invoice_finalized_but_never_recorded(db, mart, client):
    create_tenant(db, "acme", "payg", at=date(2026, 1, 1))
    mart.put("acme", SEP, "payg", ACCEPTANCE_USAGE)
    create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    with db.begin() as conn:  # as if the process died right after finalizing
        conn.execute(text("delete from meterline.invoices"))
    again = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    assert again.count("recovered") == 1
    assert len(stripe_invoices(client, SEP)) == 1


def test_sdk_errors_surface_with_stripe_shapes(client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.invoices.retrieve("in_missing")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


def _forget_billing_state(db) -> None:
    """What a second installation with the same tenants has: none of the first one's records."""
    with db.begin() as conn:
        conn.execute(
            text(
                "truncate meterline.invoice_reconciliation, meterline.invoice_lines, "
                "meterline.invoices, meterline.stripe_customers, meterline.installation"
            )
        )


def test_installs_sharing_a_stripe_account_never_adopt_or_report_each_others_invoices(
    db, mart, client, tmp_path
):
    from meterline.core.installation import install_id, set_install_id

    expected = _three_tenants(db, mart)
    set_install_id(db, "laptop")
    laptop = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    laptop_ids = {i.tenant_id: i.stripe_invoice_id for i in laptop.invoices}

    _forget_billing_state(db)  # CI: same tenant ids, same month, same Stripe account
    ci = install_id(db)
    assert ci != "laptop"
    second = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    assert second.count("created") == 3  # nothing adopted from the laptop
    ci_ids = {i.tenant_id: i.stripe_invoice_id for i in second.invoices}
    assert set(ci_ids) == set(laptop_ids) and not set(ci_ids.values()) & set(laptop_ids.values())
    for tenant_id, invoice_id in ci_ids.items():
        invoice = client.v1.invoices.retrieve(invoice_id)
        assert invoice.metadata["meterline_install"] == ci
        customer = client.v1.customers.retrieve(invoice.customer)
        assert customer.metadata["meterline_install"] == ci
        assert invoice.customer != client.v1.invoices.retrieve(laptop_ids[tenant_id]).customer

    result = reconcile(db, client, SEP, reports_dir=tmp_path)
    assert result.counts()["matched"] == 3 and not result.has_unexplained_differences
    assert {r.stripe_invoice_id for r in result.rows} == set(ci_ids.values())
    assert {r.tenant_id: r.stripe_amount for r in result.rows} == expected
    # Both installs' invoices are in the account: six for the month.
    assert len(stripe_invoices(client, SEP)) == 6
    # A re-run of the second install is still a no-op.
    assert (
        create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST).count("created") == 0
    )
