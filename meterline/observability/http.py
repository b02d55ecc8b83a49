"""One middleware for what each request tells the operator:

- its request id: ``X-Request-Id`` when well formed, else a new one
  (:mod:`meterline.core.telemetry.request_id`), echoed in the response and bound to every
  log line written while it is served (and carried into the Redis stream by the recorder);
- the request's server span is FastAPI's own (its native OpenTelemetry support: W3C
  ``traceparent`` in, ``POST /v1/events`` named by the route template, active when a tracer
  provider is configured); this middleware adds ``meterline.request_id`` to it;
- one observation of ``meterline_http_request_duration_seconds`` labelled by the route
  *template* (``/v1/events``, ``/dashboard/{rest}``), never the raw path;
- one structured log line on ``meterline.api``: request id, method, route, path (secret
  query values redacted), status, duration, tenant id and what the route added to
  ``request.state.fields`` (batch counts). It replaces uvicorn's access line.

An unhandled error becomes a JSON 500 and a logged traceback.
"""

from __future__ import annotations

import time

import structlog
from fastapi import Request
from opentelemetry import trace
from prometheus_client import Histogram
from starlette.requests import ClientDisconnect

from ingestion.api.responses import error
from meterline.core.redaction import redact
from meterline.core.telemetry import request_id
from meterline.core.telemetry.logs import get_logger

log = get_logger("meterline.api")

UNMATCHED = "unmatched"
REQUEST_SECONDS = Histogram(
    "meterline_http_request_duration_seconds",
    "HTTP requests served, by method, route template and status, in seconds.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def route_template(request: Request) -> str:
    """The matched route's path template, or ``unmatched`` (a 404 never adds a label)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _target(request: Request) -> str:
    query = request.url.query
    return redact(request.url.path + (f"?{query}" if query else ""))


async def request_telemetry(request: Request, call_next):
    """The HTTP middleware (``app.middleware("http")(request_telemetry)``)."""
    started = time.perf_counter()
    rid = request_id.accept_or_new(request.headers.get(request_id.HEADER))
    request.state.fields = {}
    with structlog.contextvars.bound_contextvars(request_id=rid):
        return await _serve(request, call_next, rid, started)


async def _serve(request: Request, call_next, rid: str, started: float):
    # the server span is FastAPI's own (its native OpenTelemetry support): name it for us
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("meterline.request_id", rid)
    with request_id.bound(rid):
        try:
            response = await call_next(request)
        except ClientDisconnect:  # gone, or cut off by the body timeout (which answered 408)
            response = error(400, "client_disconnected", "body", "body: the client went away")
        except Exception:
            log.exception("unhandled error", path=_target(request))
            response = error(500, "internal", "", "internal error; see the server log")
    route = route_template(request)
    duration = time.perf_counter() - started
    REQUEST_SECONDS.labels(request.method, route, str(response.status_code)).observe(duration)
    response.headers[request_id.HEADER] = rid
    fields = dict(request.state.fields)
    tenant = fields.pop("tenant", None)
    log.info(
        "request",
        method=request.method,
        route=route,
        path=_target(request),
        status=response.status_code,
        duration_ms=round(duration * 1000, 2),
        tenant_id=tenant,
        **fields,
    )
    return response
