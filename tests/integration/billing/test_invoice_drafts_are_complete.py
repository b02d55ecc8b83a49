"""A draft is finalized only when its items in Stripe equal the expected lines.

Through the official SDK against the emulator, real Postgres; the mart is the stand-in of
``test_stripe_invoicing_and_reconciliation`` (written from the Python rating engine).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import stripe
from sqlalchemy import text

from billing.invoicing import InvoicingError, create_invoices
from billing.reconciliation import reconcile
from billing.stripe_client import RetryPolicy
from meterline.core.tenants import create_tenant
from tests.integration.billing.test_stripe_invoicing_and_reconciliation import (
    FAST,
    OCT,
    SEP,
    clear_faults,
    cutoff,
    fault,
    lines_of,
    mart,  # noqa: F401 (fixture)
    stripe_invoices,
)

D = Decimal
ONCE = RetryPolicy(max_attempts=1, base_delay=0.01, max_delay=0.01)
A_USAGE = {"api_calls": D(20_000), "storage_gb": D(10)}  # 10.00 + 1.25
B_USAGE = {"api_calls": D(30_000), "storage_gb": D(10)}  # 20.00 + 1.25


def _run_that_stops_before_finalize(db, client, emulator) -> None:
    """A run that puts the items on the draft, then cannot finalize (Stripe keeps failing)."""
    fault(emulator, status=500, count=1000, path_prefix="/v1/invoices/", method="POST")
    with pytest.raises(InvoicingError, match="re-run the partition"):
        create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=ONCE)
    clear_faults(emulator)


def _draft(client):
    [draft] = stripe_invoices(client, SEP, "acme")
    assert draft.status == "draft"
    return draft


def test_amount_changed_a_b_a_before_finalize_ends_with_the_right_items(db, mart, client, emulator):  # noqa: F811
    create_tenant(db, "acme", "payg", at=mart_start())
    mart.put("acme", SEP, "payg", A_USAGE)
    _run_that_stops_before_finalize(db, client, emulator)
    assert lines_of(client, _draft(client)) == [
        ("usage:api_calls", 1000),
        ("usage:storage_gb", 125),
    ]

    mart.put("acme", SEP, "payg", B_USAGE)  # the mart was rebuilt before the next run
    _run_that_stops_before_finalize(db, client, emulator)
    assert lines_of(client, _draft(client)) == [
        ("usage:api_calls", 2000),
        ("usage:storage_gb", 125),
    ]

    # back to A: the item's first key (amount A) replays the item deleted in the B run
    mart.put("acme", SEP, "payg", A_USAGE)
    result = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)

    assert result.count("resumed") == 1
    [invoice] = stripe_invoices(client, SEP, "acme")
    assert (invoice.status, invoice.total) == ("open", 1125)
    assert lines_of(client, invoice) == [("usage:api_calls", 1000), ("usage:storage_gb", 125)]
    with db.connect() as conn:
        recorded = conn.execute(
            text("select amount_due, status from meterline.invoices where tenant_id = 'acme'")
        ).one()
        item_ids = set(
            conn.execute(
                text("select stripe_invoice_item_id from meterline.invoice_lines")
            ).scalars()
        )
    assert tuple(recorded) == (1125, "open")
    assert item_ids == {li.parent.invoice_item_details.invoice_item for li in invoice.lines.data}
    report = reconcile(db, client, SEP, reports_dir=_reports())
    assert [(r.category, r.stripe_amount) for r in report.rows] == [("matched", 1125)]


def test_a_lost_item_and_a_stray_item_are_repaired_before_finalizing(db, mart, client, emulator):  # noqa: F811
    create_tenant(db, "acme", "payg", at=mart_start())
    mart.put("acme", SEP, "payg", A_USAGE)
    _run_that_stops_before_finalize(db, client, emulator)
    draft = _draft(client)
    storage = next(
        i for i in client.v1.invoice_items.list(params={"invoice": draft.id}).data
        if i.metadata["line_key"] == "usage:storage_gb"
    )  # fmt: skip
    client.v1.invoice_items.delete(storage.id)  # lost
    client.v1.invoice_items.create(
        params={"customer": draft.customer, "invoice": draft.id, "amount": 999, "currency": "usd"}
    )  # made by hand on our draft: no line_key

    create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)

    [invoice] = stripe_invoices(client, SEP, "acme")
    assert (invoice.status, invoice.total) == ("open", 1125)
    assert lines_of(client, invoice) == [("usage:api_calls", 1000), ("usage:storage_gb", 125)]
    report = reconcile(db, client, SEP, reports_dir=_reports())
    assert [r.category for r in report.rows] == ["matched"]


def test_a_draft_that_cannot_be_completed_is_never_finalized(db, mart, client, emulator):  # noqa: F811
    create_tenant(db, "acme", "payg", at=mart_start())
    mart.put("acme", SEP, "payg", A_USAGE)
    _run_that_stops_before_finalize(db, client, emulator)
    # from now on every new invoice item is refused: the missing line can't be put back
    draft = _draft(client)
    storage = next(
        i for i in client.v1.invoice_items.list(params={"invoice": draft.id}).data
        if i.metadata["line_key"] == "usage:storage_gb"
    )  # fmt: skip
    client.v1.invoice_items.delete(storage.id)
    fault(emulator, status=400, count=1000, path_prefix="/v1/invoiceitems", method="POST")
    try:
        with pytest.raises(InvoicingError) as failed:
            create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=ONCE)
    finally:
        clear_faults(emulator)
    assert "acme" in str(failed.value)
    draft = client.v1.invoices.retrieve(draft.id)
    assert (draft.status, draft.total) == ("draft", 1000)  # not finalized with a wrong total
    with db.connect() as conn:
        status = conn.execute(
            text("select status from meterline.invoices where tenant_id = 'acme'")
        ).scalar()
    assert status == "draft"


def mart_start():
    return date(2026, 1, 1)


def _reports():
    import os
    from pathlib import Path

    return Path(os.environ["METERLINE_HOME"]) / "reports"


def test_a_short_invoice_finalized_by_hand_is_recorded_as_stripe_has_it(db, mart, client, emulator):  # noqa: F811
    create_tenant(db, "acme", "payg", at=mart_start())
    mart.put("acme", SEP, "payg", A_USAGE)
    _run_that_stops_before_finalize(db, client, emulator)
    draft = _draft(client)
    storage = next(
        i for i in client.v1.invoice_items.list(params={"invoice": draft.id}).data
        if i.metadata["line_key"] == "usage:storage_gb"
    )  # fmt: skip
    client.v1.invoice_items.delete(storage.id)
    client.v1.invoices.finalize_invoice(draft.id)  # by hand, short of the storage line

    again = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    assert (again.count("recovered"), again.invoices[0].amount_due) == (1, 1000)
    with db.connect() as conn:
        recorded = conn.execute(
            text("select line_key, amount from meterline.invoice_lines order by line_key")
        ).all()
    assert [tuple(r) for r in recorded] == [("usage:api_calls", 1000)]  # what Stripe billed

    # the next invoice bills the missing line once, and September is explained
    mart.put("acme", OCT, "payg", {"api_calls": D(20_000)})
    create_invoices(db, client, OCT, usage_cutoff=cutoff(OCT), retry=FAST,
                    now=cutoff(OCT) + timedelta(hours=1))  # fmt: skip
    [oct_invoice] = stripe_invoices(client, OCT, "acme")
    assert lines_of(client, oct_invoice) == [
        ("adjustment:2026-09:usage:storage_gb", 125),
        ("usage:api_calls", 1000),
    ]
    assert client.v1.invoices.retrieve(draft.id).total == 1000  # finalized: never changed
    [sep_row] = reconcile(db, client, SEP, reports_dir=_reports()).rows
    assert sep_row.category == "adjustment_explained" and oct_invoice.id in sep_row.explanation
    assert "no late events" in sep_row.explanation


def test_a_draft_left_by_a_crash_is_deleted_when_the_month_is_skipped_after_all(
    db,
    mart,  # noqa: F811
    client,
    emulator,
):
    create_tenant(db, "acme", "payg", at=mart_start())
    mart.put("acme", SEP, "payg", A_USAGE)
    _run_that_stops_before_finalize(db, client, emulator)
    draft = _draft(client)
    mart.put("acme", SEP, "payg", {"api_calls": D(10_100)})  # 0.10 after a correction

    result = create_invoices(
        db, client, SEP, usage_cutoff=cutoff(SEP), minimum_amount="1.00", retry=FAST
    )

    assert result.invoices[0].status == "skipped"
    assert stripe_invoices(client, SEP, "acme") == []  # no draft left to finalize by hand
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.retrieve(draft.id)
    with db.connect() as conn:
        row = conn.execute(text("select status, stripe_invoice_id from meterline.invoices")).one()
    assert tuple(row) == ("skipped", None)
    assert [r.category for r in reconcile(db, client, SEP, reports_dir=_reports()).rows] == [
        "matched"
    ]
