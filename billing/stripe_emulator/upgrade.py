"""Bring state saved by an older emulator to the current object shapes (on load).

Before the emulator followed Stripe's 2025 API shape, invoice items had a top-level
``unit_amount_decimal`` and no ``pricing``/``parent``/``quantity_decimal``, and invoices stored
``days_until_due`` and lacked the fields the SDK marks required. A state dir kept from then
(``.meterline/stripe``) would otherwise answer with 500s.
"""

from __future__ import annotations

from typing import Any

from billing.stripe_emulator.invoice_items import decimal_string
from billing.stripe_emulator.invoices import new_invoice_defaults


def upgrade(data: dict[str, Any]) -> bool:
    """Upgrade ``data`` in place; True when anything changed."""
    changed = False
    for item in data.get("invoiceitems", {}).values():
        if "pricing" not in item:
            unit = item.pop("unit_amount_decimal", None)
            if unit is None:
                unit = item["amount"] / max(item.get("quantity") or 1, 1)
            item["pricing"] = {
                "type": "price_details",
                "price_details": None,
                "unit_amount_decimal": decimal_string(unit),
            }
            item.setdefault("parent", None)
            item.setdefault("net_amount", item["amount"])
            item.setdefault("quantity_decimal", str(item.get("quantity") or 1))
            changed = True
    for invoice in data.get("invoices", {}).values():
        if "issuer" not in invoice:
            invoice["_days_until_due"] = invoice.pop("days_until_due", None)
            for field, value in new_invoice_defaults(invoice).items():
                invoice.setdefault(field, value)
            changed = True
    return changed
