"""The HTTP ingest API: record events and read the calling tenant's live usage.

- ``POST /v1/events``  one event or a list (<= 1,000 events, body <= 1 MB, else 413);
  per-event outcome. 402 when nothing was accepted because of a hard limit (the message names
  the meter, the limit and the plan to upgrade to); 429 with ``Retry-After`` when the tenant
  exceeds its request rate; ``X-Usage-Limit`` / ``X-Usage-Remaining`` for the last event's
  meter (:mod:`ingestion.api.events_endpoint`).
- ``GET /v1/usage``  the calling tenant's live usage (``?month=YYYY-MM``)
  (:mod:`ingestion.api.usage_endpoint`).

:func:`ingestion.api.router.ingest_router` builds both as one FastAPI router; the HTTP app
that serves it next to the portal is composed in :mod:`meterline.server`.

Errors are JSON: ``{"error": {"code", "field", "message"}}`` with a one-line message that
names the field, e.g. ``event[3].value: must be a finite number >= 0, got "NaN"``
(:mod:`ingestion.api.responses`).
"""
