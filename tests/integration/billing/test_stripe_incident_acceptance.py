"""Acceptance (issue 14, items 2 and 5): a Stripe incident changes nothing finance sees.

The same month is billed twice, from scratch: once on a calm day, once during an incident in
which Stripe's search index lags an hour (nothing new is searchable) and requests fail with a
500 *after* they started executing (what they made is kept, and Stripe stores the 500 under
the idempotency key and replays it). Three invoice runs leave exactly one customer and one
invoice per charged tenant; the same hand-made changes in Stripe are then named by
reconciliation, in exactly the same report as on the calm day.

Through the official SDK over HTTP to the emulator, with real Postgres; the invoice lines mart
is written by the tests (see test_stripe_invoicing_and_reconciliation.py).
"""

from __future__ import annotations

import logging
import re

import pytest

from billing.catalog import load_catalog
from billing.catalog_store import save_catalog
from billing.invoicing import InvoicingError, create_invoices
from billing.reconciliation import reconcile
from billing.stripe_client import metadata_of
from meterline.core.tenants import create_tenant
from tests.database import reset_database
from tests.integration.billing.conftest import admin
from tests.integration.billing.test_stripe_invoicing_and_reconciliation import (
    FAST,
    SEP,
    Mart,
    _three_tenants,
    cutoff,
    stripe_invoices,
)

INCIDENT_FAULTS = [
    # acme's customer is created, then the request fails: a stored 500 for its key
    {"status": 500, "count": 1, "path_prefix": "/v1/customers", "method": "POST"},
    # the first draft invoice (beta's: acme stopped at its customer) likewise
    {"status": 500, "count": 1, "path_prefix": "/v1/invoices", "method": "POST"},
    # and the second invoice item (gamma's base fee: eps's passes)
    {"status": 500, "count": 1, "path_prefix": "/v1/invoiceitems", "method": "POST", "skip": 1},
]


def _fresh_month(db, emulator) -> dict[str, int]:
    """A clean database and Stripe account with the month's tenants; their expected totals."""
    reset_database(db)
    save_catalog(db, load_catalog())
    admin(emulator, "POST", "reset")
    mart = Mart(db)
    expected = _three_tenants(db, mart)
    create_tenant(db, "eps", "starter", at=SEP)
    mart.put("eps", SEP, "starter", {})
    return {**expected, "eps": 2900}


def _bill_three_times(db, client, emulator, incident: bool) -> None:
    if incident:
        admin(emulator, "POST", "config", {"search_lag_seconds": 3600})
        for fault in INCIDENT_FAULTS:
            admin(emulator, "POST", "faults", {**fault, "mode": "during", "keep_changes": True})
        with pytest.raises(InvoicingError, match="re-run the partition to resume"):
            create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
        log = admin(emulator, "GET", "requests")["requests"]
        stored = [r for r in log if r["status"] == 500 and r["replayed"]]
        assert {r["path"].split("/")[2] for r in stored} == {
            "customers", "invoices", "invoiceitems",
        }, "each 500 was stored and replayed for its key"  # fmt: skip
        assert admin(emulator, "GET", "faults")["faults"] == []  # all three fired
    else:
        create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    third = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    assert third.count("unchanged") == 4


def _one_customer_and_invoice_per_tenant(client, expected: dict[str, int]) -> None:
    customers = list(client.v1.customers.list(params={"limit": 100}).auto_paging_iter())
    tenants = sorted(metadata_of(c)["meterline_tenant_id"] for c in customers)
    assert tenants == sorted(expected), "one Stripe customer per charged tenant"
    for tenant_id, total in expected.items():
        [invoice] = stripe_invoices(client, SEP, tenant_id)
        assert (invoice.status, invoice.total) == ("open", total), tenant_id
        items = client.v1.invoice_items.list(params={"invoice": invoice.id, "limit": 100})
        keys = [metadata_of(i)["line_key"] for i in items.auto_paging_iter()]
        assert len(keys) == len(set(keys)), f"a duplicate line on {tenant_id}'s invoice"
    assert stripe_invoices(client, SEP, "delta") == []  # owes nothing: never invoiced


def _hand_made_changes(client) -> dict[str, str]:
    """What finance does in the Stripe Dashboard; returns invoice id -> its role."""
    roles = {}
    acme = stripe_invoices(client, SEP, "acme")[0]
    client.v1.invoices.void_invoice(acme.id)  # voided, not replaced
    roles[acme.id] = "acme's invoice"
    beta = stripe_invoices(client, SEP, "beta")[0]
    client.v1.invoices.void_invoice(beta.id)  # voided and replaced by a hand-made invoice
    roles[beta.id] = "beta's invoice"
    hand = _finalized_by_hand(
        client, beta.customer, {"meterline_tenant_id": "beta", "meterline_period": "2026-09"},
        20000,
    )  # fmt: skip
    roles[hand] = "beta's hand-made invoice"
    delta = client.v1.customers.create(
        params={"name": "delta", "metadata": {"meterline_tenant_id": "delta"}}
    )
    extra = _finalized_by_hand(
        client, delta.id, {"meterline_tenant_id": "delta", "meterline_period": "2026-09"}, 5000
    )
    roles[extra] = "delta's hand-made invoice"
    gamma = stripe_invoices(client, SEP, "gamma")[0]
    roles[gamma.id] = "gamma's invoice"
    roles[_finalized_by_hand(client, gamma.customer, gamma.metadata.to_dict(), 2900)] = (
        "gamma's duplicate"
    )
    eps = stripe_invoices(client, SEP, "eps")[0]
    client.v1.invoices.mark_uncollectible(eps.id)
    roles[eps.id] = "eps's invoice"
    return roles


def _finalized_by_hand(client, customer: str, metadata: dict, amount: int) -> str:
    invoice = client.v1.invoices.create(params={"customer": customer, "metadata": metadata})
    client.v1.invoice_items.create(
        params={"customer": customer, "invoice": invoice.id, "amount": amount, "currency": "usd"}
    )
    client.v1.invoices.finalize_invoice(invoice.id)
    return invoice.id


def _report(db, client, tmp_path, roles: dict[str, str]) -> list[tuple]:
    """The reconciliation rows with Stripe's ids replaced by their roles (ids differ per run)."""
    result = reconcile(db, client, SEP, reports_dir=tmp_path)
    assert result.has_unexplained_differences
    ids = re.compile("|".join(map(re.escape, roles)))

    def named(text: str | None) -> str | None:
        return ids.sub(lambda m: roles[m.group(0)], text) if text else text

    return sorted(
        (r.tenant_id, r.category, r.expected_amount, r.stripe_amount, r.difference,
         named(r.stripe_invoice_id), r.stripe_status, named(r.explanation))
        for r in result.rows
    )  # fmt: skip


def test_an_incident_with_search_lag_and_stored_500s_changes_nothing_finance_sees(
    db, client, emulator, tmp_path, caplog
):
    expected = _fresh_month(db, emulator)
    _bill_three_times(db, client, emulator, incident=False)
    _one_customer_and_invoice_per_tenant(client, expected)
    calm = _report(db, client, tmp_path / "calm", _hand_made_changes(client))

    expected = _fresh_month(db, emulator)
    with caplog.at_level(logging.WARNING, logger="billing.invoicing.stripe_sync"):
        _bill_three_times(db, client, emulator, incident=True)
    _one_customer_and_invoice_per_tenant(client, expected)
    lagging = [r.getMessage() for r in caplog.records if "search disagrees" in r.getMessage()]
    assert any("customer search" in m and "acme" in m for m in lagging), (
        "the customer made during the 500 was found by the list, not by the lagging search"
    )
    assert any("invoice search" in m and "beta" in m for m in lagging)
    roles = _hand_made_changes(client)
    with caplog.at_level(logging.WARNING, logger="billing.reconciliation.stripe_invoices"):
        incident = _report(db, client, tmp_path / "incident", roles)
    assert any("not yet searchable" in r.getMessage() for r in caplog.records)

    assert incident == calm
    assert {(r[0], r[1]): r[2:6] for r in calm} == {
        ("acme", "status_issue"): (expected["acme"], 0, -expected["acme"], "acme's invoice"),
        ("beta", "amount_mismatch"): (
            expected["beta"], 20000, 20000 - expected["beta"], "beta's hand-made invoice",
        ),
        ("beta", "replaced"): (0, 0, 0, "beta's invoice"),
        ("delta", "unexpected_in_stripe"): (0, 5000, 5000, "delta's hand-made invoice"),
        ("gamma", "matched"): (2900, 2900, 0, "gamma's invoice"),
        ("gamma", "duplicate_in_stripe"): (0, 2900, 2900, "gamma's duplicate"),
        ("eps", "status_issue"): (2900, 2900, 0, "eps's invoice"),
    }  # fmt: skip
    explanations = {(r[0], r[1]): r[7] for r in calm}
    assert "replaced by beta's hand-made invoice" in explanations[("beta", "replaced")]
    assert "the first is gamma's invoice" in explanations[("gamma", "duplicate_in_stripe")]
