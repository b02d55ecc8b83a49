"""The Redis list: ``LPUSH`` of the message's JSON to ``<prefix>:notifications``
(``meterline:notifications`` with the default prefix), trimmed to the newest
:data:`REDIS_LIST_MAX` entries. Consumers ``BRPOP`` it (oldest first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.notification import ChannelNotConfigured, DeliveryError, Notification

REDIS_LIST_MAX = 10_000


@dataclass(frozen=True)
class RedisListChannel:
    """Pushes to ``<prefix>:notifications``; without a client every send is skipped."""

    redis: Any = None
    prefix: str = "meterline"

    @property
    def key(self) -> str:
        return f"{self.prefix}:notifications"

    def describe(self) -> str:
        return f"Redis list {self.key}"

    def send(self, message: Notification) -> str:
        if self.redis is None:
            raise ChannelNotConfigured("no Redis client given to the notifier")
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.lpush(self.key, message.json_body())
            pipe.ltrim(self.key, 0, REDIS_LIST_MAX - 1)
            pipe.execute()
        except Exception as exc:  # redis.RedisError and connection errors
            raise DeliveryError(f"Redis LPUSH {self.key}: {exc}") from exc
        return self.key
