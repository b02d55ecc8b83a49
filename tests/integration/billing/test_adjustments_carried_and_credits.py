"""Adjustments reach Stripe exactly once: carried past skipped and voided invoices, credited
to the customer balance when a month turns negative, and Stripe's minimum charge explained.

Official SDK over HTTP against the emulator, real Postgres; the mart is the stand-in of
``test_stripe_invoicing_and_reconciliation`` (written from the Python rating engine).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from billing.invoicing import create_invoices
from billing.reconciliation import reconcile
from meterline.core.tenants import create_tenant
from tests.integration.billing.test_stripe_invoicing_and_reconciliation import (
    AUG,
    FAST,
    OCT,
    SEP,
    cutoff,
    db_reports,
    lines_of,
    mart,  # noqa: F401 (fixture)
    stripe_invoices,
)

D = Decimal
NOV = date(2026, 11, 1)


def _invoice(db, client, period, minimum="0"):
    # ``now``: the month is closed (the real clock may still be inside November's grace)
    return create_invoices(
        db, client, period, usage_cutoff=cutoff(period), minimum_amount=minimum, retry=FAST,
        now=cutoff(period) + timedelta(hours=1),
    )  # fmt: skip


def _late_event(db, event_id: str, value: int, occurred_at: str) -> None:
    with db.begin() as conn:
        conn.execute(
            text(
                """
                insert into raw.usage_events
                    (tenant_id, event_id, meter, value, occurred_at, received_at, loaded_at)
                values ('acme', :id, 'api_calls', :v, :at, now(), now())
                """
            ),
            {"id": event_id, "v": value, "at": occurred_at},
        )


def _snapshot(client, invoice_id: str) -> tuple:
    inv = client.v1.invoices.retrieve(invoice_id)
    return (inv.status, inv.total, inv.amount_due, inv.starting_balance, inv.number,
            lines_of(client, inv))  # fmt: skip


def _categories(db, client, period):
    result = reconcile(db, client, period, reports_dir=db_reports(db))
    assert not result.has_unexplained_differences, result.rows
    return result.rows


def test_late_event_after_a_skipped_invoice_reaches_stripe_once(db, mart, client):  # noqa: F811
    create_tenant(db, "acme", "payg", at=date(2026, 1, 1))
    mart.put("acme", AUG, "payg", {"api_calls": D(10_000_000)})
    _invoice(db, client, AUG, "1.00")
    [aug] = stripe_invoices(client, AUG)
    aug_before = _snapshot(client, aug.id)

    # an August event loaded after August was finalized: +1,000 calls at 0.0002 = +0.20
    _late_event(db, "late-aug", 1000, "2026-08-20T10:00:00Z")
    mart.put("acme", AUG, "payg", {"api_calls": D(10_001_000)})
    # September: 0.10 of usage + the 0.20 adjustment = 0.30, below the 1.00 minimum
    mart.put("acme", SEP, "payg", {"api_calls": D(10_100)})
    sep = _invoice(db, client, SEP, "1.00")
    assert sep.count("skipped") == 1 and stripe_invoices(client, SEP) == []

    # October carries both: the August adjustment and September's own usage; three runs
    mart.put("acme", OCT, "payg", {"api_calls": D(20_000)})
    for _ in range(3):
        _invoice(db, client, OCT, "1.00")
        assert _invoice(db, client, SEP, "1.00").count("unchanged") == 1  # stays skipped
    [oct_invoice] = stripe_invoices(client, OCT)
    assert (oct_invoice.status, oct_invoice.total) == ("open", 1030)
    assert lines_of(client, oct_invoice) == [
        ("adjustment:2026-08:usage:api_calls", 20),
        ("adjustment:2026-09:usage:api_calls", 10),
        ("usage:api_calls", 1000),
    ]
    carried = next(
        li.description for li in oct_invoice.lines.data
        if li.metadata["line_key"] == "adjustment:2026-09:usage:api_calls"
    )  # fmt: skip
    assert "below the minimum amount" in carried

    mart.put("acme", NOV, "payg", {"api_calls": D(20_000)})
    _invoice(db, client, NOV, "1.00")
    [nov] = stripe_invoices(client, NOV)
    assert lines_of(client, nov) == [("usage:api_calls", 1000)]  # nothing billed twice
    assert _snapshot(client, aug.id) == aug_before  # finalized invoices never change

    [aug_row] = _categories(db, client, AUG)
    assert aug_row.category == "adjustment_explained" and oct_invoice.id in aug_row.explanation
    assert "1 api_calls event(s) loaded" in aug_row.explanation
    [sep_row] = _categories(db, client, SEP)
    assert sep_row.category == "matched" and oct_invoice.id in sep_row.explanation
    [oct_row] = _categories(db, client, OCT)
    assert (oct_row.category, oct_row.expected_amount, oct_row.stripe_amount) == (
        "matched", 1030, 1030,
    )  # fmt: skip
    assert (
        "2026-08 adjustment" in oct_row.explanation and "api_calls event(s)" in oct_row.explanation
    )
    assert [r.category for r in _categories(db, client, NOV)] == ["matched"]


def test_a_voided_invoice_gives_its_adjustments_back_to_the_next_one(db, mart, client):  # noqa: F811
    create_tenant(db, "acme", "payg", at=date(2026, 1, 1))
    mart.put("acme", AUG, "payg", {"api_calls": D(10_000_000)})
    _invoice(db, client, AUG)
    _late_event(db, "late-aug", 1000, "2026-08-20T10:00:00Z")
    mart.put("acme", AUG, "payg", {"api_calls": D(10_001_000)})
    mart.put("acme", SEP, "payg", {"api_calls": D(20_000)})
    _invoice(db, client, SEP)
    [sep] = stripe_invoices(client, SEP)
    assert sep.total == 1020
    client.v1.invoices.void_invoice(sep.id)  # by hand in Stripe: September is forgiven
    assert _invoice(db, client, SEP).invoices[0].status == "void"

    mart.put("acme", OCT, "payg", {"api_calls": D(20_000)})
    _invoice(db, client, OCT)
    [oct_invoice] = stripe_invoices(client, OCT)
    # the August adjustment comes back; September's own (voided) usage is not billed again
    assert lines_of(client, oct_invoice) == [
        ("adjustment:2026-08:usage:api_calls", 20),
        ("usage:api_calls", 1000),
    ]
    [aug_row] = _categories(db, client, AUG)
    assert aug_row.category == "adjustment_explained" and oct_invoice.id in aug_row.explanation


def test_a_late_negative_correction_is_credited_to_the_customer_balance(db, mart, client):  # noqa: F811
    create_tenant(db, "acme", "payg", at=date(2026, 1, 1))
    mart.put("acme", AUG, "payg", {"api_calls": D(10_000_000)})  # 2,340.00
    _invoice(db, client, AUG)
    [aug] = stripe_invoices(client, AUG)
    aug_before = _snapshot(client, aug.id)

    # August re-rated lower (a correction: 5,000,000 calls = 1,340.00): -1,000.00
    mart.put("acme", AUG, "payg", {"api_calls": D(5_000_000)})
    mart.put("acme", SEP, "payg", {"api_calls": D(20_000)})  # 10.00
    for _ in range(3):  # September nets to -990.00: a credit, issued once
        result = _invoice(db, client, SEP)
    assert result.invoices[0].status == "credited"
    assert stripe_invoices(client, SEP) == []
    customer = aug.customer
    ledger = client.v1.customers.balance_transactions.list(customer, params={"limit": 100}).data
    assert [(t.type, t.amount, t.metadata["meterline_period"]) for t in ledger] == [
        ("adjustment", -99000, "2026-09")
    ]
    assert client.v1.customers.retrieve(customer).balance == -99000

    mart.put("acme", OCT, "payg", {"api_calls": D(20_000)})  # 10.00, paid by the credit
    _invoice(db, client, OCT)
    [oct_invoice] = stripe_invoices(client, OCT)
    assert lines_of(client, oct_invoice) == [("usage:api_calls", 1000)]
    assert (oct_invoice.total, oct_invoice.starting_balance, oct_invoice.amount_due) == (
        1000, -99000, 0,
    )  # fmt: skip
    assert client.v1.customers.retrieve(customer).balance == -98000
    assert _snapshot(client, aug.id) == aug_before

    [aug_row] = _categories(db, client, AUG)
    assert aug_row.category == "adjustment_explained"
    [sep_row] = _categories(db, client, SEP)
    assert (sep_row.category, sep_row.expected_amount, sep_row.stripe_amount) == (
        "matched", -99000, -99000,
    )  # fmt: skip
    assert "credited to the customer balance" in sep_row.explanation
    [oct_row] = _categories(db, client, OCT)
    assert (oct_row.category, oct_row.stripe_amount) == ("matched", 1000)
    assert (oct_row.balance_applied, oct_row.amount_due) == (-99000, 0)
    with db.connect() as conn:
        stored = conn.execute(
            text(
                "select balance_applied, amount_due from meterline.invoice_reconciliation "
                "where period = :p"
            ),
            {"p": OCT},
        ).one()
    assert tuple(stored) == (-99000, 0)


def test_stripes_minimum_charge_carry_is_explained_not_a_mismatch(db, mart, client):  # noqa: F811
    create_tenant(db, "acme", "payg", at=date(2026, 1, 1))
    mart.put("acme", SEP, "payg", {"api_calls": D(10_300)})  # 0.30, below Stripe's USD 0.50
    _invoice(db, client, SEP)
    [sep] = stripe_invoices(client, SEP)
    assert (sep.status, sep.total, sep.ending_balance) == ("paid", 30, 30)
    mart.put("acme", OCT, "payg", {"api_calls": D(20_000)})
    _invoice(db, client, OCT)
    [oct_invoice] = stripe_invoices(client, OCT)
    assert (oct_invoice.total, oct_invoice.starting_balance, oct_invoice.amount_due) == (
        1000, 30, 1030,
    )  # fmt: skip

    [sep_row] = _categories(db, client, SEP)
    assert sep_row.category == "matched" and "minimum charge" in sep_row.explanation
    [oct_row] = _categories(db, client, OCT)
    assert (oct_row.category, oct_row.balance_applied, oct_row.amount_due) == (
        "matched", 30, 1030,
    )  # fmt: skip


def test_a_credit_whose_answer_was_lost_is_found_not_issued_twice(db, mart, client, emulator):  # noqa: F811
    from billing.invoicing import InvoicingError
    from billing.stripe_client import RetryPolicy
    from tests.integration.billing.test_stripe_invoicing_and_reconciliation import (
        clear_faults,
        fault,
    )

    create_tenant(db, "acme", "payg", at=date(2026, 1, 1))
    mart.put("acme", AUG, "payg", {"api_calls": D(10_000_000)})
    _invoice(db, client, AUG)
    mart.put("acme", AUG, "payg", {"api_calls": D(5_000_000)})  # -1,000.00
    mart.put("acme", SEP, "payg", {"api_calls": D(20_000)})
    # the credit is made in Stripe, but its answer never comes back
    fault(emulator, status=500, count=1, path_prefix="/v1/customers/", method="POST", mode="after")
    try:
        with pytest.raises(InvoicingError):
            create_invoices(
                db, client, SEP, usage_cutoff=cutoff(SEP), retry=RetryPolicy(1, 0.01, 0.01)
            )
    finally:
        clear_faults(emulator)
    with db.connect() as conn:
        status = conn.execute(
            text("select status from meterline.invoices where period = :p"), {"p": SEP}
        ).scalar()
    assert status == "crediting"

    assert _invoice(db, client, SEP).invoices[0].status == "credited"
    [aug] = stripe_invoices(client, AUG)
    ledger = client.v1.customers.balance_transactions.list(aug.customer).data
    assert [(t.type, t.amount) for t in ledger] == [("adjustment", -99000)]
    assert [r.category for r in _categories(db, client, SEP)] == ["matched"]
