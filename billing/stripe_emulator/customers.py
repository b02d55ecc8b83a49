"""Customers: create, retrieve, update, delete, list."""

from __future__ import annotations

import secrets
import string
from typing import Any

from billing.stripe_emulator.params import as_int, as_metadata, reject_unimplemented
from billing.stripe_emulator.state import EmulatorState, merge_metadata, new_id
from meterline.core import clock


def create_customer(state: EmulatorState, params: dict[str, Any]) -> dict[str, Any]:
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
    state.data["customers"][customer["id"]] = customer
    return customer


def update_customer(
    state: EmulatorState, customer_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    customer = state.customer(customer_id)
    for field in ("email", "name", "description", "phone", "address", "shipping"):
        if field in params:
            customer[field] = params[field] or None
    metadata = as_metadata(params)
    if metadata is not None:
        merge_metadata(customer, metadata)
    return customer


def list_customers(state: EmulatorState, params: dict[str, Any]) -> list[dict[str, Any]]:
    reject_unimplemented(params, ("created", "test_clock"))
    customers = list(state.data["customers"].values())
    if params.get("email"):
        customers = [c for c in customers if c.get("email") == params["email"]]
    return customers[::-1]


def retrieve_customer(state: EmulatorState, customer_id: str) -> dict[str, Any]:
    """The customer; a deleted one is answered as Stripe does, ``{"deleted": true}``."""
    if customer_id in state.data["deleted_customers"]:
        return deleted(customer_id)
    return state.customer(customer_id)


def delete_customer(state: EmulatorState, customer_id: str) -> dict[str, Any]:
    """Permanently delete the customer (its invoices stay, as in Stripe); a second delete is
    a 404."""
    state.customer(customer_id)
    del state.data["customers"][customer_id]
    state.data["deleted_customers"][customer_id] = int(clock.timestamp())
    return deleted(customer_id)


def deleted(customer_id: str) -> dict[str, Any]:
    return {"id": customer_id, "object": "customer", "deleted": True}
