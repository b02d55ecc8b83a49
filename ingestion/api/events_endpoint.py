"""``POST /v1/events``: record one event or a batch for the calling tenant.

Per-event outcome (``accepted|duplicate|rejected``); 402 when nothing was accepted because of a
hard limit (the message names the meter, the limit and the plan to upgrade to, or the past
plan the event was judged under); 429 with ``Retry-After`` over the tenant's request rate or
event budget (nothing of the batch recorded); 413 over the body or batch size, or a batch
larger than the event budget's burst;
``X-Usage-Limit`` / ``X-Usage-Remaining`` for the last event's meter.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ingestion import metrics
from ingestion.api.responses import error, json_response
from ingestion.api.tenant_auth import TenantAuth, Unauthorized
from ingestion.ratelimit import BudgetExceeded, EventBudget, RateLimiter
from ingestion.recorder import BatchResult, EventOutcome, UsageRecorder
from ingestion.validation import EventValidationError
from meterline.core.numbers import format_quantity, json_number

MAX_BODY_BYTES = 1_048_576
MAX_BATCH = 1000

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


class _Rejected(Exception):
    """The request cannot be recorded: ``response`` says why."""

    def __init__(self, response: Response):
        self.response = response


def request_body_schema(max_batch: int) -> dict:
    """OpenAPI request body: one event, or a list of at most ``max_batch``."""
    batch = {"type": "array", "items": EVENT_SCHEMA, "maxItems": max_batch}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [EVENT_SCHEMA, batch]}}},
        }
    }


async def read_body(request: Request, max_body_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it is (or is declared) over ``max_body_bytes``."""
    too_big = _Rejected(
        error(
            413,
            "payload_too_large",
            "body",
            f"body: larger than {max_body_bytes:,} bytes; send smaller batches",
        )
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body_bytes:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def parse_events(body: bytes, max_batch: int) -> list:
    """The events of a body: one object or a non-empty list of at most ``max_batch``."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _Rejected(
            error(400, "invalid_json", "body", f"body: not valid JSON ({str(exc).split(':')[0]})")
        ) from None
    if isinstance(payload, dict):
        return [payload]
    if not isinstance(payload, list):
        raise _Rejected(
            error(
                422, "invalid_event", "body", "body: expected an event object or a list of events"
            )
        )
    if not payload:
        raise _Rejected(
            error(422, "invalid_event", "body", "body: empty list; send at least one event")
        )
    if len(payload) > max_batch:
        raise _Rejected(
            error(
                413,
                "batch_too_large",
                "body",
                f"body: {len(payload):,} events in one request; at most {max_batch:,} are "
                "allowed, split the batch",
            )
        )
    return payload


def add_events_route(
    router: APIRouter,
    *,
    auth: TenantAuth,
    limiter: RateLimiter,
    recorder: UsageRecorder,
    rate_limit_per_second: float,
    event_budget: EventBudget,
    max_body_bytes: int,
    max_batch: int,
) -> None:
    """Add ``POST /v1/events`` to ``router``."""

    async def rate_limited(tenant: str) -> None:
        allowed, retry_after = await run_in_threadpool(limiter.allow, tenant)
        if not allowed:
            raise _Rejected(
                error(
                    429,
                    "rate_limited",
                    "",
                    f"too many requests for tenant {tenant!r} "
                    f"(limit {rate_limit_per_second:g}/s); "
                    f"retry after {retry_after} s or send larger batches",
                    {"Retry-After": str(retry_after)},
                )
            )

    @router.post(
        "/v1/events",
        summary="Record one event or a batch",
        openapi_extra=request_body_schema(max_batch),
    )
    async def post_events(request: Request):
        try:
            tenant = await auth(request)
        except Unauthorized as exc:
            metrics.count_refused_request(metrics.AUTH)
            return exc.response
        try:
            await rate_limited(tenant)
        except _Rejected as exc:
            metrics.count_refused_request(metrics.RATE_LIMIT)
            return exc.response
        try:
            events = parse_events(await read_body(request, max_body_bytes), max_batch)
        except _Rejected as exc:
            metrics.count_refused_request(metrics.BODY)
            return exc.response
        try:
            result: BatchResult = await run_in_threadpool(
                recorder.record, events, tenant_id=tenant, budget=event_budget
            )
        except EventValidationError as exc:
            metrics.count_refused_request(metrics.VALIDATION, events=len(events))
            return json_response({"error": exc.as_dict()}, exc.status)
        except BudgetExceeded as exc:
            metrics.count_refused_request(metrics.BUDGET, events=len(events))
            return budget_refusal(exc)
        metrics.count_batch(result)
        fields = getattr(request.state, "fields", None)  # the access log's, when there is one
        if fields is not None:
            fields.update(
                events=len(events),
                accepted=result.accepted,
                duplicates=result.duplicates,
                rejected=result.rejected,
            )
        return events_response(result, tenant, recorder)


def events_response(result: BatchResult, tenant: str, recorder: UsageRecorder) -> Response:
    """200 with the per-event outcomes, or 402 when a hard limit refused the whole batch."""
    outcomes = result.outcomes
    headers: dict[str, str] = {}
    for outcome in reversed(outcomes):
        if outcome.limit is not None:
            headers["X-Usage-Limit"] = str(json_number(outcome.limit))
            headers["X-Usage-Remaining"] = str(json_number(outcome.remaining))
            break
    body = {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "events": [o.as_dict() for o in outcomes],
    }
    refused = [o for o in outcomes if o.reason == "quota_exceeded"]
    if result.accepted == 0 and refused:
        metrics.REQUESTS_REFUSED.labels(metrics.QUOTA).inc()
        body["error"] = quota_refusal(result, tenant, recorder, refused[0])
        return json_response(body, 402, headers)
    return json_response(body, 200, headers)


def budget_refusal(exc: BudgetExceeded) -> Response:
    """429 with ``Retry-After`` over the event budget; 413 for a batch larger than its burst."""
    if exc.retry_after is None:
        return error(413, "batch_too_large", "body", f"body: {exc}")
    return error(
        429,
        "event_budget_exceeded",
        "",
        str(exc),
        {"Retry-After": str(exc.retry_after)},
        events_per_second=exc.budget.rate,
        burst=exc.budget.burst,
    )


def quota_refusal(
    result: BatchResult, tenant: str, recorder: UsageRecorder, first: EventOutcome
) -> dict:
    """The 402 error: the meter, its limit, the plan, and the plan to upgrade to."""
    plan, upgrade = result.plan_of(tenant, first.term)
    if first.term:
        upgrade = None
    info = recorder.directory.meters.get(first.meter)
    unit = f" {info.unit}" if info else ""
    if first.term:  # judged under a plan no longer in force: an upgrade now cannot change it
        how = (
            "the event is dated when that plan was in force, and a past period keeps the "
            "limits it had"
        )
    elif upgrade:
        how = f"upgrade to plan {upgrade!r} to continue (`meterline tenants set-plan {tenant} {upgrade}`)"
    else:
        how = "contact your account team to raise the limit"
    message = (
        f"{first.meter}: monthly limit of {format_quantity(first.limit)}{unit} reached on plan "
        f"{plan!r} (used {format_quantity(first.quantity)}); {how}"
    )
    return {
        "code": "quota_exceeded",
        "field": f"event[{first.index}].value",
        "message": message,
        "meter": first.meter,
        "limit": json_number(first.limit),
        "plan": plan,
        "upgrade_to": upgrade,
    }
