"""ASGI quota middleware: meter and gate any Starlette/FastAPI app.

    from ingestion.middleware import QuotaMiddleware
    from ingestion.recorder import UsageRecorder

    app = FastAPI()
    app.add_middleware(
        QuotaMiddleware,
        recorder=UsageRecorder(redis_client, engine, prefix="meterline"),
        routes={"/v1/search": "api_calls", "/v1/export": "bandwidth_gb"},
        tenant_header="X-Tenant-ID",   # or None: use the tenant API key (Authorization: Bearer)
    )

Each request to a metered route records one event (value 1, or ``value(scope)``) *before*
the route runs. A tenant over a hard limit gets a 402 JSON error naming the meter, the limit
and the upgrade plan instead of reaching the route; accepted responses carry
``X-Usage-Limit`` / ``X-Usage-Remaining``. Unmetered routes pass through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson
from starlette.concurrency import run_in_threadpool

from ingestion.auth import KeyStore, bearer
from ingestion.recorder import UsageRecorder
from ingestion.validation import EventValidationError

Scope = dict
RouteMeter = Mapping[str, str] | Callable[[Scope], str | None]


class QuotaMiddleware:
    def __init__(
        self,
        app,
        *,
        recorder: UsageRecorder,
        routes: RouteMeter,
        tenant_header: str | None = "X-Tenant-ID",
        value: float | Callable[[Scope], float] = 1,
        keystore: KeyStore | None = None,
    ):
        self.app = app
        self.recorder = recorder
        self.routes = routes
        self.tenant_header = tenant_header.lower().encode() if tenant_header else None
        self.value = value
        self.keystore = keystore or KeyStore(recorder.engine)
        if isinstance(routes, Mapping):  # longest prefix first
            self._prefixes = sorted(routes.items(), key=lambda item: -len(item[0]))

    def meter_for(self, scope: Scope) -> str | None:
        if callable(self.routes):
            return self.routes(scope)
        path = scope.get("path", "")
        for prefix, meter in self._prefixes:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return meter
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        meter = self.meter_for(scope)
        if meter is None:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        tenant = None
        if self.tenant_header is not None:
            raw = headers.get(self.tenant_header)
            tenant = raw.decode("latin-1") if raw else None
        if tenant is None:
            key = bearer((headers.get(b"authorization") or b"").decode("latin-1"))
            if key is not None:
                tenant = await run_in_threadpool(self.keystore.tenant_for, key)
        if not tenant:
            return await _json(
                send, 401, "unauthorized", "missing tenant: send a tenant API key or header"
            )
        value = self.value(scope) if callable(self.value) else self.value
        event = {
            "tenant_id": tenant,
            "meter": meter,
            "value": value,
            "dimensions": {"route": scope.get("path", "")[:256] or "/"},
        }
        try:
            result = await run_in_threadpool(self.recorder.record, event)
        except EventValidationError as exc:
            return await _json(
                send, exc.status if exc.status != 422 else 400, "invalid_usage", str(exc)
            )
        outcome = result.outcomes[0]
        extra: list[tuple[bytes, bytes]] = []
        if outcome.limit is not None:
            extra = [
                (b"x-usage-limit", _plain(outcome.limit).encode()),
                (b"x-usage-remaining", _plain(outcome.remaining).encode()),
            ]
        if outcome.status == "rejected":
            plan, upgrade = result.plan_of(tenant)
            how = (
                f"upgrade to plan {upgrade!r} to continue"
                if upgrade
                else "contact support to raise it"
            )
            return await _json(
                send,
                402,
                "quota_exceeded",
                f"{meter}: monthly limit of {_plain(outcome.limit)} reached on plan {plan!r}; {how}",
                extra,
                meter=meter,
                limit=_plain(outcome.limit),
                upgrade_to=upgrade,
            )

        async def send_with_headers(message):
            if message["type"] == "http.response.start" and extra:
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


def _plain(value) -> str:
    if value is None:
        return ""
    return str(int(value)) if value == value.to_integral_value() else str(value)


async def _json(send, status: int, code: str, message: str, headers=None, **extra) -> None:
    body = orjson.dumps({"error": {"code": code, "message": message, **extra}})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
