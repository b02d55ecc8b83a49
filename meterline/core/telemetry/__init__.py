"""What Meterline tells the people who run it: request ids (:mod:`.request_id`), structured
logs (:mod:`.logs`, structlog) and traces (:mod:`.tracing`, OpenTelemetry). Prometheus metrics
are defined next to what they measure (``ingestion.metrics``) and served by
:mod:`meterline.observability`. See docs/operations.md."""
