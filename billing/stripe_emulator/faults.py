"""Fault injection: the next matching requests fail (before or after they execute) or stall.

``POST /_emulator/faults`` ``{"status": 500, "count": 3, "path_prefix": "/v1/invoiceitems",
"method": "POST", "skip": 0, "mode": "before"|"during"|"after", "delay_seconds": 0}``: the
next ``count`` matching requests (after ``skip`` of them pass) fail with ``status``.

- ``before``: the request never reaches the API (nothing runs, nothing is stored);
- ``during``: the request starts executing (its changes are kept: the worst case) and fails
  with ``status`` (``"keep_changes": false`` undoes them); like Stripe, that failure is stored under the request's idempotency key and
  replayed for the same key for 24 hours;
- ``after``: the request runs and its result is stored under the key, but the answer is lost
  on the way back (the client sees ``status``; a retry with the key replays the success).

``delay_seconds`` sleeps before answering (a timeout, when longer than the client's; or a
request in progress, whose key a concurrent request finds in use: 409).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from billing.stripe_emulator.failures import StripeFailure

FIELDS = {
    "status",
    "count",
    "path_prefix",
    "method",
    "skip",
    "mode",
    "delay_seconds",
    "keep_changes",
}


@dataclass
class Fault:
    status: int | None = 500
    count: int = 1
    path_prefix: str = "/v1/"
    method: str | None = None
    skip: int = 0
    mode: str = "before"
    delay_seconds: float = 0.0
    keep_changes: bool = True  # mode "during": whether what the request changed stays
    seen: int = field(default=0)

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path_prefix) and (
            self.method is None or self.method.upper() == method
        )

    def body(self) -> dict[str, Any]:
        """The Stripe-shaped error the injected status answers with."""
        status = self.status or 500
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

    def headers(self) -> dict[str, str]:
        # Stripe tells the SDK whether a retry is safe; an injected 500 is safe to retry.
        return {"Stripe-Should-Retry": "true"} if self.status and self.status >= 500 else {}


class Faults:
    """The armed faults, shared by the server's threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.armed: list[Fault] = []

    def add(self, spec: dict[str, Any]) -> Fault:
        unknown = set(spec) - FIELDS
        if unknown:
            raise ValueError(f"unknown fault field(s) {sorted(unknown)}; allowed: {sorted(FIELDS)}")
        fault = Fault(**spec)
        if fault.mode not in ("before", "during", "after"):
            raise ValueError("fault mode must be 'before', 'during' or 'after'")
        with self.lock:
            self.armed.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The fault this request triggers, if any (counting it down)."""
        with self.lock:
            for fault in self.armed:
                if fault.count > 0 and fault.matches(method, path):
                    fault.seen += 1
                    if fault.seen <= fault.skip:
                        continue
                    fault.count -= 1
                    return fault
            self.armed = [f for f in self.armed if f.count > 0]
        return None

    def clear(self) -> None:
        with self.lock:
            self.armed.clear()

    def describe(self) -> list[dict[str, Any]]:
        with self.lock:
            return [vars(f) for f in self.armed]
