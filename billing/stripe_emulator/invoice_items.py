"""Invoice items: create (pending or on a draft), delete, list, and their invoice line shape."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from billing.stripe_emulator.failures import StripeFailure, missing_param
from billing.stripe_emulator.params import as_bool, as_int, as_metadata, reject_unimplemented
from billing.stripe_emulator.state import EmulatorState, new_id
from meterline.core import clock

_UNSUPPORTED = ("price_data", "pricing", "discounts", "tax_rates", "subscription")


def create_invoice_item(state: EmulatorState, params: dict[str, Any]) -> dict[str, Any]:
    customer_id = params.get("customer")
    if not customer_id:
        raise missing_param("customer")
    customer = state.customer(customer_id, "customer")
    for unsupported in _UNSUPPORTED:
        if unsupported in params:
            raise StripeFailure(
                400,
                f"{unsupported} is a valid Stripe parameter the Meterline emulator does not "
                "implement; use amount + currency",
                param=unsupported,
            )
    invoice = _draft_to_add_to(state, params.get("invoice"), customer)
    quantity = as_int(params, "quantity", 1)
    amount = _amount(params, quantity)
    unit_amount_decimal = params.get("unit_amount_decimal")
    if unit_amount_decimal is None:
        unit_amount_decimal = Decimal(amount) / max(quantity or 1, 1)
    currency = _currency(params, invoice)
    now = int(clock.timestamp())
    period = params.get("period") or {}
    item = {
        "id": new_id("ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer["id"],
        "date": now,
        "description": params.get("description"),
        "discountable": as_bool(params, "discountable", True),
        "discounts": [],
        "invoice": invoice["id"] if invoice else None,
        "livemode": False,
        "metadata": as_metadata(params) or {},
        "net_amount": amount,
        "parent": None,  # a one-off item (a subscription's has subscription_details)
        "period": {
            "start": int(period.get("start", now)),
            "end": int(period.get("end", now)),
        },
        # Stripe's 2025 shape: the unit price under ``pricing`` (price_details: the inline
        # price Stripe makes, not emulated, so null), no top-level unit_amount_decimal
        "pricing": {
            "type": "price_details",
            "price_details": None,
            "unit_amount_decimal": decimal_string(unit_amount_decimal),
        },
        "proration": False,
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "tax_rates": [],
        "test_clock": None,
    }
    state.data["invoiceitems"][item["id"]] = item
    return item


def decimal_string(value: object) -> str:
    """Stripe's decimal string: ``"12.5"``, ``"100"`` (no exponent, no trailing zeros)."""
    return format(Decimal(str(value)).normalize(), "f")


def _draft_to_add_to(
    state: EmulatorState, invoice_id: str | None, customer: dict[str, Any]
) -> dict[str, Any] | None:
    """The ``invoice`` an item goes on: the customer's, and still a draft (None: pending)."""
    if not invoice_id:
        return None
    invoice = state.invoice(invoice_id, "invoice")
    if invoice["customer"] != customer["id"]:
        raise StripeFailure(
            400,
            f"Invoice {invoice_id} belongs to customer {invoice['customer']}, not {customer['id']}",
            param="invoice",
        )
    if invoice["status"] != "draft":
        raise StripeFailure(
            400,
            "You can only add invoice items to draft invoices.",
            code="invoice_not_editable",
            param="invoice",
        )
    return invoice


def _amount(params: dict[str, Any], quantity: int) -> int:
    """``amount``, else ``unit_amount_decimal * quantity`` rounded half-up."""
    amount = as_int(params, "amount")
    if amount is not None:
        return amount
    unit_amount_decimal = params.get("unit_amount_decimal")
    if unit_amount_decimal is None:
        raise missing_param("amount")
    return int(
        (Decimal(str(unit_amount_decimal)) * quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    )


def _currency(params: dict[str, Any], invoice: dict[str, Any] | None) -> str:
    currency = (params.get("currency") or (invoice or {}).get("currency") or "").lower()
    if not currency:
        raise missing_param("currency")
    if invoice and currency != invoice["currency"]:
        raise StripeFailure(
            400,
            f"The currency of the invoice item ({currency}) must match the invoice's ({invoice['currency']}).",
            param="currency",
        )
    return currency


def delete_invoice_item(state: EmulatorState, item_id: str) -> dict[str, Any]:
    item = state.invoice_item(item_id)
    if item["invoice"] and state.data["invoices"][item["invoice"]]["status"] != "draft":
        raise StripeFailure(
            400,
            "Invoice items on finalized invoices cannot be deleted.",
            code="invoice_not_editable",
        )
    del state.data["invoiceitems"][item_id]
    return {"id": item_id, "object": "invoiceitem", "deleted": True}


def list_invoice_items(state: EmulatorState, params: dict[str, Any]) -> list[dict[str, Any]]:
    reject_unimplemented(params, ("created", "customer_account"))
    items = list(state.data["invoiceitems"].values())
    if params.get("customer"):
        items = [i for i in items if i["customer"] == params["customer"]]
    if params.get("invoice"):
        items = [i for i in items if i["invoice"] == params["invoice"]]
    pending = as_bool(params, "pending")
    if pending is not None:
        items = [i for i in items if (i["invoice"] is None) == pending]
    return items[::-1]


def line_item(item: dict[str, Any]) -> dict[str, Any]:
    """An invoice item as a line of its invoice (``invoice.lines``, ``/v1/invoices/x/lines``)."""
    return {
        "id": "il_" + item["id"][3:],
        "object": "line_item",
        "amount": item["amount"],
        "currency": item["currency"],
        "description": item["description"],
        "discount_amounts": [],
        "discountable": item["discountable"],
        "discounts": [],
        "invoice": item["invoice"],
        "livemode": False,
        "metadata": item["metadata"],
        "parent": {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": item["id"],
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
        },
        "period": item["period"],
        "pretax_credit_amounts": [],
        "pricing": item["pricing"],
        "quantity": item["quantity"],
        "quantity_decimal": item["quantity_decimal"],
        "subscription": None,
        "subtotal": item["amount"],  # before discounts and taxes (the emulator has neither)
        "taxes": [],
    }
