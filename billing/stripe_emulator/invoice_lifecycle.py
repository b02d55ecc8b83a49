"""Invoice status changes: finalize, void, mark uncollectible, pay (Stripe's allowed moves),
each with its event (``invoice.finalized``, ``invoice.paid``, ``invoice.payment_failed``,
``invoice.voided``, ``invoice.marked_uncollectible``).

Payments: ``pay`` succeeds, unless ``payment_method`` is one of Stripe's declining test
payment methods (:data:`DECLINING_PAYMENT_METHODS`): then the attempt is counted, the invoice
stays open, ``invoice.payment_failed`` is sent and the call fails with a 402 ``card_declined``,
as Stripe does. ``collect`` is what Stripe does by itself for an auto-advancing
``charge_automatically`` invoice (the emulator's ``POST /_emulator/collect``)."""

from __future__ import annotations

from typing import Any

from billing.stripe_emulator.customer_balance import apply_on_finalize
from billing.stripe_emulator.events import emit_invoice_event
from billing.stripe_emulator.failures import StripeFailure
from billing.stripe_emulator.invoices import recompute
from billing.stripe_emulator.params import as_bool
from billing.stripe_emulator.state import EmulatorState
from meterline.core import clock

# Stripe's test payment methods whose charge is declined
DECLINING_PAYMENT_METHODS = ("pm_card_chargeCustomerFail", "pm_card_visa_chargeDeclined")


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
    emit_invoice_event(state, "invoice.finalized", invoice)
    if invoice["status"] == "open" and invoice["amount_due"] == 0:
        invoice["status"] = "paid"
        invoice["status_transitions"]["paid_at"] = now
    if invoice["status"] == "paid":  # nothing left to pay, or below the minimum charge
        emit_invoice_event(state, "invoice.paid", invoice)
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
    emit_invoice_event(state, "invoice.voided", invoice)
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
    emit_invoice_event(state, "invoice.marked_uncollectible", invoice)
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
    if params.get("payment_method") in DECLINING_PAYMENT_METHODS:
        fail_payment(state, invoice)
        raise StripeFailure(402, "Your card was declined.", type="card_error", code="card_declined")
    return _paid(state, invoice)


def _paid(state: EmulatorState, invoice: dict[str, Any]) -> dict[str, Any]:
    invoice["status"] = "paid"
    invoice["amount_paid"] = invoice["amount_due"]
    invoice["amount_remaining"] = 0
    invoice["attempted"] = True
    invoice["attempt_count"] += 1
    invoice["status_transitions"]["paid_at"] = int(clock.timestamp())
    emit_invoice_event(state, "invoice.paid", invoice)
    return invoice


def fail_payment(state: EmulatorState, invoice: dict[str, Any]) -> dict[str, Any]:
    """A declined payment attempt: counted, the invoice stays open, the event is sent."""
    invoice["attempted"] = True
    invoice["attempt_count"] += 1
    emit_invoice_event(state, "invoice.payment_failed", invoice)
    return invoice


def collect(state: EmulatorState, invoice_id: str | None, outcome: str) -> list[dict[str, Any]]:
    """Stripe's automatic collection, now: every open ``charge_automatically`` invoice with
    ``auto_advance`` (or only ``invoice_id``, which must be one) is charged, and the charge
    ``outcome`` is ``paid`` or ``payment_failed``. Returns the invoices it touched."""
    if outcome not in ("paid", "payment_failed"):
        raise ValueError("outcome must be paid or payment_failed")
    due = [
        i for i in state.data["invoices"].values()
        if i["status"] == "open" and i["collection_method"] == "charge_automatically"
        and i["auto_advance"] and invoice_id in (None, i["id"])
    ]  # fmt: skip
    if invoice_id is not None and not due:
        raise ValueError(
            f"invoice {invoice_id} is not an open, auto-advancing charge_automatically invoice"
        )
    return [_paid(state, i) if outcome == "paid" else fail_payment(state, i) for i in due]
