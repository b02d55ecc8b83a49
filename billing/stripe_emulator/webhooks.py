"""Webhook delivery: each event is signed like Stripe signs it and posted to the endpoint
configured with ``POST /_emulator/config {"webhook_url": ..., "webhook_secret": ...}``.

The ``Stripe-Signature`` header is ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
keyed with the secret's UTF-8 bytes, so ``stripe.Webhook.construct_event`` verifies it. A
delivery that fails (network error or a non-2xx answer) is retried with exponential backoff
(:data:`RETRY_DELAYS`), in order, from one background thread; the outcome of every attempt is
kept for ``GET /_emulator/webhooks``. The secret is never returned or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from typing import Any

from meterline.core import clock
from meterline.core.redaction import url_origin

RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)  # seconds before the 2nd, 3rd... attempt


def signature_header(body: str, secret: str, timestamp: int | None = None) -> str:
    """Stripe's ``Stripe-Signature`` value for ``body``."""
    at = int(clock.timestamp()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


class WebhookSender:
    """One thread posting queued events, in order, to the endpoint configured at send time."""

    def __init__(self, config: Callable[[], dict[str, Any]], timeout: float = 5.0):
        self.config = config  # the emulator's current config (webhook_url, webhook_secret)
        self.timeout = timeout
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self.log: deque[dict[str, Any]] = deque(maxlen=500)
        self.thread = threading.Thread(target=self._run, name="stripe-webhooks", daemon=True)
        self.thread.start()

    def enqueue(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.queue.put(event)

    def idle(self) -> bool:
        return self.queue.unfinished_tasks == 0

    def _run(self) -> None:
        while True:
            event = self.queue.get()
            try:
                self._deliver(event)
            finally:
                self.queue.task_done()

    def _deliver(self, event: dict[str, Any]) -> None:
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS), start=1):
            time.sleep(delay)
            config = self.config()
            url, secret = config.get("webhook_url"), config.get("webhook_secret")
            if not url or not secret:
                return  # no endpoint (any more): Stripe would not send either
            outcome = self._post(url, secret, event)
            self.log.append(
                {"event": event["id"], "type": event["type"], "attempt": attempt,
                 "endpoint": url_origin(url), "outcome": outcome}
            )  # fmt: skip
            if outcome.startswith("2"):
                return

    def _post(self, url: str, secret: str, event: dict[str, Any]) -> str:
        body = json.dumps(event, indent=2)
        request = urllib.request.Request(
            url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": signature_header(body, secret),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return str(response.status)
        except urllib.error.HTTPError as exc:
            return str(exc.code)
        except (urllib.error.URLError, OSError) as exc:
            return f"network error: {type(exc).__name__}"
