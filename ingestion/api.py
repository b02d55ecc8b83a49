"""HTTP API (``meterline serve``): record events, read live usage, admin overview.

- ``POST /v1/events``  one event or a list (<= 1,000 events, body <= 1 MB, else 413);
  per-event outcome. 402 when nothing was accepted because of a hard limit (the message names
  the meter, the limit and the plan to upgrade to); 429 with ``Retry-After`` when the tenant
  exceeds its request rate; ``X-Usage-Limit`` / ``X-Usage-Remaining`` for the last event's
  meter.
- ``GET /v1/usage``  the calling tenant's live usage (``?month=YYYY-MM``).
- ``GET /v1/admin/tenants``  every tenant, highest percentage of any limit first (admin key).
- ``/healthz`` (process up) and ``/readyz`` (Redis and Postgres answer).

Errors are JSON: ``{"error": {"code", "field", "message"}}`` with a one-line message that
names the field, e.g. ``event[3].value: must be a finite number >= 0, got "NaN"``.
Every request is logged as one JSON line on the ``meterline.api`` logger.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from ingestion.auth import KeyStore, bearer, same_secret
from ingestion.ratelimit import RateLimiter
from ingestion.recorder import BatchResult, UsageRecorder
from ingestion.usage import MeterUsage, all_live_usage, live_usage
from ingestion.validation import EventValidationError
from meterline.core import clock

MAX_BODY_BYTES = 1_048_576
MAX_BATCH = 1000
log = logging.getLogger("meterline.api")

CostEstimator = Callable[[str, list[MeterUsage]], dict[str, Decimal]]

EVENT_SCHEMA = {
    "type": "object",
    "required": ["meter", "value"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "maxLength": 128, "description": "Idempotency key"},
        "tenant_id": {"type": "string", "description": "Defaults to the API key's tenant"},
        "meter": {"type": "string", "example": "api_calls"},
        "value": {"type": "number", "minimum": 0, "maximum": 1e12},
        "timestamp": {"type": "string", "format": "date-time", "example": "2026-10-05T12:00:00Z"},
        "dimensions": {
            "type": "object",
            "maxProperties": 16,
            "additionalProperties": {"type": "string", "maxLength": 256},
        },
    },
}


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def _configure_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLogFormatter())
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def json_response(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        orjson.dumps(data, default=str),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def error(status: int, code: str, field: str, message: str, headers: dict | None = None, **extra):
    return json_response(
        {"error": {"code": code, "field": field, "message": message, **extra}}, status, headers
    )


def _num(value: Decimal | None):
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _fmt(value: Decimal | None) -> str:
    if value is None:
        return ""
    return f"{value:,}" if value == value.to_integral_value() else f"{value.normalize():,f}"


class _Unauthorized(Exception):
    def __init__(self, response: Response):
        self.response = response


def create_app(
    engine: Engine,
    redis,
    *,
    prefix: str,
    admin_key: str | None,
    rate_limit_per_second: float = 200.0,
    rate_limit_burst: float = 400.0,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_batch: int = MAX_BATCH,
    recorder: UsageRecorder | None = None,
    cost_estimator: CostEstimator | None = None,
) -> FastAPI:
    """The Meterline HTTP API. ``cost_estimator(tenant_id, usage)`` (optional, wired by the
    CLI from the billing package) returns an estimated cost per meter for ``/v1/usage``."""
    _configure_logging()
    recorder = recorder or UsageRecorder(redis, engine, prefix=prefix)
    keystore = KeyStore(engine)
    limiter = RateLimiter(redis, prefix=prefix, rate=rate_limit_per_second, burst=rate_limit_burst)
    app = FastAPI(
        title="Meterline",
        version="0.1.0",
        description="Usage metering, quotas and usage-based billing. Tenant endpoints take "
        "`Authorization: Bearer <tenant key>`, admin endpoints the admin key.",
    )

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        started = time.perf_counter()
        request.state.fields = {}
        try:
            response = await call_next(request)
        except Exception:
            log.exception("unhandled error", extra={"fields": {"path": request.url.path}})
            response = error(500, "internal", "", "internal error; see the server log")
        fields = {
            "method": request.method,
            "path": request.url.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            **request.state.fields,
        }
        log.info("request", extra={"fields": fields})
        return response

    async def tenant_of(request: Request) -> str:
        key = bearer(request.headers.get("authorization"))
        if key is None:
            raise _Unauthorized(
                error(
                    401,
                    "unauthorized",
                    "Authorization",
                    "Authorization: missing 'Bearer <tenant API key>' header; "
                    "issue a key with `meterline tenants issue-key <tenant>`",
                    {"WWW-Authenticate": "Bearer"},
                )
            )
        tenant = await run_in_threadpool(keystore.tenant_for, key)
        if tenant is None:
            raise _Unauthorized(
                error(
                    401,
                    "unauthorized",
                    "Authorization",
                    "Authorization: unknown or revoked API key; "
                    "issue a new one with `meterline tenants issue-key <tenant>`",
                    {"WWW-Authenticate": "Bearer"},
                )
            )
        request.state.fields["tenant"] = tenant
        return tenant

    @app.exception_handler(_Unauthorized)
    async def unauthorized(_request: Request, exc: _Unauthorized):
        return exc.response

    async def read_body(request: Request) -> bytes | Response:
        declared = request.headers.get("content-length")
        too_big = error(
            413,
            "payload_too_large",
            "body",
            f"body: larger than {max_body_bytes:,} bytes; send smaller batches",
        )
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return too_big
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                return too_big
            chunks.append(chunk)
        return b"".join(chunks)

    @app.post(
        "/v1/events",
        summary="Record one event or a batch",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                EVENT_SCHEMA,
                                {"type": "array", "items": EVENT_SCHEMA, "maxItems": max_batch},
                            ]
                        }
                    }
                },
            }
        },
    )
    async def post_events(request: Request):
        tenant = await tenant_of(request)
        allowed, retry_after = await run_in_threadpool(limiter.allow, tenant)
        if not allowed:
            return error(
                429,
                "rate_limited",
                "",
                f"too many requests for tenant {tenant!r} (limit {rate_limit_per_second:g}/s); "
                f"retry after {retry_after} s or send larger batches",
                {"Retry-After": str(retry_after)},
            )
        body = await read_body(request)
        if isinstance(body, Response):
            return body
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return error(
                400, "invalid_json", "body", f"body: not valid JSON ({str(exc).split(':')[0]})"
            )
        if isinstance(payload, dict):
            events = [payload]
        elif isinstance(payload, list):
            events = payload
            if not events:
                return error(
                    422, "invalid_event", "body", "body: empty list; send at least one event"
                )
            if len(events) > max_batch:
                return error(
                    413,
                    "batch_too_large",
                    "body",
                    f"body: {len(events):,} events in one request; at most {max_batch:,} are "
                    "allowed, split the batch",
                )
        else:
            return error(
                422,
                "invalid_event",
                "body",
                "body: expected an event object or a list of events",
            )
        try:
            result: BatchResult = await run_in_threadpool(recorder.record, events, tenant_id=tenant)
        except EventValidationError as exc:
            return json_response({"error": exc.as_dict()}, exc.status)
        request.state.fields.update(
            events=len(events),
            accepted=result.accepted,
            duplicates=result.duplicates,
            rejected=result.rejected,
        )
        return _events_response(result, tenant, recorder)

    @app.get("/v1/usage", summary="The calling tenant's live usage this month")
    async def get_usage(request: Request, month: str | None = None):
        tenant = await tenant_of(request)
        start = None
        if month is not None:
            try:
                start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
            except ValueError:
                return error(422, "invalid_query", "month", f"month: use YYYY-MM, got {month!r}")
        rows = await run_in_threadpool(
            live_usage, redis, engine, tenant, prefix=prefix, month=start
        )
        costs = cost_estimator(tenant, rows) if cost_estimator else {}
        meters = []
        for row in rows:
            item = row.as_dict()
            item["estimated_cost"] = _num(costs.get(row.meter)) if cost_estimator else None
            meters.append(item)
        plan = rows[0].plan_id if rows else None
        return json_response(
            {
                "tenant_id": tenant,
                "month": (start or clock.now()).strftime("%Y-%m"),
                "plan": plan,
                "meters": meters,
                "estimated_total": _num(sum(costs.values(), Decimal(0)))
                if cost_estimator
                else None,
            }
        )

    @app.get("/v1/admin/tenants", summary="Every tenant, highest usage percentage first")
    async def admin_tenants(request: Request):
        if not admin_key:
            return error(
                503, "admin_disabled", "", "admin API disabled: set METERLINE_ADMIN_KEY and restart"
            )
        if not same_secret(bearer(request.headers.get("authorization")), admin_key):
            return error(
                403 if request.headers.get("authorization") else 401,
                "forbidden",
                "Authorization",
                "Authorization: admin endpoints need 'Bearer <METERLINE_ADMIN_KEY>'",
            )

        def collect():
            usage = all_live_usage(redis, engine, prefix=prefix)
            with engine.connect() as conn:
                status = dict(
                    conn.execute(text("select tenant_id, status from meterline.tenants")).all()
                )
            items = []
            for tenant, rows in usage.items():
                percents = [r.percent for r in rows if r.percent is not None]
                top = max(rows, key=lambda r: r.percent or -1, default=None)
                items.append(
                    {
                        "tenant_id": tenant,
                        "status": status.get(tenant),
                        "plan": rows[0].plan_id if rows else None,
                        "max_percent": round(max(percents), 2) if percents else None,
                        "top_meter": top.meter if top and top.percent is not None else None,
                        "meters": [r.as_dict() for r in rows],
                    }
                )
            items.sort(key=lambda i: (-(i["max_percent"] or -1), i["tenant_id"]))
            return items

        return json_response({"tenants": await run_in_threadpool(collect)})

    @app.get("/healthz", summary="Liveness")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: Redis and Postgres answer")
    async def readyz():
        def check() -> dict[str, str]:
            status: dict[str, str] = {}
            try:
                redis.ping()
                status["redis"] = "ok"
            except Exception as exc:  # report, do not crash
                status["redis"] = f"error: {exc}"
            try:
                with engine.connect() as conn:
                    conn.execute(text("select 1"))
                status["postgres"] = "ok"
            except Exception as exc:
                status["postgres"] = f"error: {type(exc).__name__}"
            return status

        status = await run_in_threadpool(check)
        ready = all(v == "ok" for v in status.values())
        return json_response(
            {"status": "ready" if ready else "unavailable", **status}, 200 if ready else 503
        )

    from ingestion.dashboard import mount_dashboard  # /dashboard, /admin and their JSON

    mount_dashboard(
        app, engine, redis, prefix=prefix, admin_key=admin_key, cost_estimator=cost_estimator
    )
    return app


def _events_response(result: BatchResult, tenant: str, recorder: UsageRecorder) -> Response:
    outcomes = result.outcomes
    headers: dict[str, str] = {}
    for outcome in reversed(outcomes):
        if outcome.limit is not None:
            headers["X-Usage-Limit"] = str(_num(outcome.limit))
            headers["X-Usage-Remaining"] = str(_num(outcome.remaining))
            break
    body = {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "events": [o.as_dict() for o in outcomes],
    }
    refused = [o for o in outcomes if o.reason == "quota_exceeded"]
    if result.accepted == 0 and refused:
        first = refused[0]
        plan, upgrade = result.plan_of(tenant)
        info = recorder.directory.meters.get(first.meter)
        unit = f" {info.unit}" if info else ""
        how = (
            f"upgrade to plan {upgrade!r} to continue "
            f"(`meterline tenants set-plan {tenant} {upgrade}`)"
            if upgrade
            else "contact your account team to raise the limit"
        )
        message = (
            f"{first.meter}: monthly limit of {_fmt(first.limit)}{unit} reached on plan {plan!r} "
            f"(used {_fmt(first.quantity)}); {how}"
        )
        body["error"] = {
            "code": "quota_exceeded",
            "field": f"event[{first.index}].value",
            "message": message,
            "meter": first.meter,
            "limit": _num(first.limit),
            "plan": plan,
            "upgrade_to": upgrade,
        }
        return json_response(body, 402, headers)
    return json_response(body, 200, headers)
