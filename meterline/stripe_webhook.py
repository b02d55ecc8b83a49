"""``POST /v1/stripe/webhook``: Stripe's invoice events move ``meterline.invoices.status``.

Composed here (it joins :mod:`billing`, which applies the event, and :mod:`alerts`, which
sends the outgoing invoice events). Answers:

- 503 ``webhook_not_configured`` while ``STRIPE_WEBHOOK_SECRET`` is unset (nothing is read);
- 413 for a body over :data:`MAX_BODY_BYTES`;
- 400 ``invalid_signature`` when the ``Stripe-Signature`` header does not verify (missing,
  forged, altered body, older than five minutes): the answer says only that; why is logged
  (never the header, the body or the secret);
- 200 ``{"received": true, "event": "evt_...", "outcome": ...}`` otherwise: ``applied``,
  ``unchanged`` (an out-of-order event), ``ignored`` (not ours, not an invoice event) or
  ``duplicate`` (an event id already processed). Stripe retries anything but a 2xx.

After an applied change the outgoing invoice events are delivered in the background (and
any earlier failed delivery is retried then).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, BackgroundTasks, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from alerts.invoice_events import deliver_invoice_events, record_invoice_event
from alerts.notifier import Notifier
from billing.stripe_webhooks import WebhookRefused, apply_event, verify
from ingestion.api.responses import error, json_response
from meterline.core.installation import install_id

log = logging.getLogger("meterline.api")
MAX_BODY_BYTES = 1024 * 1024  # Stripe's events are far smaller


def stripe_webhook_router(
    engine: Engine, *, secret: str | None, notifier: Notifier | None = None
) -> APIRouter:
    """The endpoint, verifying with ``secret`` (``STRIPE_WEBHOOK_SECRET``); ``notifier``
    (optional) sends the outgoing invoice events on its webhook channel."""
    router = APIRouter()
    install: list[str] = []  # this database's installation id, read on first use

    def process(event: dict):
        if not install:
            install.append(install_id(engine))
        return apply_event(engine, event, install[0], on_change=record_invoice_event)

    @router.post(
        "/v1/stripe/webhook",
        summary="Stripe events (verified with STRIPE_WEBHOOK_SECRET): invoice status changes",
    )
    async def stripe_webhook(request: Request, background: BackgroundTasks):
        if not secret:
            return error(
                503, "webhook_not_configured", "STRIPE_WEBHOOK_SECRET",
                "this endpoint is not configured: set STRIPE_WEBHOOK_SECRET to the endpoint's "
                "signing secret (whsec_...) and restart `meterline serve`",
            )  # fmt: skip
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return error(413, "too_large", "body", f"body: at most {MAX_BODY_BYTES} bytes")
        try:
            event = verify(body, request.headers.get("stripe-signature"), secret)
        except WebhookRefused as exc:
            log.warning("stripe webhook refused", extra={"fields": {"reason": str(exc)}})
            return error(
                400, "invalid_signature", "Stripe-Signature",
                "Stripe-Signature: the signature does not verify with this endpoint's secret",
            )  # fmt: skip
        outcome = await run_in_threadpool(process, event)
        request.state.fields.update(
            stripe_event=outcome.event_id, stripe_type=outcome.event_type, outcome=outcome.outcome
        )
        if outcome.change is not None and notifier is not None:
            background.add_task(deliver_invoice_events, engine, notifier)
        return json_response(
            {"received": True, "event": outcome.event_id, "outcome": outcome.outcome,
             "detail": outcome.detail}
        )  # fmt: skip

    return router
