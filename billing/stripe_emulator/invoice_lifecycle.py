"""Invoice status changes: finalize, void, mark uncollectible, pay (Stripe's allowed moves)."""

from __future__ import annotations

from typing import Any

from billing.stripe_emulator.customer_balance import apply_on_finalize
from billing.stripe_emulator.failures import StripeFailure
from billing.stripe_emulator.invoices import recompute
from billing.stripe_emulator.params import as_bool
from billing.stripe_emulator.state import EmulatorState
from meterline.core import clock


def finalize(state: EmulatorState, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
    invoice = state.invoice(invoice_id)
    if invoice["status"] != "draft":
        raise StripeFailure(
            400,
            f"This invoice is already finalized (status {invoice['status']}); you can't "
            "re-finalize a non-draft invoice.",
        )
    recompute(state, invoice)
    now = int(clock.timestamp())
    customer = state.data["customers"][invoice["customer"]]
    seq = state.data["invoice_numbers"].get(customer["id"], 0) + 1
    state.data["invoice_numbers"][customer["id"]] = seq
    invoice["number"] = f"{customer['invoice_prefix']}-{seq:04d}"
    invoice["status"] = "open"
    invoice["status_transitions"]["finalized_at"] = now
    invoice["hosted_invoice_url"] = f"https://invoice.stripe.com/i/emulator/{invoice_id}"
    if "auto_advance" in params:
        invoice["auto_advance"] = as_bool(params, "auto_advance")
    if invoice["collection_method"] == "send_invoice" and invoice["due_date"] is None:
        invoice["due_date"] = now + 86400 * (invoice.get("_days_until_due") or 30)
    apply_on_finalize(state, invoice)  # the customer balance, Stripe's minimum charge
    if invoice["status"] == "open" and invoice["amount_due"] == 0:
        invoice["status"] = "paid"
        invoice["status_transitions"]["paid_at"] = now
    return invoice


def void(state: EmulatorState, invoice_id: str) -> dict[str, Any]:
    invoice = state.invoice(invoice_id)
    if invoice["status"] not in ("open", "uncollectible"):
        raise StripeFailure(
            400,
            f"You can only void open or uncollectible invoices; this invoice is {invoice['status']}.",
        )
    invoice["status"] = "void"
    invoice["amount_remaining"] = 0
    invoice["status_transitions"]["voided_at"] = int(clock.timestamp())
    return invoice


def mark_uncollectible(state: EmulatorState, invoice_id: str) -> dict[str, Any]:
    invoice = state.invoice(invoice_id)
    if invoice["status"] != "open":
        raise StripeFailure(
            400,
            f"You can only mark open invoices as uncollectible; this invoice is {invoice['status']}.",
        )
    invoice["status"] = "uncollectible"
    invoice["status_transitions"]["marked_uncollectible_at"] = int(clock.timestamp())
    return invoice


def pay(state: EmulatorState, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
    invoice = state.invoice(invoice_id)
    if invoice["status"] == "paid":
        raise StripeFailure(400, "Invoice is already paid.")
    if invoice["status"] not in ("open", "uncollectible"):
        raise StripeFailure(
            400,
            f"You can only pay open or uncollectible invoices; this invoice is {invoice['status']}.",
        )
    as_bool(params, "forgive", False)  # validated; forgiving has no effect without charges
    invoice["status"] = "paid"
    invoice["amount_paid"] = invoice["amount_due"]
    invoice["amount_remaining"] = 0
    invoice["attempted"] = True
    invoice["attempt_count"] += 1
    invoice["status_transitions"]["paid_at"] = int(clock.timestamp())
    return invoice
