"""Quota-threshold alerts: which thresholds a tenant crossed, what the message says, and its
idempotent record-then-deliver cycle on ``meterline.alerts``.

Plain Python (no Dagster). The orchestration layer calls, per sensor tick,
:func:`alerts.usage.current_usage` -> :func:`alerts.thresholds.evaluate` (one
:class:`~alerts.thresholds.Crossing` per tenant and meter that crossed something new) and, per
run, :func:`alerts.store.record_alerts` -> :func:`alerts.delivery.deliver_alerts`.

Modules: ``thresholds`` (defaults, evaluation, routing), ``usage`` (live usage),
``store`` (the ``meterline.alerts`` table), ``context`` and ``messages`` (what a message says),
``notification`` (the message and the channel interface), ``channels/`` (email, webhook, Redis
list), ``notifier`` (the configured channels), ``delivery`` (sending and the retry policy).

Exactly once
    A threshold fires once per (tenant, meter, threshold, period): the sensor keeps the
    highest fired threshold per tenant/meter in its cursor (seeded from ``meterline.alerts``
    when the period changes) and asks for runs with the deterministic key
    ``quota:<tenant>:<meter>:<threshold>:<YYYY-MM>``. When one tick crosses several
    thresholds only the highest is notified; the lower ones are recorded with
    ``notified = false`` and ``delivery_status = 'skipped'``.
Delivery
    One row per routed channel (:func:`alerts.thresholds.route`), unique on
    (tenant_id, meter, period_start, threshold, channel). Rows are inserted
    ``ON CONFLICT DO NOTHING``; each row still ``pending`` or ``failed`` is locked
    (``FOR UPDATE SKIP LOCKED``), sent, and marked ``sent`` / ``failed`` / ``skipped`` in the
    same transaction. A retried run therefore re-sends failed deliveries and never repeats a
    sent one, and two concurrent runs cannot both send the same row. (If the process dies
    between the send and the commit, that one message can be sent twice: email Message-ID,
    outbox file name and the webhook's ``webhook-id`` header are stable per row so
    receivers can dedupe.)
"""
