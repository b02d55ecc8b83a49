"""The alert webhook: ``POST`` of JSON with a Slack-compatible ``text`` field to
``ALERT_WEBHOOK_URL``, signed with HMAC-SHA256.

The signature covers ``<timestamp>.<body>`` (the timestamp defeats replays) and is sent as
``X-Meterline-Signature: sha256=<hex>`` with ``X-Meterline-Timestamp: <unix seconds>`` and
``X-Meterline-Delivery: <message key>`` (receivers may dedupe on it). Receivers verify with
:func:`verify_signature`. The secret is ``METERLINE_WEBHOOK_SECRET``, else
``METERLINE_ADMIN_KEY``, else a random secret generated once and kept in
``<METERLINE_HOME>/webhook_secret`` (mode 0600) - read it there to configure a receiver.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from alerts.notification import ChannelNotConfigured, DeliveryError, Notification, NotifyConfigError
from meterline.core import clock
from meterline.core.secrets import stored_secret

SIGNATURE_HEADER = "X-Meterline-Signature"
TIMESTAMP_HEADER = "X-Meterline-Timestamp"
DELIVERY_HEADER = "X-Meterline-Delivery"
SIGNATURE_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``<timestamp>.<body>``)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    *,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does: recompute the signature and reject stale timestamps."""
    if not timestamp or not signature:
        return False
    try:
        age = abs((now if now is not None else clock.timestamp()) - int(timestamp))
    except ValueError:
        return False
    if age > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def signing_secret(
    home: Path, *, configured: str | None = None, admin_key: str | None = None
) -> str:
    """``configured`` (METERLINE_WEBHOOK_SECRET), else ``admin_key`` (METERLINE_ADMIN_KEY),
    else a generated secret kept in ``<home>/webhook_secret`` (created once, mode 0600)."""
    # 48 random bytes: 64 characters, as long as the hex secrets of earlier versions.
    return stored_secret(home, "webhook_secret", configured=configured or admin_key, nbytes=48)


@dataclass(frozen=True)
class WebhookChannel:
    """Signed ``POST`` to ``url``; without a ``url`` every send is skipped."""

    url: str | None = None
    secret: str | None = None
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(("http://", "https://")):
            raise NotifyConfigError(
                f"ALERT_WEBHOOK_URL must be an http(s) URL, got {self.url!r}; "
                "unset it to skip webhook alerts"
            )
        if self.url and not self.secret:
            raise NotifyConfigError(
                "a webhook secret is required to sign ALERT_WEBHOOK_URL payloads: "
                "set METERLINE_WEBHOOK_SECRET"
            )

    def describe(self) -> str:
        return self.url or "not configured (ALERT_WEBHOOK_URL unset)"

    def send(self, message: Notification) -> str:
        if not self.url:
            raise ChannelNotConfigured("ALERT_WEBHOOK_URL is not set")
        import httpx

        body = message.json_body()
        timestamp = str(int(clock.timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "meterline-alerts/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secret or "", timestamp, body),
            DELIVERY_HEADER: message.key,
        }
        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.url}: {exc}") from exc
        if response.status_code >= 300:
            raise DeliveryError(
                f"webhook {self.url} answered HTTP {response.status_code}: {response.text[:200]}"
            )
        return f"{self.url} (HTTP {response.status_code})"
