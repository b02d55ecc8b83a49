"""How long and how many: the limits that keep slow or numerous clients from holding
``meterline serve`` hostage.

- Headers: :func:`header_deadline_protocol` is uvicorn's h11 protocol with a deadline for a
  request's headers (``METERLINE_HTTP_HEADER_TIMEOUT``, counted from the connection, or from
  the end of the previous response plus the keep-alive pause); a client that trickles headers
  is disconnected. h11 also caps the size of incomplete headers
  (``h11_max_incomplete_event_size``, 16 KiB).
- Bodies: :class:`SlowBodyGuard` (ASGI) gives a request ``METERLINE_HTTP_BODY_TIMEOUT`` seconds
  in total to deliver its body; after that it answers 408 with ``Connection: close`` (uvicorn
  then closes the connection) and the route sees a disconnect.
- How many: ``limit_concurrency`` (``METERLINE_HTTP_MAX_CONCURRENCY``, 503 beyond it) and
  ``timeout_keep_alive`` (``METERLINE_HTTP_KEEPALIVE_TIMEOUT``), uvicorn's own.

uvicorn has no header or body timeout of its own (its keep-alive timer starts only after a
first response and is reset by every byte), hence the two small pieces here.
"""

from __future__ import annotations

import asyncio
import functools

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

H11_MAX_HEADER_BYTES = 16 * 1024
LATE_READ_GRACE = 0.01  # seconds: a route that reads its body late still gets what arrived


class _HeaderDeadline:
    """Mixin for a uvicorn HTTP protocol: close the connection when no new request's headers
    are complete ``header_timeout`` seconds after the connection opened (or after the last
    response and the keep-alive pause)."""

    header_timeout: float = 10.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_header_deadline(self.header_timeout)

    def on_response_complete(self) -> None:
        finished = self.cycle  # type: ignore[attr-defined]
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():  # type: ignore[attr-defined]
            wait = self.header_timeout + self.timeout_keep_alive  # type: ignore[attr-defined]
            self._arm_header_deadline(wait, finished)

    def _arm_header_deadline(self, seconds: float, cycle=None) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(seconds, self._header_deadline_passed, cycle)

    def _header_deadline_passed(self, cycle) -> None:
        # A new request started since the deadline was set: its headers arrived in time.
        if self.cycle is cycle and not self.transport.is_closing():  # type: ignore[attr-defined]
            self.transport.close()  # type: ignore[attr-defined]


def header_deadline_protocol(header_timeout: float) -> type:
    """uvicorn's h11 protocol with a header deadline, for ``uvicorn.Config(http=...)``."""
    return type(
        "HeaderDeadlineH11Protocol",
        (_HeaderDeadline, H11Protocol),
        {"header_timeout": float(header_timeout)},
    )


class SlowBodyGuard:
    """ASGI middleware: a request body must arrive within ``body_timeout`` seconds of the
    request's start, else 408 ``request_timeout`` with ``Connection: close``."""

    def __init__(self, app, *, body_timeout: float):
        self.app = app
        self.body_timeout = body_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        state = {"body_done": False, "started": False, "timed_out": False, "late": False}

        async def guarded_receive():
            if state["body_done"] or state["timed_out"]:
                return await receive()
            remaining = deadline - loop.time()
            if remaining <= 0:  # what had arrived by the deadline is still read, once
                remaining = 0 if state["late"] else LATE_READ_GRACE
                state["late"] = True
            try:
                message = await asyncio.wait_for(receive(), remaining)
            except TimeoutError:
                state["timed_out"] = True
                if not state["started"]:
                    state["started"] = True
                    await _request_timeout(send, self.body_timeout)
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                state["body_done"] = True
            return message

        async def guarded_send(message):
            if state["timed_out"]:
                return  # the 408 is the answer
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        return await self.app(scope, guarded_receive, guarded_send)


async def _request_timeout(send, seconds: float) -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": "request_timeout",
                "field": "body",
                "message": f"body: not received within {seconds:g} s; send it faster or "
                "in smaller batches",
            }
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 408,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def uvicorn_options(settings, *, http: object | None = None) -> dict:
    """uvicorn's options for ``meterline serve``: its limits from the settings. ``http`` is the
    protocol: by default a class with the settings' header deadline; with several workers it
    must be the import string of :class:`HeaderDeadlineFromSettings` (a worker is a new
    process that reads the same settings)."""
    return {
        "http": http or header_deadline_protocol(settings.http_header_timeout),
        "h11_max_incomplete_event_size": H11_MAX_HEADER_BYTES,
        "limit_concurrency": settings.http_max_concurrency,
        "timeout_keep_alive": settings.http_keepalive_timeout,
        "proxy_headers": False,  # Meterline reads X-Forwarded-For itself, from trusted proxies
    }


def uvicorn_config(app, *, host: str, port: int, settings, **extra):
    """The ``uvicorn.Config`` of ``meterline serve``: its limits from the settings."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, **uvicorn_options(settings), **extra)


class HeaderDeadlineFromSettings(_HeaderDeadline, H11Protocol):
    """The header deadline of this process's ``METERLINE_HTTP_HEADER_TIMEOUT``: importable
    (``meterline.http_limits:HeaderDeadlineFromSettings``), for uvicorn's worker processes."""

    @property
    def header_timeout(self) -> float:  # type: ignore[override]
        return _settings_header_timeout()


@functools.cache
def _settings_header_timeout() -> float:
    from meterline.core.settings import Settings

    return Settings.from_env().http_header_timeout
