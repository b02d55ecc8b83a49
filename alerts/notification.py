"""The message every channel carries, the one interface every channel implements, and the
errors a channel raises."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


class NotifyConfigError(ValueError):
    """A notification setting is unusable; the message names the variable and the fix."""


class ChannelNotConfigured(RuntimeError):
    """The channel has no destination (e.g. no ``ALERT_WEBHOOK_URL``): the delivery is skipped."""


class DeliveryError(RuntimeError):
    """A delivery was attempted and failed; it may be retried."""


@dataclass(frozen=True)
class Notification:
    """One message, rendered once and sent on any channel.

    ``key`` is stable for the same logical message (e.g. ``quota-acme-api_calls-2026-11-90``)
    and becomes the Message-ID, the outbox file name and the webhook's ``webhook-id``.
    """

    key: str
    subject: str
    text: str
    payload: Mapping[str, object] = field(default_factory=dict)

    def json_body(self) -> bytes:
        body = {"text": self.text, **self.payload, "id": self.key}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


class Channel(Protocol):
    """One way out (an email address, the webhook, the Redis list)."""

    def send(self, message: Notification) -> str:
        """Deliver ``message``; return where it went (for ``meterline.alerts`` and run
        metadata). Raise :class:`ChannelNotConfigured` when the channel has no destination
        and :class:`DeliveryError` when the attempt failed."""
        ...

    def describe(self) -> str:
        """Where this channel delivers, for summaries."""
        ...
