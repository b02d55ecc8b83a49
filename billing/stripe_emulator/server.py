"""HTTP front of the Stripe emulator: Stripe's wire format, idempotency, errors and faults.

Speaks the part of ``https://api.stripe.com/v1`` that Meterline uses, form-encoded like the
real API, so the official ``stripe`` SDK works against it unchanged (point it here with
``StripeClient(api_key, base_addresses={"api": url})``). Admin endpoints (JSON, no auth):

- ``POST /_emulator/reset``: forget every object and idempotency key.
- ``POST /_emulator/faults`` ``{"status": 500, "count": 3, "path_prefix": "/v1/invoiceitems",
  "method": "POST", "skip": 0, "mode": "before"|"after", "delay_seconds": 0}``: the next
  ``count`` matching requests (after ``skip`` of them pass) fail with ``status`` (429, 500,
  502, 503...). ``mode: after`` executes the request first and then answers with the error, as
  when a response is lost on the way back; ``delay_seconds`` sleeps before answering (a
  timeout, when longer than the client's). ``DELETE /_emulator/faults`` clears them.
- ``GET /_emulator/faults``, ``GET /_emulator/health``, ``GET /_emulator/requests`` (a log of
  the last requests: method, path, status, idempotency key, replayed).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from billing.stripe_emulator.params import ParamError, as_int, check_params, decode_form
from billing.stripe_emulator.state import EmulatorState, StripeFailure
from meterline.core import clock

Handler = Callable[[EmulatorState, re.Match, dict[str, Any]], Any]


@dataclass
class Fault:
    status: int | None = 500
    count: int = 1
    path_prefix: str = "/v1/"
    method: str | None = None
    skip: int = 0
    mode: str = "before"
    delay_seconds: float = 0.0
    seen: int = field(default=0)

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path_prefix) and (
            self.method is None or self.method.upper() == method
        )


def _paginate(objects: list[dict[str, Any]], params: dict[str, Any], url: str, render) -> dict:
    limit = as_int(params, "limit", 10)
    if not 1 <= limit <= 100:
        raise ParamError("Invalid limit: must be between 1 and 100", "limit")
    ids = [o["id"] for o in objects]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after:
        if after not in ids:
            raise StripeFailure(
                404, f"No such object: '{after}'", code="resource_missing", param="starting_after"
            )
        objects = objects[ids.index(after) + 1 :]
        page = objects[:limit]
    elif before:
        if before not in ids:
            raise StripeFailure(
                404, f"No such object: '{before}'", code="resource_missing", param="ending_before"
            )
        objects = objects[: ids.index(before)]
        page = objects[-limit:]
        return {
            "object": "list",
            "data": [render(o) for o in page],
            "has_more": len(objects) > limit,
            "url": url,
        }
    else:
        page = objects[:limit]
    return {
        "object": "list",
        "data": [render(o) for o in page],
        "has_more": len(objects) > limit,
        "url": url,
    }


def _search_page(objects: list[dict[str, Any]], params: dict[str, Any], url: str, render) -> dict:
    limit = as_int(params, "limit", 10)
    if not 1 <= limit <= 100:
        raise ParamError("Invalid limit: must be between 1 and 100", "limit")
    page_token = params.get("page") or ""
    start = 0
    if page_token:
        if not page_token.startswith("page_") or not page_token[5:].isdigit():
            raise ParamError(f"Invalid page token: {page_token}", "page")
        start = int(page_token[5:])
    chunk = objects[start : start + limit]
    more = len(objects) > start + limit
    return {
        "object": "search_result",
        "data": [render(o) for o in chunk],
        "has_more": more,
        "next_page": f"page_{start + limit}" if more else None,
        "total_count": len(objects),
        "url": url,
    }


def _same(x: dict) -> dict:
    return x


# Routes: (method, path regex, SDK params class, handler) --------------------------------------
def _routes() -> list[tuple[str, re.Pattern, str, Handler]]:
    def inv(s: EmulatorState, inv_: dict) -> dict:
        return s.render_invoice(inv_)

    table: list[tuple[str, str, str, Handler]] = [
        ("POST", r"/v1/customers", "CustomerCreateParams", lambda s, m, p: s.create_customer(p)),
        ("GET", r"/v1/customers/search", "CustomerSearchParams",
         lambda s, m, p: _search_page(s.search("customers", p.get("query", "")), p, "/v1/customers/search", _same)),
        ("GET", r"/v1/customers", "CustomerListParams",
         lambda s, m, p: _paginate(s.list_customers(p), p, "/v1/customers", _same)),
        ("GET", r"/v1/customers/(?P<id>[^/]+)", "CustomerRetrieveParams", lambda s, m, p: s.customer(m["id"])),
        ("POST", r"/v1/customers/(?P<id>[^/]+)", "CustomerUpdateParams",
         lambda s, m, p: s.update_customer(m["id"], p)),
        ("POST", r"/v1/invoiceitems", "InvoiceItemCreateParams", lambda s, m, p: s.create_invoice_item(p)),
        ("GET", r"/v1/invoiceitems", "InvoiceItemListParams",
         lambda s, m, p: _paginate(s.list_invoice_items(p), p, "/v1/invoiceitems", _same)),
        ("GET", r"/v1/invoiceitems/(?P<id>[^/]+)", "InvoiceItemRetrieveParams",
         lambda s, m, p: s.invoice_item(m["id"])),
        ("DELETE", r"/v1/invoiceitems/(?P<id>[^/]+)", "InvoiceItemDeleteParams",
         lambda s, m, p: s.delete_invoice_item(m["id"])),
        ("POST", r"/v1/invoices", "InvoiceCreateParams", lambda s, m, p: inv(s, s.create_invoice(p))),
        ("GET", r"/v1/invoices/search", "InvoiceSearchParams",
         lambda s, m, p: _search_page(s.search("invoices", p.get("query", "")), p, "/v1/invoices/search",
                                      s.render_invoice)),
        ("GET", r"/v1/invoices", "InvoiceListParams",
         lambda s, m, p: _paginate(s.list_invoices(p), p, "/v1/invoices", s.render_invoice)),
        ("GET", r"/v1/invoices/(?P<id>[^/]+)", "InvoiceRetrieveParams",
         lambda s, m, p: inv(s, s.invoice_record(m["id"]))),
        ("POST", r"/v1/invoices/(?P<id>[^/]+)", "InvoiceUpdateParams",
         lambda s, m, p: inv(s, s.update_invoice(m["id"], p))),
        ("DELETE", r"/v1/invoices/(?P<id>[^/]+)", "InvoiceDeleteParams",
         lambda s, m, p: s.delete_invoice(m["id"])),
        ("GET", r"/v1/invoices/(?P<id>[^/]+)/lines", "InvoiceListLinesParams",
         lambda s, m, p: _paginate(
             [s.line_item(i) for i in s.items_of(s.invoice_record(m["id"])["id"])],
             p, f"/v1/invoices/{m['id']}/lines", _same)),
        ("POST", r"/v1/invoices/(?P<id>[^/]+)/finalize", "InvoiceFinalizeInvoiceParams",
         lambda s, m, p: inv(s, s.finalize(m["id"], p))),
        ("POST", r"/v1/invoices/(?P<id>[^/]+)/void", "InvoiceVoidInvoiceParams",
         lambda s, m, p: inv(s, s.void(m["id"]))),
        ("POST", r"/v1/invoices/(?P<id>[^/]+)/mark_uncollectible", "InvoiceMarkUncollectibleParams",
         lambda s, m, p: inv(s, s.mark_uncollectible(m["id"]))),
        ("POST", r"/v1/invoices/(?P<id>[^/]+)/pay", "InvoicePayParams",
         lambda s, m, p: inv(s, s.pay(m["id"], p))),
    ]  # fmt: skip
    return [(method, re.compile(pattern), cls, fn) for method, pattern, cls, fn in table]


ROUTES = _routes()


class Emulator:
    """The emulator's request processing, independent of the HTTP server class."""

    def __init__(self, state_dir: str | Path | None = None):
        self.state = EmulatorState(state_dir)
        self.faults: list[Fault] = []
        self.faults_lock = threading.Lock()
        self.log: deque[dict[str, Any]] = deque(maxlen=500)

    # faults ---------------------------------------------------------------------------------
    def add_fault(self, spec: dict[str, Any]) -> Fault:
        allowed = {"status", "count", "path_prefix", "method", "skip", "mode", "delay_seconds"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(
                f"unknown fault field(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        fault = Fault(**spec)
        if fault.mode not in ("before", "after"):
            raise ValueError("fault mode must be 'before' or 'after'")
        with self.faults_lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.faults_lock:
            for fault in self.faults:
                if fault.count > 0 and fault.matches(method, path):
                    fault.seen += 1
                    if fault.seen <= fault.skip:
                        continue
                    fault.count -= 1
                    return fault
            self.faults = [f for f in self.faults if f.count > 0]
        return None

    # requests -------------------------------------------------------------------------------
    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        split = urlsplit(raw_path)
        path = split.path.rstrip("/") or "/"
        if path.startswith("/_emulator"):
            return self._admin(method, path, body)
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

    def _admin(
        self, method: str, path: str, body: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if path == "/_emulator/health":
            return 200, {"ok": True}, {}
        if path == "/_emulator/reset" and method == "POST":
            self.state.reset()
            with self.faults_lock:
                self.faults.clear()
            self.log.clear()
            return 200, {"reset": True}, {}
        if path == "/_emulator/faults":
            if method == "POST":
                try:
                    spec = json.loads(body or "{}")
                    fault = self.add_fault(spec)
                except (ValueError, TypeError) as exc:
                    return (
                        400,
                        {"error": {"type": "invalid_request_error", "message": str(exc)}},
                        {},
                    )
                return 200, {"fault": vars(fault)}, {}
            if method == "DELETE":
                with self.faults_lock:
                    self.faults.clear()
                return 200, {"faults": []}, {}
            with self.faults_lock:
                return 200, {"faults": [vars(f) for f in self.faults]}, {}
        if path == "/_emulator/requests":
            return 200, {"requests": list(self.log)}, {}
        return (
            404,
            {"error": {"type": "invalid_request_error", "message": f"unknown admin path {path}"}},
            {},
        )

    def _api(
        self, method: str, path: str, query: str, headers: dict[str, str], body: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        request_id = "req_" + str(clock.timestamp_ms())
        base_headers = {
            "Request-Id": request_id,
            "Stripe-Version": headers.get("stripe-version", ""),
        }
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not key:
            return (
                401,
                StripeFailure(
                    401,
                    "You did not provide an API key. Set one with StripeClient('sk_test_...') "
                    "(the emulator accepts any test key).",
                ).body(),
                base_headers,
            )
        if not key.startswith(("sk_test_", "rk_test_")):
            return (
                401,
                StripeFailure(
                    401,
                    f"Invalid API Key provided: {key[:8]}***; the Stripe emulator only accepts test "
                    "keys (sk_test_...)",
                    code="api_key_expired" if key.startswith("sk_live_") else None,
                ).body(),
                base_headers,
            )

        fault = self._take_fault(method, path)
        if fault and fault.delay_seconds:
            time.sleep(fault.delay_seconds)
        if fault and fault.status and fault.mode == "before":
            return (
                fault.status,
                self._fault_body(fault.status),
                {**base_headers, **self._fault_headers(fault)},
            )

        try:
            params = decode_form(body if method == "POST" else query)
        except ParamError as exc:
            return (
                400,
                StripeFailure(400, str(exc), param=exc.param, code=exc.code).body(),
                base_headers,
            )

        status, payload, extra = self._execute(method, path, params, headers)
        extra = {**base_headers, **extra}
        if fault and fault.status and fault.mode == "after":
            return (
                fault.status,
                self._fault_body(fault.status),
                {**extra, **self._fault_headers(fault)},
            )
        return status, payload, extra

    @staticmethod
    def _fault_body(status: int) -> dict[str, Any]:
        if status == 429:
            return StripeFailure(
                429,
                "Request rate limit exceeded. (injected by the Meterline Stripe emulator)",
                code="rate_limit",
            ).body()
        if status >= 500:
            return StripeFailure(
                status,
                "An unknown error occurred (injected by the Meterline Stripe emulator).",
                type="api_error",
            ).body()
        return StripeFailure(status, f"Injected error {status}").body()

    @staticmethod
    def _fault_headers(fault: Fault) -> dict[str, str]:
        # Stripe tells the SDK whether a retry is safe; an injected 500 is safe to retry.
        return {"Stripe-Should-Retry": "true"} if fault.status and fault.status >= 500 else {}

    def _execute(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        route = None
        for r_method, pattern, params_class, handler in ROUTES:
            match = pattern.fullmatch(path)
            if match and r_method == method:
                route = (match, params_class, handler)
                break
        if route is None:
            return (
                404,
                StripeFailure(
                    404,
                    f"Unrecognized request URL ({method}: {path}). The Meterline Stripe emulator "
                    "implements customers, invoices and invoiceitems.",
                ).body(),
                {},
            )
        match, params_class, handler = route
        idem_key = headers.get("idempotency-key") if method == "POST" else None
        fingerprint = {"method": method, "path": path, "params": params}
        with self.state.lock:
            if idem_key:
                previous = self.state.idempotent_result(idem_key)
                if previous is not None:
                    if (previous["method"], previous["path"]) != (method, path):
                        return (
                            400,
                            StripeFailure(
                                400,
                                "Keys for idempotent requests can only be used for the same endpoint "
                                f"they were first used for ('{previous['method']} {previous['path']}' vs "
                                f"'{method} {path}'). Try using a key other than '{idem_key}' if you "
                                "meant to execute a different request.",
                                type="idempotency_error",
                            ).body(),
                            {},
                        )
                    if previous["params"] != params:
                        return (
                            400,
                            StripeFailure(
                                400,
                                "Keys for idempotent requests can only be used with the same parameters "
                                f"they were first used with. Try using a key other than '{idem_key}' if "
                                "you meant to execute a different request.",
                                type="idempotency_error",
                            ).body(),
                            {},
                        )
                    return (
                        previous["status"],
                        previous["body"],
                        {
                            "Idempotent-Replayed": "true",
                            "Idempotency-Key": idem_key,
                        },
                    )
            try:
                check_params(params, params_class)
                result = handler(self.state, match, params)
                status, payload = 200, json.loads(json.dumps(result))
            except ParamError as exc:
                # invalid parameters: nothing executed, nothing remembered (as Stripe)
                return 400, StripeFailure(400, str(exc), param=exc.param, code=exc.code).body(), {}
            except StripeFailure as exc:
                status, payload = exc.status, exc.body()
            if idem_key:
                self.state.remember(idem_key, {**fingerprint, "status": status, "body": payload})
            if method in ("POST", "DELETE"):
                self.state.save()
        extra = {"Idempotency-Key": idem_key} if idem_key else {}
        return status, payload, extra


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
            status, payload, extra = (
                500,
                StripeFailure(
                    500, f"Emulator error: {type(exc).__name__}: {exc}", type="api_error"
                ).body(),
                {},
            )
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
