"""The emulator's objects (customers, invoices, invoice items) and Stripe's rules for them.

State is plain JSON, written atomically to ``<state_dir>/state.json`` after every change, so
it survives restarts. Every public method runs under one lock (the emulator is for tests and
demos, not throughput).
"""

from __future__ import annotations

import json
import os
import secrets
import string
import threading
from pathlib import Path
from typing import Any

from billing.stripe_emulator.params import (
    ParamError,
    as_bool,
    as_int,
    as_metadata,
    parse_search_query,
)
from meterline.core import clock

_ALPHABET = string.ascii_letters + string.digits
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")


class StripeFailure(Exception):
    """A Stripe-shaped error: HTTP status + ``error`` object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.error: dict[str, Any] = {"type": type, "message": message}
        if code:
            self.error["code"] = code
            self.error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.error["param"] = param

    def body(self) -> dict[str, Any]:
        return {"error": self.error}


def new_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def missing(kind: str, object_id: str, param: str = "id") -> StripeFailure:
    return StripeFailure(
        404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


class EmulatorState:
    def __init__(self, state_dir: str | Path | None = None):
        self.lock = threading.RLock()
        self.path = Path(state_dir) / "state.json" if state_dir else None
        self.data: dict[str, Any] = self._empty()
        if self.path and self.path.exists():
            self.data = {**self._empty(), **json.loads(self.path.read_text())}

    @staticmethod
    def _empty() -> dict[str, Any]:
        return {
            "customers": {},
            "invoices": {},
            "invoiceitems": {},
            "idempotency": {},
            "invoice_numbers": {},
        }

    # persistence ------------------------------------------------------------------------
    def save(self) -> None:
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, separators=(",", ":")))
        os.replace(tmp, self.path)

    def reset(self) -> None:
        with self.lock:
            self.data = self._empty()
            self.save()

    # idempotency --------------------------------------------------------------------------
    def idempotent_result(self, key: str) -> dict[str, Any] | None:
        return self.data["idempotency"].get(key)

    def remember(self, key: str, record: dict[str, Any]) -> None:
        self.data["idempotency"][key] = record

    # customers ------------------------------------------------------------------------------
    def create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = {
            "id": new_id("cus"),
            "object": "customer",
            "address": params.get("address"),
            "balance": as_int(params, "balance", 0),
            "created": int(clock.timestamp()),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": params.get("description"),
            "email": params.get("email"),
            "invoice_prefix": params.get("invoice_prefix")
            or "".join(secrets.choice(string.ascii_uppercase) for _ in range(8)),
            "invoice_settings": params.get("invoice_settings")
            or {"custom_fields": None, "default_payment_method": None, "footer": None},
            "livemode": False,
            "metadata": as_metadata(params) or {},
            "name": params.get("name"),
            "phone": params.get("phone"),
            "preferred_locales": params.get("preferred_locales") or [],
            "shipping": params.get("shipping"),
            "tax_exempt": params.get("tax_exempt") or "none",
            "test_clock": None,
        }
        self.data["customers"][customer["id"]] = customer
        return customer

    def customer(self, customer_id: str, param: str = "id") -> dict[str, Any]:
        customer = self.data["customers"].get(customer_id)
        if customer is None:
            raise missing("customer", customer_id, param)
        return customer

    def update_customer(self, customer_id: str, params: dict[str, Any]) -> dict[str, Any]:
        customer = self.customer(customer_id)
        for field in ("email", "name", "description", "phone", "address", "shipping"):
            if field in params:
                customer[field] = params[field] or None
        metadata = as_metadata(params)
        if metadata is not None:
            _merge_metadata(customer, metadata)
        return customer

    # invoice items --------------------------------------------------------------------------
    def create_invoice_item(self, params: dict[str, Any]) -> dict[str, Any]:
        customer_id = params.get("customer")
        if not customer_id:
            raise StripeFailure(
                400, "Missing required param: customer.", code="parameter_missing", param="customer"
            )
        customer = self.customer(customer_id, "customer")
        for unsupported in ("price_data", "pricing", "discounts", "tax_rates", "subscription"):
            if unsupported in params:
                raise StripeFailure(
                    400,
                    f"{unsupported} is a valid Stripe parameter the Meterline emulator does not "
                    "implement; use amount + currency",
                    param=unsupported,
                )
        invoice_id = params.get("invoice")
        invoice = None
        if invoice_id:
            invoice = self.invoice_record(invoice_id, "invoice")
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
        quantity = as_int(params, "quantity", 1)
        amount = as_int(params, "amount")
        unit_amount_decimal = params.get("unit_amount_decimal")
        if amount is None:
            if unit_amount_decimal is None:
                raise StripeFailure(
                    400, "Missing required param: amount.", code="parameter_missing", param="amount"
                )
            from decimal import ROUND_HALF_UP, Decimal

            amount = int(
                (Decimal(str(unit_amount_decimal)) * quantity).quantize(
                    Decimal(1), rounding=ROUND_HALF_UP
                )
            )
        currency = (params.get("currency") or (invoice or {}).get("currency") or "").lower()
        if not currency:
            raise StripeFailure(
                400, "Missing required param: currency.", code="parameter_missing", param="currency"
            )
        if invoice and currency != invoice["currency"]:
            raise StripeFailure(
                400,
                f"The currency of the invoice item ({currency}) must match the invoice's ({invoice['currency']}).",
                param="currency",
            )
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
            "period": {
                "start": int(period.get("start", now)),
                "end": int(period.get("end", now)),
            },
            "proration": False,
            "quantity": quantity,
            "tax_rates": [],
            "test_clock": None,
            "unit_amount_decimal": str(unit_amount_decimal)
            if unit_amount_decimal is not None
            else str(amount // max(quantity or 1, 1)),
        }
        self.data["invoiceitems"][item["id"]] = item
        return item

    def invoice_item(self, item_id: str) -> dict[str, Any]:
        item = self.data["invoiceitems"].get(item_id)
        if item is None:
            raise missing("invoiceitem", item_id)
        return item

    def delete_invoice_item(self, item_id: str) -> dict[str, Any]:
        item = self.invoice_item(item_id)
        if item["invoice"] and self.data["invoices"][item["invoice"]]["status"] != "draft":
            raise StripeFailure(
                400,
                "Invoice items on finalized invoices cannot be deleted.",
                code="invoice_not_editable",
            )
        del self.data["invoiceitems"][item_id]
        return {"id": item_id, "object": "invoiceitem", "deleted": True}

    def list_invoice_items(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        reject_unimplemented(params, ("created", "customer_account"))
        items = list(self.data["invoiceitems"].values())
        if params.get("customer"):
            items = [i for i in items if i["customer"] == params["customer"]]
        if params.get("invoice"):
            items = [i for i in items if i["invoice"] == params["invoice"]]
        pending = as_bool(params, "pending")
        if pending is not None:
            items = [i for i in items if (i["invoice"] is None) == pending]
        return items[::-1]

    # invoices -------------------------------------------------------------------------------
    def create_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        customer_id = params.get("customer")
        if not customer_id:
            raise StripeFailure(
                400, "Missing required param: customer.", code="parameter_missing", param="customer"
            )
        customer = self.customer(customer_id, "customer")
        for unsupported in (
            "subscription",
            "from_invoice",
            "discounts",
            "automatic_tax",
            "default_tax_rates",
        ):
            if unsupported in params and params[unsupported] not in (
                "",
                None,
                {"enabled": "false"},
            ):
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
        now = int(clock.timestamp())
        due_date = as_int(params, "due_date")
        days = as_int(params, "days_until_due")
        if collection_method == "charge_automatically" and (due_date or days):
            raise StripeFailure(
                400,
                "due_date and days_until_due are only allowed with collection_method=send_invoice",
                param="due_date" if due_date else "days_until_due",
            )
        currency = (params.get("currency") or customer.get("currency") or "usd").lower()
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
            "currency": currency,
            "customer": customer["id"],
            "customer_email": customer.get("email"),
            "customer_name": customer.get("name"),
            "days_until_due": days,
            "description": params.get("description"),
            "due_date": due_date,
            "ending_balance": None,
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
        }
        self.data["invoices"][invoice["id"]] = invoice
        if behavior == "include":
            for item in self.data["invoiceitems"].values():
                if (
                    item["customer"] == customer["id"]
                    and item["invoice"] is None
                    and item["currency"] == currency
                ):
                    item["invoice"] = invoice["id"]
        self._recompute(invoice)
        return invoice

    def invoice_record(self, invoice_id: str, param: str = "id") -> dict[str, Any]:
        invoice = self.data["invoices"].get(invoice_id)
        if invoice is None:
            raise missing("invoice", invoice_id, param)
        return invoice

    def items_of(self, invoice_id: str) -> list[dict[str, Any]]:
        return [i for i in self.data["invoiceitems"].values() if i["invoice"] == invoice_id]

    def _recompute(self, invoice: dict[str, Any]) -> None:
        if invoice["status"] != "draft":
            return  # a finalized invoice's amounts never change
        total = sum(i["amount"] for i in self.items_of(invoice["id"]))
        invoice["subtotal"] = invoice["total"] = total
        invoice["amount_due"] = invoice["amount_remaining"] = max(total, 0)

    def render_invoice(self, invoice: dict[str, Any]) -> dict[str, Any]:
        self._recompute(invoice)
        lines = [self.line_item(item) for item in self.items_of(invoice["id"])]
        rendered = dict(invoice)
        rendered["lines"] = {
            "object": "list",
            "data": lines[:10],
            "has_more": len(lines) > 10,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice['id']}/lines",
        }
        return rendered

    @staticmethod
    def line_item(item: dict[str, Any]) -> dict[str, Any]:
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
            "pricing": {
                "type": "price_details",
                "unit_amount_decimal": item["unit_amount_decimal"],
            },
            "quantity": item["quantity"],
            "taxes": [],
        }

    def update_invoice(self, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
        invoice = self.invoice_record(invoice_id)
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
            _merge_metadata(invoice, metadata)
        for field in ("description", "footer"):
            if field in params:
                invoice[field] = params[field] or None
        if "auto_advance" in params:
            invoice["auto_advance"] = as_bool(params, "auto_advance")
        if "due_date" in params:
            invoice["due_date"] = as_int(params, "due_date")
        if "days_until_due" in params:
            invoice["days_until_due"] = as_int(params, "days_until_due")
        return invoice

    def delete_invoice(self, invoice_id: str) -> dict[str, Any]:
        invoice = self.invoice_record(invoice_id)
        if invoice["status"] != "draft":
            raise StripeFailure(
                400, "You can only delete draft invoices.", code="invoice_not_editable"
            )
        for item in self.items_of(invoice_id):
            del self.data["invoiceitems"][item["id"]]
        del self.data["invoices"][invoice_id]
        return {"id": invoice_id, "object": "invoice", "deleted": True}

    def finalize(self, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
        invoice = self.invoice_record(invoice_id)
        if invoice["status"] != "draft":
            raise StripeFailure(
                400,
                f"This invoice is already finalized (status {invoice['status']}); you can't "
                "re-finalize a non-draft invoice.",
            )
        self._recompute(invoice)
        now = int(clock.timestamp())
        customer = self.data["customers"][invoice["customer"]]
        seq = self.data["invoice_numbers"].get(customer["id"], 0) + 1
        self.data["invoice_numbers"][customer["id"]] = seq
        invoice["number"] = f"{customer['invoice_prefix']}-{seq:04d}"
        invoice["status"] = "open"
        invoice["status_transitions"]["finalized_at"] = now
        invoice["hosted_invoice_url"] = f"https://invoice.stripe.com/i/emulator/{invoice_id}"
        if "auto_advance" in params:
            invoice["auto_advance"] = as_bool(params, "auto_advance")
        if invoice["collection_method"] == "send_invoice" and invoice["due_date"] is None:
            invoice["due_date"] = now + 86400 * (invoice["days_until_due"] or 30)
        if invoice["amount_due"] == 0:
            invoice["status"] = "paid"
            invoice["status_transitions"]["paid_at"] = now
        return invoice

    def void(self, invoice_id: str) -> dict[str, Any]:
        invoice = self.invoice_record(invoice_id)
        if invoice["status"] not in ("open", "uncollectible"):
            raise StripeFailure(
                400,
                f"You can only void open or uncollectible invoices; this invoice is {invoice['status']}.",
            )
        invoice["status"] = "void"
        invoice["amount_remaining"] = 0
        invoice["status_transitions"]["voided_at"] = int(clock.timestamp())
        return invoice

    def mark_uncollectible(self, invoice_id: str) -> dict[str, Any]:
        invoice = self.invoice_record(invoice_id)
        if invoice["status"] != "open":
            raise StripeFailure(
                400,
                f"You can only mark open invoices as uncollectible; this invoice is {invoice['status']}.",
            )
        invoice["status"] = "uncollectible"
        invoice["status_transitions"]["marked_uncollectible_at"] = int(clock.timestamp())
        return invoice

    def pay(self, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
        invoice = self.invoice_record(invoice_id)
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

    def list_invoices(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        reject_unimplemented(params, ("created", "due_date", "subscription", "customer_account"))
        invoices = list(self.data["invoices"].values())
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
            invoices = [
                i for i in invoices if i["collection_method"] == params["collection_method"]
            ]
        return invoices[::-1]

    def list_customers(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        reject_unimplemented(params, ("created", "test_clock"))
        customers = list(self.data["customers"].values())
        if params.get("email"):
            customers = [c for c in customers if c.get("email") == params["email"]]
        return customers[::-1]

    def search(self, kind: str, query: str) -> list[dict[str, Any]]:
        fields = {
            "customers": {"email", "name", "phone"},
            "invoices": {"customer", "status", "number", "currency"},
        }[kind]
        joiner, clauses = parse_search_query(query, fields)

        def matches(obj: dict[str, Any]) -> bool:
            results = []
            for field, value in clauses:
                if field.startswith("metadata."):
                    results.append(obj["metadata"].get(field[9:]) == value)
                else:
                    results.append(str(obj.get(field) or "") == value)
            return all(results) if joiner == "AND" else any(results)

        return [obj for obj in self.data[kind].values() if matches(obj)][::-1]


def _merge_metadata(obj: dict[str, Any], metadata: dict[str, str]) -> None:
    if not metadata:
        obj["metadata"] = {}
        return
    for key, value in metadata.items():
        if value == "":
            obj["metadata"].pop(key, None)
        else:
            obj["metadata"][key] = value


def reject_unimplemented(params: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if params.get(name) not in (None, ""):
            raise ParamError(
                f"{name} is a valid Stripe parameter the Meterline emulator does not implement "
                "for this call; filter client-side instead",
                name,
            )
