"""HTTP front of the Stripe emulator: Stripe's wire format, authentication, errors.

Speaks the part of ``https://api.stripe.com/v1`` that Meterline uses, form-encoded like the
real API, so the official ``stripe`` SDK works against it unchanged (point it here with
``StripeClient(api_key, base_addresses={"api": url})``). The calls are in ``routes``,
idempotency keys in ``idempotency``, fault injection in ``faults``. Admin endpoints (JSON)
answer only a caller that sends the emulator's own token, ``X-Emulator-Token: <token>`` (kept
mode 0600 in ``<state_dir>/admin_token``, so the CLI and test fixtures that share the state
dir can read it; in memory without a state dir: ``RunningEmulator.admin_token``), and never a
browser page of another origin (a request with an ``Origin`` header or a cross-site
``Sec-Fetch-Site`` is refused), so a web page cannot reset or fault the emulator:

- ``POST /_emulator/reset``: forget every object and idempotency key.
- ``POST /_emulator/faults`` (see ``faults``); ``DELETE /_emulator/faults`` clears them.
- ``POST /_emulator/config`` ``{"search_lag_seconds": 60}``: Stripe's search is eventually
  consistent; an object becomes searchable only that long after it was created, on the
  emulator's clock (``meterline.core.clock``). ``{"webhook_url": "http://...",
  "webhook_secret": "whsec_..."}``: every event (``events``) is signed and posted there
  (``webhooks``). ``GET`` shows the config (never the secret); reset clears it.
- ``POST /_emulator/collect`` ``{"outcome": "paid" | "payment_failed", "invoice": "in_..."}``:
  Stripe's automatic collection of open, auto-advancing ``charge_automatically`` invoices
  (all of them, or the one named), succeeding or declined.
- ``GET /_emulator/webhooks``: the last delivery attempts (event, endpoint origin, outcome).
- ``GET /_emulator/faults``, ``GET /_emulator/health``, ``GET /_emulator/requests`` (a log of
  the last requests: method, path, status, idempotency key, replayed).
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from billing.stripe_emulator import idempotency, invoice_lifecycle
from billing.stripe_emulator.failures import StripeFailure
from billing.stripe_emulator.faults import Fault, Faults
from billing.stripe_emulator.param_schema import check_params
from billing.stripe_emulator.params import ParamError, decode_form
from billing.stripe_emulator.routes import find_route
from billing.stripe_emulator.state import EmulatorState
from billing.stripe_emulator.upgrade import upgrade
from billing.stripe_emulator.webhooks import WebhookSender, webhook_targets
from meterline.core import clock
from meterline.core.secrets import stored_secret

Response = tuple[int, dict[str, Any], dict[str, str]]
ADMIN_TOKEN_HEADER = "X-Emulator-Token"
ADMIN_TOKEN_FILE = "admin_token"


class Emulator:
    """The emulator's request processing, independent of the HTTP server class."""

    def __init__(self, state_dir: str | Path | None = None):
        self.admin_token = (
            stored_secret(Path(state_dir), ADMIN_TOKEN_FILE)
            if state_dir
            else secrets.token_urlsafe(32)
        )
        self.state = EmulatorState(state_dir)
        if upgrade(self.state.data):  # state saved by an older emulator
            self.state.save()
        self.faults = Faults()
        self.in_flight = idempotency.InFlight()
        self.log: deque[dict[str, Any]] = deque(maxlen=500)
        self.webhooks = WebhookSender(lambda kind: webhook_targets(self.state.data, kind))

    def _send_events(self) -> None:
        """Hand the events the last call queued to the webhook sender (under the state lock)."""
        events, self.state.outbox[:] = list(self.state.outbox), []
        self.webhooks.enqueue(events)

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: str) -> Response:
        split = urlsplit(raw_path)
        path = split.path.rstrip("/") or "/"
        if path.startswith("/_emulator"):
            refused = self._admin_refusal(headers)
            return refused if refused is not None else self._admin(method, path, body)
        status, payload, extra = self._api(method, path, split.query, headers, body)
        self.log.append(
            {
                "method": method,
                "path": path,
                "status": status,
                "idempotency_key": headers.get("idempotency-key"),
                "replayed": extra.get("Idempotent-Replayed") == "true",
            }
        )
        return status, payload, extra

    def _admin_refusal(self, headers: dict[str, str]) -> Response | None:
        """403 for a browser request from another page, 401 without the emulator's token."""
        if "origin" in headers or headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return 403, _admin_error("cross-origin requests to /_emulator/* are refused"), {}
        given = headers.get(ADMIN_TOKEN_HEADER.lower(), "")
        if not hmac.compare_digest(given.encode(), self.admin_token.encode()):
            return 401, _admin_error(
                f"/_emulator/* needs the header {ADMIN_TOKEN_HEADER}: the token in "
                f"<state dir>/{ADMIN_TOKEN_FILE}"
            ), {}  # fmt: skip
        return None

    def _admin(self, method: str, path: str, body: str) -> Response:
        if path == "/_emulator/health":
            return 200, {"ok": True}, {}
        if path == "/_emulator/reset" and method == "POST":
            self.state.reset()
            self.faults.clear()
            self.log.clear()
            self.webhooks.log.clear()
            return 200, {"reset": True}, {}
        if path == "/_emulator/faults":
            if method == "POST":
                try:
                    fault = self.faults.add(json.loads(body or "{}"))
                except (ValueError, TypeError) as exc:
                    return (
                        400,
                        {"error": {"type": "invalid_request_error", "message": str(exc)}},
                        {},
                    )
                return 200, {"fault": vars(fault)}, {}
            if method == "DELETE":
                self.faults.clear()
                return 200, {"faults": []}, {}
            return 200, {"faults": self.faults.describe()}, {}
        if path == "/_emulator/config":
            if method == "POST":
                try:
                    self.state.configure(json.loads(body or "{}"))
                except (ValueError, TypeError) as exc:
                    return 400, _admin_error(str(exc)), {}
            return 200, {"config": self.state.public_config()}, {}
        if path == "/_emulator/collect" and method == "POST":
            return self._collect(body)
        if path == "/_emulator/webhooks":
            return 200, {"deliveries": list(self.webhooks.log)}, {}
        if path == "/_emulator/requests":
            return 200, {"requests": list(self.log)}, {}
        return (
            404,
            {"error": {"type": "invalid_request_error", "message": f"unknown admin path {path}"}},
            {},
        )

    def _collect(self, body: str) -> Response:
        try:
            request = json.loads(body or "{}")
            with self.state.lock:
                touched = invoice_lifecycle.collect(
                    self.state, request.get("invoice"), request.get("outcome", "paid")
                )
                self.state.save()
                self._send_events()
        except (ValueError, TypeError, AttributeError) as exc:
            return 400, _admin_error(str(exc)), {}
        return 200, {"collected": [{"id": i["id"], "status": i["status"]} for i in touched]}, {}

    def _api(
        self, method: str, path: str, query: str, headers: dict[str, str], body: str
    ) -> Response:
        base_headers = {
            "Request-Id": "req_" + str(clock.timestamp_ms()),
            "Stripe-Version": headers.get("stripe-version", ""),
        }
        refused = _authentication_error(headers.get("authorization", ""))
        if refused is not None:
            return 401, refused.body(), base_headers

        idem_key = headers.get("idempotency-key") if method == "POST" else None
        if not idem_key:
            return self._api_call(method, path, query, base_headers, body, None)
        refused = idempotency.too_long(idem_key) or self.in_flight.claim(idem_key)
        if refused is not None:
            return refused[0], refused[1], {**base_headers, **refused[2]}
        try:
            return self._api_call(method, path, query, base_headers, body, idem_key)
        finally:
            self.in_flight.release(idem_key)

    def _api_call(
        self,
        method: str,
        path: str,
        query: str,
        base_headers: dict[str, str],
        body: str,
        idem_key: str | None,
    ) -> Response:
        fault = self.faults.take(method, path)
        if fault and fault.delay_seconds:
            time.sleep(fault.delay_seconds)
        if fault and fault.status and fault.mode == "before":
            return fault.status, fault.body(), {**base_headers, **fault.headers()}

        try:
            params = decode_form(body if method == "POST" else query)
        except ParamError as exc:
            return (
                400,
                StripeFailure(400, str(exc), param=exc.param, code=exc.code).body(),
                base_headers,
            )

        during = fault if fault and fault.status and fault.mode == "during" else None
        status, payload, extra = self._execute(method, path, params, idem_key, during)
        extra = {**base_headers, **extra}
        if fault and fault.status and fault.mode == "after":
            return fault.status, fault.body(), {**extra, **fault.headers()}
        return status, payload, extra

    def _execute(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        idem_key: str | None,
        during: Fault | None,
    ) -> Response:
        """Run the call; ``during``: it fails with a 500 once it started executing (stored
        under the key, as Stripe does, with whatever the call changed kept)."""
        route = find_route(method, path)
        if route is None:
            return (
                404,
                StripeFailure(
                    404,
                    f"Unrecognized request URL ({method}: {path}). The Meterline Stripe emulator "
                    "implements customers (and their balance transactions), invoices, invoiceitems, "
                    "account, webhook_endpoints and events.",
                ).body(),
                {},
            )
        match, params_class, handler = route
        with self.state.lock:
            if idem_key:
                replayed = idempotency.replay(self.state, idem_key, method, path, params)
                if replayed is not None:
                    return replayed
            before = json.dumps(self.state.data) if during and not during.keep_changes else None
            try:
                check_params(params, params_class)
                result = handler(self.state, match, params)
                status, payload = 200, json.loads(json.dumps(result))
            except ParamError as exc:
                # invalid parameters: nothing executed, nothing remembered (as Stripe)
                return 400, StripeFailure(400, str(exc), param=exc.param, code=exc.code).body(), {}
            except StripeFailure as exc:
                status, payload = exc.status, exc.body()
            except Exception as exc:  # a bug in the emulator: Stripe's stored 500
                status, payload = 500, _internal_error(exc)
            if during is not None:
                status, payload = during.status or 500, during.body()
                if before is not None:
                    self.state.data = json.loads(before)
                    self.state.outbox.clear()  # what was rolled back never happened
            if idem_key and idempotency.stores(status, payload):
                idempotency.remember(self.state, idem_key, method, path, params, status, payload)
            if method in ("POST", "DELETE"):
                self.state.save()
            self._send_events()
        extra = {"Idempotency-Key": idem_key} if idem_key else {}
        return status, payload, extra


def _internal_error(exc: Exception) -> dict[str, Any]:
    return StripeFailure(
        500, f"Emulator error: {type(exc).__name__}: {exc}", type="api_error"
    ).body()


def _admin_error(message: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "message": message}}


def _authentication_error(authorization: str) -> StripeFailure | None:
    """Why the request's API key is refused (none, or not a test key), or None."""
    key = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    if not key:
        return StripeFailure(
            401,
            "You did not provide an API key. Set one with StripeClient('sk_test_...') "
            "(the emulator accepts any test key).",
        )
    if not key.startswith(("sk_test_", "rk_test_")):
        return StripeFailure(
            401,
            f"Invalid API Key provided: {key[:8]}***; the Stripe emulator only accepts test "
            "keys (sk_test_...)",
            code="api_key_expired" if key.startswith("sk_live_") else None,
        )
    return None


class _RequestHandler(BaseHTTPRequestHandler):
    server_version = "MeterlineStripeEmulator/1.0"
    protocol_version = "HTTP/1.1"
    emulator: Emulator

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, payload, extra = self.emulator.handle(self.command, self.path, headers, body)
        except Exception as exc:  # a bug in the emulator: answer like Stripe's 500
            status, payload, extra = 500, _internal_error(exc), {}
        data = json.dumps(payload, indent=2).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                if value:
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (an injected timeout)

    do_GET = do_POST = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, host: str, port: int, state_dir: str | Path | None, *, verbose: bool = False
    ):
        self.emulator = Emulator(state_dir)
        self.verbose = verbose
        handler = type("Handler", (_RequestHandler,), {"emulator": self.emulator})
        super().__init__((host, port), handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


@dataclass
class RunningEmulator:
    server: EmulatorServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    @property
    def admin_token(self) -> str:
        """The token ``/_emulator/*`` needs (header ``X-Emulator-Token``)."""
        return self.server.emulator.admin_token

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_emulator(
    host: str = "127.0.0.1", port: int = 0, state_dir: str | Path | None = None
) -> RunningEmulator:
    """Start the emulator in a background thread (``port=0`` picks a free port)."""
    server = EmulatorServer(host, port, state_dir)
    thread = threading.Thread(target=server.serve_forever, name="stripe-emulator", daemon=True)
    thread.start()
    return RunningEmulator(server, thread)
