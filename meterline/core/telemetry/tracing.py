"""OpenTelemetry traces: spans through the API (FastAPI's own server and endpoint spans), the
recorder (around the Lua call) and the loader (one per batch, linked to the requests whose
entries it loaded).

Export is off by default: with no exporter configured the API's tracer is a no-op and costs
next to nothing. ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the standard variable, read through
:class:`meterline.core.settings.Settings`) turns on OTLP/HTTP export of the spans to
``<endpoint>/v1/traces``. Tests pass their own exporter (the SDK's ``InMemorySpanExporter``).

A span's context crosses the Redis stream as a W3C ``traceparent`` string
(:func:`traceparent`), and comes back as a :class:`~opentelemetry.trace.Link`
(:func:`link_from`): the loader's batch span links to every request it loaded.
"""

from __future__ import annotations

import threading

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

SERVICE_NAME = "meterline"
_propagator = TraceContextTextMapPropagator()
_lock = threading.Lock()
_configured: dict[str, object] = {}


def tracer() -> trace.Tracer:
    return trace.get_tracer("meterline")


def configure_tracing(otlp_endpoint: str | None = None, *, exporter=None):
    """Install the SDK tracer provider, once per process, exporting to ``exporter`` or, when
    ``otlp_endpoint`` is set, over OTLP/HTTP. Without either nothing is installed (spans
    are no-ops). A second call adds its exporter to the provider already installed. Returns
    the provider (None when tracing stays off)."""
    if exporter is None and not otlp_endpoint:
        return _configured.get("provider")
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    with _lock:
        provider = _configured.get("provider")
        if provider is None:
            provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
            trace.set_tracer_provider(provider)
            _configured["provider"] = provider
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        if otlp_endpoint and _configured.get("otlp") != otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(otlp_endpoint)))
            )
            _configured["otlp"] = otlp_endpoint
    return provider


def traces_url(endpoint: str) -> str:
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` is the collector's base URL; traces go to /v1/traces."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def traceparent() -> str:
    """The current span's W3C ``traceparent`` ("" when no span is recording)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent", "")


def link_from(value: str | None) -> trace.Link | None:
    """A link to the span a ``traceparent`` names (None when it is empty or malformed)."""
    if not value:
        return None
    span = trace.get_current_span(_propagator.extract({"traceparent": value}))
    context = span.get_span_context()
    return trace.Link(context) if context.is_valid else None
