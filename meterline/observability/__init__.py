"""Observability of the HTTP app, composed at the top like :mod:`meterline.server`: the
request telemetry middleware (request id, one log line, request latency, a span per request)
in :mod:`.http` and the ``/metrics`` endpoint with its scrape-time collector in
:mod:`.metrics_endpoint` and :mod:`.collector`. See docs/operations.md."""
