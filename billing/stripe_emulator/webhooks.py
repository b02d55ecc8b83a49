"""Webhook delivery: each event is signed like Stripe signs it and posted to every endpoint that
listens to it (:func:`webhook_targets`): the one configured with ``POST /_emulator/config
{"webhook_url": ..., "webhook_secret": ...}``, and each enabled endpoint created through
``POST /v1/webhook_endpoints`` whose ``enabled_events`` name the event's type (or ``*``),
signed with the secret its creation returned.

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


def webhook_targets(data: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
    """(url, secret) of every endpoint an event of ``event_type`` goes to, in the emulator's
    state ``data`` as it is now."""
    targets = []
    config = data["config"]
    if config.get("webhook_url") and config.get("webhook_secret"):
        targets.append((config["webhook_url"], config["webhook_secret"]))
    secrets = data.get("webhook_endpoint_secrets", {})
    for endpoint in list(data.get("webhook_endpoints", {}).values()):
        listens = "*" in endpoint["enabled_events"] or event_type in endpoint["enabled_events"]
        if endpoint["status"] == "enabled" and listens and endpoint["id"] in secrets:
            targets.append((endpoint["url"], secrets[endpoint["id"]]))
    return targets


class WebhookSender:
    """One thread posting queued events, in order, to the endpoints listening at send time."""

    def __init__(self, targets: Callable[[str], list[tuple[str, str]]], timeout: float = 5.0):
        self.targets = targets  # event type -> [(url, secret)] (webhook_targets of the state)
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
        delivered: set[str] = set()
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS), start=1):
            time.sleep(delay)
            # endpoints removed since are not tried again: Stripe would not send either
            pending = [(u, s) for u, s in self.targets(event["type"]) if u not in delivered]
            if not pending:
                return
            for url, secret in pending:
                outcome = self._post(url, secret, event)
                self.log.append(
                    {"event": event["id"], "type": event["type"], "attempt": attempt,
                     "endpoint": url_origin(url), "outcome": outcome}
                )  # fmt: skip
                if outcome.startswith("2"):
                    delivered.add(url)

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
