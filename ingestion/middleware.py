"""ASGI quota middleware: meter and gate any Starlette/FastAPI app.

    from ingestion.middleware import QuotaMiddleware
    from ingestion.recorder import UsageRecorder

    app = FastAPI()
    app.add_middleware(
        QuotaMiddleware,
        recorder=UsageRecorder(redis_client, engine, prefix="meterline"),
        routes={"/v1/search": "api_calls", "/v1/export": "bandwidth_gb"},
    )

The tenant is the one of the request's API key (``Authorization: Bearer <tenant key>``). A
tenant header is read only when you ask for it *and* name the proxies allowed to send it::

    app.add_middleware(QuotaMiddleware, recorder=..., routes=...,
                       tenant_header="X-Tenant-ID", trusted_proxies="10.0.0.5,10.1.0.0/16")

``trusted_proxies`` defaults to ``METERLINE_TRUSTED_PROXIES``; a tenant header without any
trusted proxy is a configuration error. The header is honoured only on a request whose TCP
peer is a trusted proxy and that carries no API key: it never overrides a key, and a request
from anywhere else without a key is 401. A client that keeps sending unknown keys gets 429
with ``Retry-After`` before its keys reach the database.

Each request to a metered route records one event (value 1, or ``value(scope)``) *before*
the route runs. A tenant over a hard limit gets a 402 JSON error naming the meter, the limit
and the upgrade plan instead of reaching the route; accepted responses carry
``X-Usage-Limit`` / ``X-Usage-Remaining``. Unmetered routes pass through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import orjson
from starlette.concurrency import run_in_threadpool

from ingestion.auth import KeyStore, TooManyUnknownKeys, bearer
from ingestion.client_address import TrustedProxies
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
        tenant_header: str | None = None,
        trusted_proxies: str | Iterable[str] | None = None,
        value: float | Callable[[Scope], float] = 1,
        keystore: KeyStore | None = None,
    ):
        self.app = app
        self.recorder = recorder
        self.routes = routes
        self.tenant_header = tenant_header.lower().encode() if tenant_header else None
        if trusted_proxies is None:
            from meterline.core.settings import Settings

            trusted_proxies = Settings.from_env().trusted_proxies
        self.proxies = TrustedProxies(trusted_proxies)
        if self.tenant_header is not None and not self.proxies:
            raise ValueError(
                f"tenant_header={tenant_header!r} needs trusted_proxies (or "
                "METERLINE_TRUSTED_PROXIES): the proxies allowed to name a tenant; without "
                "them anyone could spend another tenant's quota. Or drop tenant_header and "
                "send tenant API keys"
            )
        self.value = value
        self.keystore = keystore or KeyStore(recorder.engine, proxies=self.proxies)
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
        tenant, refusal = await self._tenant(scope, headers)
        if refusal is not None:
            status, code, message, extra_headers = refusal
            return await _json(send, status, code, message, extra_headers)
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

    async def _tenant(self, scope: Scope, headers: dict) -> tuple[str | None, tuple | None]:
        """(tenant, None) or (None, (status, code, message, headers)): the key decides when
        there is one; else a tenant header counts only from a trusted proxy."""
        key = bearer((headers.get(b"authorization") or b"").decode("latin-1"))
        if key is not None:
            client = self.keystore.client_of(scope)
            try:
                tenant = await run_in_threadpool(self.keystore.tenant_for, key, client=client)
            except TooManyUnknownKeys as exc:
                retry = [(b"retry-after", str(exc.retry_after).encode())]
                return None, (429, "too_many_unknown_keys", str(exc), retry)
            if tenant is None:
                return None, (401, "unauthorized", UNKNOWN_KEY, _CHALLENGE)
            return tenant, None
        if self.tenant_header is not None and self.proxies.peer_is_trusted(scope):
            raw = headers.get(self.tenant_header)
            if raw:
                return raw.decode("latin-1"), None
        return None, (401, "unauthorized", MISSING_KEY, _CHALLENGE)


UNKNOWN_KEY = "Authorization: unknown or revoked API key; ask your provider for a new one"
MISSING_KEY = "Authorization: missing 'Bearer <tenant API key>' header"
_CHALLENGE = [(b"www-authenticate", b"Bearer")]


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
