"""Invoice events out: ``invoice.finalized``, ``invoice.paid`` and ``invoice.payment_failed``
posted to the alert webhook (``ALERT_WEBHOOK_URL``), signed per Standard Webhooks, by the
same channel and the same delivery bookkeeping as quota alerts (:func:`alerts.delivery.deliver_rows`).

Exactly once: each event is a row of ``meterline.invoice_events``, unique on ``event_key``
(``invoice.paid:<invoice id>``; a failed payment per attempt), recorded in the transaction
that moved the invoice's status (:func:`record_invoice_event`, the ``on_change`` of
:func:`billing.stripe_webhooks.apply_event`), so it exists exactly when the change does. The
key is the webhook's ``webhook-id``: the same on every retry, so a receiver can dedupe.
:func:`deliver_invoice_events` sends every row not yet sent (fewer than the maximum attempts):
after each Stripe webhook and each invoice run (``billing/stripe_invoices`` records
``invoice.finalized`` itself: :func:`record_finalized_invoices`); a delivery that failed is
retried by the Dagster ``invoice_events_sensor`` (``orchestration/defs/alerts/invoice_events.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, text

from alerts.delivery import MAX_DELIVERY_ATTEMPTS, deliver_rows
from alerts.notification import Notification
from alerts.notifier import Notifier
from alerts.outbox import Outbox
from billing.invoicing import InvoiceRunResult
from billing.money import format_minor
from billing.stripe_webhooks import StatusChange

OUTGOING = ("invoice.finalized", "invoice.paid", "invoice.payment_failed")
INVOICE_EVENTS = Outbox(
    "meterline.invoice_events", "event_id", "event_key, event_type, tenant_id, period, payload"
)
_SAID = {
    "invoice.finalized": "was issued",
    "invoice.paid": "was paid",
    "invoice.payment_failed": "could not be charged (payment failed)",
}


def event_key(change: StatusChange) -> str:
    """One key per event: a failed payment per attempt, the others once per invoice."""
    key = f"{change.event_type}:{change.stripe_invoice_id}"
    if change.event_type == "invoice.payment_failed":
        key += f":{change.invoice.get('attempt_count', 0)}"
    return key


def payload(change: StatusChange) -> dict[str, Any]:
    """What the receiver gets (besides ``text`` and ``id``): the invoice, in minor units."""
    invoice = change.invoice
    return {
        "type": change.event_type,
        "tenant_id": change.tenant_id,
        "period": f"{change.period:%Y-%m}",
        "status": change.status,
        "stripe_invoice_id": change.stripe_invoice_id,
        "currency": str(invoice.get("currency") or "").upper(),
        "amount_due": int(invoice.get("amount_due") or 0),
        "amount_paid": int(invoice.get("amount_paid") or 0),
        "hosted_invoice_url": invoice.get("hosted_invoice_url"),
    }


def record_invoice_event(conn: Connection, change: StatusChange) -> bool:
    """Record the outgoing event of ``change`` (in the caller's transaction), once per key;
    True when it is new. Status changes without an outgoing event are not recorded."""
    if change.event_type not in OUTGOING:
        return False
    return bool(
        conn.execute(
            text(
                """
                insert into meterline.invoice_events
                    (event_key, event_type, tenant_id, period, stripe_invoice_id, payload)
                values (:key, :type, :tenant, :period, :invoice, cast(:payload as jsonb))
                on conflict (event_key) do nothing
                """
            ),
            {
                "key": event_key(change),
                "type": change.event_type,
                "tenant": change.tenant_id,
                "period": change.period,
                "invoice": change.stripe_invoice_id,
                "payload": json.dumps(payload(change)),
            },
        ).rowcount
    )


def record_finalized_invoices(engine: Engine, result: InvoiceRunResult) -> int:
    """``invoice.finalized`` for every invoice an invoice run finalized (or found finalized),
    for installs whose Stripe webhooks are not configured: the key is the one the Stripe
    webhook's event would have, so whichever comes first records it. The number recorded."""
    recorded = 0
    with engine.begin() as conn:
        for inv in result.invoices:
            if inv.action not in ("created", "resumed", "recovered") or not inv.stripe_invoice_id:
                continue
            invoice = {"currency": inv.currency, "amount_due": inv.amount_due, "amount_paid": 0}
            change = StatusChange(
                "invoice.finalized", inv.tenant_id, result.period, inv.stripe_invoice_id,
                inv.status, invoice,
            )  # fmt: skip
            recorded += record_invoice_event(conn, change)
    return recorded


def message(event_key: str, event_type: str, data: dict[str, Any]) -> Notification:
    amount = format_minor(data["amount_due"], data["currency"] or "USD")
    said = f"Invoice {data['stripe_invoice_id']} of {data['tenant_id']} for {data['period']} "
    said += f"({amount}) {_SAID[event_type]}."
    return Notification(key=event_key, subject=said, text=said, payload=data)


@dataclass
class InvoiceEventReport:
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def deliver_invoice_events(
    engine: Engine, notifier: Notifier, *, max_attempts: int = MAX_DELIVERY_ATTEMPTS
) -> InvoiceEventReport:
    """Send every recorded invoice event not yet sent, oldest first, on the alert webhook."""
    with engine.connect() as conn:
        ids = conn.execute(
            text(
                "select event_id from meterline.invoice_events "
                "where delivery_status in ('pending', 'failed') and attempts < :max "
                "order by event_id"
            ),
            {"max": max_attempts},
        ).scalars()
        ids = list(ids)

    def send(row) -> str:
        return notifier.webhook.send(message(row.event_key, row.event_type, row.payload))

    report = InvoiceEventReport()
    for row, status, _ in deliver_rows(engine, INVOICE_EVENTS, ids, send, max_attempts):
        getattr(report, status).append(row.event_key)
    return report


def invoice_events(engine: Engine, tenant_id: str | None = None) -> list[Any]:
    """The recorded invoice events (of one tenant, or all), oldest first."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "select event_key, event_type, tenant_id, period, delivery_status, attempts, "
                "last_error from meterline.invoice_events "
                "where cast(:t as text) is null or tenant_id = :t order by event_id"
            ),
            {"t": tenant_id},
        ).all()
