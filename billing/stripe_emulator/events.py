"""Stripe events: what changed, as Stripe reports it (``evt_...``, ``type``, ``data.object``,
``created``, ``api_version``), kept in the state and queued for the webhook endpoint.

An event carries the object as it was rendered when the change happened. Events are queued
on ``state.outbox`` (in memory); the server hands them to ``webhooks.WebhookSender`` after
the request, which signs and posts them to the configured endpoint.
"""

from __future__ import annotations

from typing import Any

import stripe

from billing.stripe_emulator.invoices import render_invoice
from billing.stripe_emulator.params import reject_unimplemented
from billing.stripe_emulator.state import EmulatorState, new_id
from billing.stripe_emulator.webhooks import webhook_targets
from meterline.core import clock

KEPT_EVENTS = 1000  # the newest events kept in the state (Stripe keeps 30 days)


def api_version() -> str:
    """The API version the emulated account is pinned to: the SDK's own."""
    return stripe.api_version


def emit_invoice_event(state: EmulatorState, event_type: str, invoice: dict[str, Any]) -> None:
    """Record ``event_type`` (``invoice.paid`` ...) for ``invoice`` and queue its delivery."""
    event = {
        "id": new_id("evt"),
        "object": "event",
        "account": None,
        "api_version": api_version(),
        "context": None,
        "created": int(clock.timestamp()),
        "data": {"object": render_invoice(state, invoice)},
        "livemode": False,
        "pending_webhooks": len(webhook_targets(state.data, event_type)),
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    events = state.data.setdefault("events", [])
    events.append(event)
    del events[:-KEPT_EVENTS]
    state.outbox.append(event)


def find_event(state: EmulatorState, event_id: str) -> dict[str, Any] | None:
    return next((e for e in state.data.get("events", []) if e["id"] == event_id), None)


def list_events(state: EmulatorState, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Newest first; ``type`` filters (Stripe's ``types`` and ``created`` are not emulated)."""
    reject_unimplemented(params, ("types", "created", "delivery_success"))
    found = state.data.get("events", [])
    if params.get("type"):
        found = [e for e in found if e["type"] == params["type"]]
    return found[::-1]
