"""A negative month: its credit on the Stripe customer balance, issued once.

When a month's total (its own lines plus the adjustments carried to it) is negative, no
invoice is made: ``-total`` is credited to the customer balance with
``customers.balance_transactions.create`` (Stripe applies the balance to the next invoices by
itself). Recorded ``crediting`` first and ``credited`` with the transaction's id after; the
month's credit is looked up (a list, consistent after writes) before one is created, so a crash
or a lost answer is resumed, never credited twice. Why the balance and not a credit note: see
docs/billing.md.
"""

from __future__ import annotations

from typing import Any

from billing.invoicing import store
from billing.invoicing.errors import InvoicingError
from billing.invoicing.expected import ExpectedLine
from billing.invoicing.report import TenantInvoice
from billing.invoicing.stripe_sync import StripeSync
from billing.stripe_client import metadata_of


def credit_month(
    engine: Any,
    sync: StripeSync,
    tenant_id: str,
    customer_id: str,
    lines: list[ExpectedLine],
    currency: str,
    total: int,
) -> TenantInvoice:
    """Credit the month's negative ``total`` to the customer balance; record each step."""
    with engine.begin() as conn:
        store.record_invoice(
            conn, tenant_id, sync.period, status="crediting", currency=currency,
            amount_due=total, usage_cutoff=sync.usage_cutoff, stripe_customer_id=customer_id,
        )  # fmt: skip
        store.record_lines(conn, tenant_id, sync.period, lines, {})
    txn = _credit_once(sync, tenant_id, customer_id, total, currency)
    with engine.begin() as conn:
        store.record_invoice(
            conn, tenant_id, sync.period, status="credited", currency=currency, amount_due=total,
            usage_cutoff=sync.usage_cutoff, stripe_customer_id=customer_id,
            stripe_balance_transaction_id=txn.id,
        )  # fmt: skip
    return TenantInvoice(
        tenant_id, "credited", "credited", currency, total, None, customer_id, list(lines)
    )


def require_no_credit(sync: StripeSync, tenant_id: str, customer_id: str) -> None:
    """A month recorded ``crediting`` that owes money now is invoiced only if no credit was
    issued before the crash (else it would be credited and invoiced)."""
    issued = month_credit(sync, tenant_id, customer_id)
    if issued is not None:
        raise InvoicingError(
            f"tenant {tenant_id!r} was credited {issued.amount} on the customer balance for "
            f"{sync.tag} ({issued.id}), but the month owes money now, so it is not invoiced "
            "on top of the credit; settle the month by hand in Stripe and meterline.invoices"
        )


def month_credit(sync: StripeSync, tenant_id: str, customer_id: str) -> Any | None:
    """This month's credit on the customer balance, if one was issued."""
    page = sync.call(
        "balance transaction list",
        sync.client.v1.customers.balance_transactions.list,
        customer_id,
        params={"limit": 100},
    )
    for txn in page.auto_paging_iter():
        if (
            txn.type == "adjustment"
            and metadata_of(txn).get("meterline_period") == sync.tag
            and sync.ours(txn, tenant_id)
        ):
            return txn
    return None


def _credit_once(sync: StripeSync, tenant_id: str, customer_id: str, amount: int, currency: str):
    """Credit ``-amount`` (``amount`` < 0) once per month: an existing credit of the month is
    adopted (and must be of the same amount)."""
    found = month_credit(sync, tenant_id, customer_id)
    if found is not None:
        if found.amount != amount:
            raise InvoicingError(
                f"tenant {tenant_id!r} already has a {sync.tag} customer balance credit "
                f"{found.id} of {found.amount}, but {amount} ({currency}) is owed now; "
                "check the customer balance in Stripe - the difference is not credited twice"
            )
        return found
    return sync.call(
        "balance transaction create",
        sync.client.v1.customers.balance_transactions.create,
        customer_id,
        params={
            "amount": amount,
            "currency": currency.lower(),
            "description": f"Meterline credit for {sync.tag} (prior-period adjustments)",
            "metadata": {
                "meterline_tenant_id": tenant_id,
                "meterline_install": sync.install,
                "meterline_period": sync.tag,
            },
        },
        options={"idempotency_key": sync.key(tenant_id, sync.tag, "balance_credit", amount)},
    )
