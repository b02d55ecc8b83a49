"""Prometheus metrics of the hot path, counted in the process that records (the API server):
events accepted, duplicate and refused (by reason), requests refused (by reason) and the
latency of the record script's round trip. Values are process-wide; with
``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client keeps them in files there so every worker
of the server is summed at scrape time (docs/operations.md).

Labels are closed sets named here, never a tenant id, a key or a path.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from ingestion.outcomes import BatchResult

# reasons an event is refused
QUOTA, BUDGET, VALIDATION, INACTIVE, OVERFLOW = (
    "quota", "budget", "validation", "inactive", "overflow",
)  # fmt: skip
# ... and a whole request (its events never read)
AUTH, RATE_LIMIT, BODY = "auth", "rate_limit", "body"
_OUTCOME_REASONS = {
    "quota_exceeded": QUOTA,
    "over_budget": BUDGET,
    "tenant_inactive": INACTIVE,
    "counter_overflow": OVERFLOW,
}

EVENTS_ACCEPTED = Counter(
    "meterline_ingest_events_accepted", "Events recorded (counted once; duplicates excluded)."
)
EVENTS_DUPLICATE = Counter(
    "meterline_ingest_events_duplicate",
    "Events whose id was already recorded for the tenant: reported, not counted again.",
)
EVENTS_REFUSED = Counter(
    "meterline_ingest_events_refused",
    "Events not recorded, by reason: quota (hard limit), budget (event budget), validation "
    "(the batch had an invalid event), inactive (tenant without a plan), overflow.",
    ["reason"],
)
REQUESTS_REFUSED = Counter(
    "meterline_ingest_requests_refused",
    "POST /v1/events requests answered with an error, by reason: auth (401/403/429 for "
    "unknown keys), rate_limit (429), body (unreadable or too large), validation (400/422), "
    "budget (429/413), quota (402).",
    ["reason"],
)
RECORD_SCRIPT_SECONDS = Histogram(
    "meterline_record_script_duration_seconds",
    "One Redis round trip of the record script (EVALSHA, pipelined per tenant), in seconds.",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)


def count_batch(result: BatchResult) -> None:
    """Count one recorded batch's outcomes."""
    if result.accepted:
        EVENTS_ACCEPTED.inc(result.accepted)
    if result.duplicates:
        EVENTS_DUPLICATE.inc(result.duplicates)
    if result.rejected:
        refused: dict[str, int] = {}
        for outcome in result.outcomes:
            if outcome.status == "rejected":
                reason = _OUTCOME_REASONS.get(outcome.reason or "", INACTIVE)
                refused[reason] = refused.get(reason, 0) + 1
        for reason, n in refused.items():
            EVENTS_REFUSED.labels(reason).inc(n)


def count_refused_request(reason: str, *, events: int = 0) -> None:
    """Count a refused request, and its ``events`` when they were read."""
    REQUESTS_REFUSED.labels(reason).inc()
    if events:
        EVENTS_REFUSED.labels(reason).inc(events)
