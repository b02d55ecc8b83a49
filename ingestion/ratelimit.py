"""A per-tenant token bucket in Redis (one small Lua script, one round trip)."""

from __future__ import annotations

import math

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
