"""Invoices: create, render (amounts and lines), update, delete a draft, list.

Status changes (finalize, void, mark uncollectible, pay) are in ``invoice_lifecycle``.
"""

from __future__ import annotations

from typing import Any

from billing.stripe_emulator.customer_balance import balance_for
from billing.stripe_emulator.failures import StripeFailure, missing_param
from billing.stripe_emulator.invoice_items import line_item
from billing.stripe_emulator.params import (
    as_bool,
    as_int,
    as_metadata,
    in_created_range,
    reject_unimplemented,
)
from billing.stripe_emulator.state import EmulatorState, merge_metadata, new_id
from meterline.core import clock

INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
_UNSUPPORTED = ("subscription", "from_invoice", "discounts", "automatic_tax", "default_tax_rates")


def create_invoice(state: EmulatorState, params: dict[str, Any]) -> dict[str, Any]:
    customer_id = params.get("customer")
    if not customer_id:
        raise missing_param("customer")
    customer = state.customer(customer_id, "customer")
    for unsupported in _UNSUPPORTED:
        if unsupported in params and params[unsupported] not in ("", None, {"enabled": "false"}):
            raise StripeFailure(
                400,
                f"{unsupported} is a valid Stripe parameter the Meterline emulator does not implement",
                param=unsupported,
            )
    behavior = params.get("pending_invoice_items_behavior") or "exclude"
    if behavior not in ("exclude", "include"):
        raise StripeFailure(
            400,
            "Invalid pending_invoice_items_behavior: must be one of exclude, include",
            param="pending_invoice_items_behavior",
        )
    collection_method = params.get("collection_method") or "charge_automatically"
    if collection_method not in ("charge_automatically", "send_invoice"):
        raise StripeFailure(400, "Invalid collection_method", param="collection_method")
    due_date = as_int(params, "due_date")
    days = as_int(params, "days_until_due")
    if collection_method == "charge_automatically" and (due_date or days):
        raise StripeFailure(
            400,
            "due_date and days_until_due are only allowed with collection_method=send_invoice",
            param="due_date" if due_date else "days_until_due",
        )
    if collection_method == "send_invoice" and due_date is None and days is None:
        raise StripeFailure(
            400,
            "Invoices with collection_method=send_invoice need days_until_due (or due_date)",
            code="parameter_missing",
            param="days_until_due",
        )
    invoice = _new_invoice(customer, params, collection_method, due_date, days)
    state.data["invoices"][invoice["id"]] = invoice
    if behavior == "include":
        for item in state.data["invoiceitems"].values():
            if (
                item["customer"] == customer["id"]
                and item["invoice"] is None
                and item["currency"] == invoice["currency"]
            ):
                item["invoice"] = invoice["id"]
    recompute(state, invoice)
    return invoice


def _new_invoice(
    customer: dict[str, Any],
    params: dict[str, Any],
    collection_method: str,
    due_date: int | None,
    days: int | None,
) -> dict[str, Any]:
    now = int(clock.timestamp())
    invoice = {
        "id": new_id("in"),
        "object": "invoice",
        "account_country": "US",
        "account_name": "Meterline (Stripe emulator)",
        "amount_due": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": as_bool(params, "auto_advance", False),
        "billing_reason": "manual",
        "collection_method": collection_method,
        "created": now,
        "currency": (params.get("currency") or customer.get("currency") or "usd").lower(),
        "customer": customer["id"],
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_tax_exempt": customer.get("tax_exempt"),
        "description": params.get("description"),
        "due_date": due_date,
        "ending_balance": None,  # set when finalized
        "footer": params.get("footer"),
        "hosted_invoice_url": None,
        "livemode": False,
        "metadata": as_metadata(params) or {},
        "number": None,
        "period_end": now,
        "period_start": now,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": 0,
        "total": 0,
        "webhooks_delivered_at": now,
        # not part of Stripe's invoice object (API 2025+): kept to compute due_date, and
        # never rendered (``render_invoice`` drops ``_`` fields)
        "_days_until_due": days,
    }
    invoice.update(new_invoice_defaults(invoice))
    return invoice


def new_invoice_defaults(invoice: dict[str, Any]) -> dict[str, Any]:
    """The fields Stripe's invoice requires that start the same on every emulated invoice
    (no tax, discounts, shipping, credit notes or customer balance)."""
    return {
        "amount_overpaid": 0,
        "amount_shipping": 0,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "default_tax_rates": [],
        "discounts": [],
        "issuer": {"type": "self"},
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "starting_balance": 0,
        "subtotal_excluding_tax": invoice.get("subtotal", 0),
        "total_discount_amounts": [],
        "total_excluding_tax": invoice.get("total", 0),
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
    }


def recompute(state: EmulatorState, invoice: dict[str, Any]) -> None:
    if invoice["status"] != "draft":
        return  # a finalized invoice's amounts never change
    total = sum(i["amount"] for i in state.items_of(invoice["id"]))
    for field in ("subtotal", "subtotal_excluding_tax", "total", "total_excluding_tax"):
        invoice[field] = total
    # a draft shows the customer's current balance; finalizing applies it (customer_balance)
    invoice["starting_balance"] = balance_for(state, invoice)
    due = max(total + invoice["starting_balance"], 0)
    invoice["amount_due"] = invoice["amount_remaining"] = due


def render_invoice(state: EmulatorState, invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice as the API returns it: current amounts and its first ten lines (a list
    object: ``object``, ``data``, ``has_more``, ``url``; no ``total_count``, as Stripe)."""
    recompute(state, invoice)
    lines = [line_item(item) for item in state.items_of(invoice["id"])]
    rendered = {k: v for k, v in invoice.items() if not k.startswith("_")}
    rendered["lines"] = {
        "object": "list",
        "data": lines[:10],
        "has_more": len(lines) > 10,
        "url": f"/v1/invoices/{invoice['id']}/lines",
    }
    return rendered


def update_invoice(state: EmulatorState, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
    invoice = state.invoice(invoice_id)
    always = {"metadata", "description", "footer", "expand"}
    if invoice["status"] != "draft":
        for name in params:
            if name not in always and name != "auto_advance":
                raise StripeFailure(
                    400,
                    f"Finalized invoices can't be updated in this way: {name} can only be "
                    "changed on a draft invoice",
                    code="invoice_not_editable",
                    param=name,
                )
    metadata = as_metadata(params)
    if metadata is not None:
        merge_metadata(invoice, metadata)
    for field in ("description", "footer"):
        if field in params:
            invoice[field] = params[field] or None
    if "auto_advance" in params:
        invoice["auto_advance"] = as_bool(params, "auto_advance")
    if "due_date" in params:
        invoice["due_date"] = as_int(params, "due_date")
    if "days_until_due" in params:
        invoice["_days_until_due"] = as_int(params, "days_until_due")
    return invoice


def delete_invoice(state: EmulatorState, invoice_id: str) -> dict[str, Any]:
    invoice = state.invoice(invoice_id)
    if invoice["status"] != "draft":
        raise StripeFailure(400, "You can only delete draft invoices.", code="invoice_not_editable")
    for item in state.items_of(invoice_id):
        del state.data["invoiceitems"][item["id"]]
    del state.data["invoices"][invoice_id]
    return {"id": invoice_id, "object": "invoice", "deleted": True}


def list_invoices(state: EmulatorState, params: dict[str, Any]) -> list[dict[str, Any]]:
    reject_unimplemented(params, ("due_date", "subscription", "customer_account"))
    invoices = [i for i in state.data["invoices"].values() if in_created_range(i, params)]
    if params.get("customer"):
        invoices = [i for i in invoices if i["customer"] == params["customer"]]
    if params.get("status"):
        if params["status"] not in INVOICE_STATUSES:
            raise StripeFailure(
                400,
                f"Invalid status: must be one of {', '.join(INVOICE_STATUSES)}",
                param="status",
            )
        invoices = [i for i in invoices if i["status"] == params["status"]]
    if params.get("collection_method"):
        invoices = [i for i in invoices if i["collection_method"] == params["collection_method"]]
    return invoices[::-1]
