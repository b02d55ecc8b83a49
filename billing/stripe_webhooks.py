"""Stripe webhooks in: verify the signature, process each event once, move the invoice's status.

``verify(payload, signature, secret)`` checks the ``Stripe-Signature`` header with the official
SDK (``stripe.Webhook.construct_event``: HMAC-SHA256 with the endpoint's secret, and a
timestamp no older than five minutes, so a captured request cannot be replayed later).
``apply_event`` then records the event id in ``meterline.stripe_webhook_events`` and applies
it in the same transaction, so a redelivered (or replayed) event changes nothing.

Only invoices of this installation are touched: the event's invoice must carry our
``metadata.meterline_install`` and be the ``stripe_invoice_id`` recorded in
``meterline.invoices`` for the tenant it names. The status moves as
``meterline.next_invoice_status`` allows, so events arriving out of order never move a paid
invoice back to open (see migration ``0011_invoice_collection``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import stripe
from sqlalchemy import Connection, Engine, text

from meterline.core import clock

# event type -> the status it tells (meterline.invoices.status)
INVOICE_EVENTS = {
    "invoice.finalized": "open",
    "invoice.paid": "paid",
    "invoice.payment_failed": "payment_failed",
    "invoice.voided": "void",
    "invoice.marked_uncollectible": "uncollectible",
}


class WebhookRefused(ValueError):
    """The request is not a genuine Stripe event for this endpoint (bad or missing signature,
    stale timestamp, not an event). The message is for the log; the caller answers 400."""


@dataclass(frozen=True)
class StatusChange:
    """An invoice now in the status an event told (what outgoing events are made of)."""

    event_type: str
    tenant_id: str
    period: date
    stripe_invoice_id: str
    status: str
    invoice: dict[str, Any]  # the event's invoice object


@dataclass(frozen=True)
class WebhookOutcome:
    event_id: str
    event_type: str
    outcome: str  # applied | unchanged | ignored | duplicate
    detail: str
    change: StatusChange | None = None


def verify(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event in ``payload``, once its signature is verified with ``secret``."""
    try:
        stripe.Webhook.construct_event(payload, signature, secret)
        event = json.loads(payload)
    except stripe.SignatureVerificationError as exc:
        raise WebhookRefused(f"signature check failed: {exc.user_message or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRefused(f"not a Stripe event: {type(exc).__name__}") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise WebhookRefused("not a Stripe event: no id")
    if not isinstance(event.get("type"), str) or not isinstance(event.get("data"), dict):
        raise WebhookRefused("not a Stripe event: no type or data")
    if isinstance(event.get("created"), bool) or not isinstance(event.get("created"), int):
        raise WebhookRefused("not a Stripe event: created is not a unix time")
    return event


def apply_event(
    engine: Engine,
    event: dict[str, Any],
    install: str,
    on_change: Callable[[Connection, StatusChange], None] | None = None,
) -> WebhookOutcome:
    """Process ``event`` once: a known event id is a ``duplicate`` and changes nothing.
    ``on_change(conn, change)`` runs in the same transaction when the invoice is in the status
    the event tells (the outgoing invoice events are recorded there, so they exist exactly
    when the status does; an out-of-order event has no change)."""
    event_id, event_type = event["id"], event["type"]
    obj = event["data"].get("object") or {}
    with engine.begin() as conn:
        first = conn.execute(
            text(
                """
                insert into meterline.stripe_webhook_events
                    (event_id, event_type, stripe_created, object_id, outcome)
                values (:id, :type, :created, :obj, 'processing')
                on conflict (event_id) do nothing
                returning event_id
                """
            ),
            {
                "id": event_id,
                "type": event_type,
                "created": datetime.fromtimestamp(event["created"], UTC),
                "obj": _text(obj.get("id")) if isinstance(obj, dict) else None,
            },
        ).scalar()
        if first is None:
            return WebhookOutcome(event_id, event_type, "duplicate", "already processed")
        outcome = _apply(conn, event_id, event_type, obj, install)
        if outcome.change is not None and on_change is not None:
            on_change(conn, outcome.change)
        conn.execute(
            text("update meterline.stripe_webhook_events set outcome = :o where event_id = :id"),
            {"o": f"{outcome.outcome}: {outcome.detail}"[:500], "id": event_id},
        )
    return outcome


def _apply(
    conn: Connection, event_id: str, event_type: str, obj: Any, install: str
) -> WebhookOutcome:
    def ignored(why: str) -> WebhookOutcome:
        return WebhookOutcome(event_id, event_type, "ignored", why)

    incoming = INVOICE_EVENTS.get(event_type)
    if incoming is None:
        return ignored(f"{event_type or 'no type'} is not an event Meterline acts on")
    if not isinstance(obj, dict) or obj.get("object") != "invoice" or not _text(obj.get("id")):
        return ignored("the event carries no invoice")
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("meterline_install") != install:
        return ignored("not an invoice of this installation (metadata.meterline_install)")
    row = conn.execute(
        text(
            "select tenant_id, period, status from meterline.invoices "
            "where stripe_invoice_id = :id for update"
        ),
        {"id": obj["id"]},
    ).first()
    if row is None or row.tenant_id != metadata.get("meterline_tenant_id"):
        return ignored(f"invoice {obj['id']} is not recorded in meterline.invoices")
    moved = _move(conn, obj, incoming)
    # the invoice is now in the state the event tells (moved by it, or already: our own
    # run recorded it first): its outgoing event is due (recorded once per key)
    change = (
        StatusChange(event_type, row.tenant_id, row.period, obj["id"], moved, obj)
        if moved == incoming
        else None
    )
    if moved == row.status:
        return WebhookOutcome(
            event_id, event_type, "unchanged", f"{obj['id']} stays {row.status}", change
        )
    return WebhookOutcome(
        event_id, event_type, "applied", f"{obj['id']} {row.status} -> {moved}", change
    )


def _move(conn: Connection, obj: dict[str, Any], incoming: str) -> str:
    """Move the recorded status towards ``incoming``; the status it has afterwards."""
    transitions = obj.get("status_transitions")
    paid_at = transitions.get("paid_at") if isinstance(transitions, dict) else None
    due = obj.get("due_date")
    return conn.execute(
        text(
            """
            update meterline.invoices
            set status = meterline.next_invoice_status(status, :incoming),
                status_changed_at = case
                    when meterline.next_invoice_status(status, :incoming) = status
                    then status_changed_at else :at end,
                paid_at = case
                    when meterline.next_invoice_status(status, :incoming) = 'paid'
                    then coalesce(paid_at, :paid_at, :at) else paid_at end,
                due_at = coalesce(:due_at, due_at)
            where stripe_invoice_id = :id
            returning status
            """
        ),
        {
            "incoming": incoming,
            "at": clock.now(),
            "paid_at": _instant(paid_at),
            "due_at": _instant(due),
            "id": obj["id"],
        },
    ).scalar_one()


def _instant(value: Any) -> datetime | None:
    """A unix time of Stripe's as an instant (None when absent or not a whole number)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return datetime.fromtimestamp(value, UTC)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
