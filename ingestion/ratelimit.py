"""Per-tenant rate limits in Redis: a token bucket of requests (one small Lua script, one
round trip, checked before the body is read) and the event budget (:class:`EventBudget`:
events per second, spent inside the record script itself, see ``lua/record.lua``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ingestion import keys
from meterline.core import clock

_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then tokens = math.min(burst, tokens + (now - ts) / 1000 * rate) end
if tokens < cost then
  return {0, math.ceil((cost - tokens) / rate * 1000)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - cost), 'ts', tostring(math.max(now, ts)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {1, 0}
"""


class RateLimiter:
    """``allow(tenant)`` -> (allowed, retry_after_seconds). ``rate`` tokens per second,
    at most ``burst`` saved up; each request costs one token."""

    def __init__(self, redis, *, prefix: str, rate: float, burst: float):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.prefix = prefix
        self.rate = rate
        self.burst = burst
        self._script = redis.register_script(_BUCKET)

    def allow(self, tenant_id: str, cost: float = 1.0) -> tuple[bool, int]:
        now_ms = clock.timestamp_ms()
        allowed, wait_ms = self._script(
            keys=[keys.rate_key(self.prefix, tenant_id)],
            args=[self.rate, self.burst, now_ms, cost],
        )
        return bool(allowed), max(1, math.ceil(int(wait_ms) / 1000)) if not allowed else 0


@dataclass(frozen=True)
class EventBudget:
    """A tenant's event budget: ``rate`` events per second, at most ``burst`` saved up. The
    record script spends it atomically with the batch (a batch of N events costs N), so it
    holds across processes and cannot be raced."""

    rate: float
    burst: int

    def __post_init__(self):
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("an event budget needs rate > 0 and burst >= 1")


class BudgetExceeded(Exception):
    """A tenant's batch is over its event budget; nothing of it was recorded.

    ``retry_after`` is in whole seconds, None when the batch is larger than the burst
    (retrying cannot help: split it)."""

    def __init__(self, tenant_id: str, events: int, budget: EventBudget, retry_after: int | None):
        self.tenant_id = tenant_id
        self.events = events
        self.budget = budget
        self.retry_after = retry_after
        limit = f"{budget.rate:,g} events/s, burst {budget.burst:,}"
        if retry_after is None:
            message = (
                f"a batch of {events:,} events is more than tenant {tenant_id!r}'s event budget "
                f"allows at once ({limit}); split the batch"
            )
        else:
            message = (
                f"tenant {tenant_id!r} is over its event budget ({limit}): these {events:,} "
                f"events would exceed it; retry after {retry_after} s"
            )
        super().__init__(message)
