"""Figures owned by Dagster processes (the loader, alert deliveries, invoice runs), read from
Redis and Postgres when ``/metrics`` is scraped rather than counted in the process that did
the work: they are then right whichever process (or how many) did it, and need no
Pushgateway. Each scrape costs a few Redis calls and three small Postgres queries.

A source that does not answer is reported as ``meterline_metrics_source_up{source} 0`` and
its figures are left out of that scrape (never reported as zero).
"""

from __future__ import annotations

import logging

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from alerts.store import delivery_counts
from billing.invoicing.store import invoice_counts
from ingestion.backlog import stream_backlog
from ingestion.dead_letters import count_dead_letters

log = logging.getLogger("meterline.metrics")

ALERT_STATUSES = ("pending", "sent", "failed", "skipped")
INVOICE_STATUSES = (
    "pending",
    "draft",
    "open",
    "payment_failed",
    "paid",
    "void",
    "uncollectible",
    "skipped",
)


class BacklogCollector(Collector):
    """Stream backlog and loader lag (Redis), dead letters, alert deliveries and invoices
    (Postgres), at scrape time."""

    def __init__(self, engine: Engine, redis, *, prefix: str):
        self.engine = engine
        self.redis = redis
        self.prefix = prefix

    def describe(self):
        return []  # figures are read at scrape time; nothing to check at registration

    def collect(self):
        up = GaugeMetricFamily(
            "meterline_metrics_source_up",
            "1 when the source answered this scrape (redis, postgres), 0 when it did not.",
            labels=["source"],
        )
        yield from self._redis(up)
        yield from self._postgres(up)
        yield up

    def _redis(self, up: GaugeMetricFamily):
        try:
            backlog = self._backlog()
        except Exception as exc:  # report, never fail the scrape
            log.warning("metrics: stream backlog unreadable: %s", type(exc).__name__)
            up.add_metric(["redis"], 0)
            return
        up.add_metric(["redis"], 1)
        yield GaugeMetricFamily(
            "meterline_stream_entries",
            "Entries waiting in the tenant streams, not yet loaded into Postgres.",
            value=backlog.entries,
        )
        yield GaugeMetricFamily(
            "meterline_streams", "Tenant streams that exist in Redis.", value=backlog.streams
        )
        yield GaugeMetricFamily(
            "meterline_loader_lag_seconds",
            "Age of the oldest stream entry not yet loaded into Postgres (0 when none waits).",
            value=backlog.oldest_age_seconds,
        )

    def _backlog(self):
        try:
            return stream_backlog(self.redis, self.engine, prefix=self.prefix)
        except SQLAlchemyError:  # Postgres is down: the streams Redis's registry knows
            return stream_backlog(self.redis, None, prefix=self.prefix)

    def _postgres(self, up: GaugeMetricFamily):
        try:
            dead = count_dead_letters(self.engine)
            with self.engine.connect() as conn:
                alerts = delivery_counts(conn)
                invoices = invoice_counts(conn)
        except Exception as exc:
            log.warning("metrics: Postgres figures unreadable: %s", type(exc).__name__)
            up.add_metric(["postgres"], 0)
            return
        up.add_metric(["postgres"], 1)
        yield GaugeMetricFamily(
            "meterline_dead_letters",
            "Rows waiting in raw.usage_dead_letters (`meterline dead-letters list`).",
            value=dead,
        )
        deliveries = GaugeMetricFamily(
            "meterline_alert_deliveries",
            "Notified alerts (one per tenant, meter, month, threshold and channel) by delivery "
            "status; failed ones are retried until they give up.",
            labels=["status"],
        )
        for status in sorted(set(ALERT_STATUSES) | set(alerts)):
            deliveries.add_metric([status], alerts.get(status, 0))
        yield deliveries
        invoiced = GaugeMetricFamily(
            "meterline_invoices",
            "Invoices (tenant-months) by status: pending and draft stopped before finalizing "
            "(a failed or running invoice run), skipped below the minimum, the rest Stripe's.",
            labels=["status"],
        )
        for status in sorted(set(INVOICE_STATUSES) | set(invoices)):
            invoiced.add_metric([status], invoices.get(status, 0))
        yield invoiced
