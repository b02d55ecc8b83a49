"""What the validator needs to know from Postgres: which tenants exist (and are active) and
which meters exist, cached in process so validation costs no round trip.

The cache refreshes every ``ttl`` seconds and, on a miss (an unknown tenant or meter), at
most once per ``miss_interval`` seconds, so a new tenant works at once and a flood of bad
tenant ids cannot hammer Postgres. The Lua script re-checks the tenant's status from the
Redis plan cache, so a cancellation takes effect at once even inside the cache window.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, text


@dataclass(frozen=True)
class MeterInfo:
    meter: str
    aggregation: str
    unit: str
    unique_dimension: str | None


class Directory:
    def __init__(self, engine: Engine, *, ttl: float = 5.0, miss_interval: float = 1.0):
        self.engine = engine
        self.ttl = ttl
        self.miss_interval = miss_interval
        self.tenants: dict[str, str] = {}
        self.meters: dict[str, MeterInfo] = {}
        self.canceled_at: dict[str, int] = {}  # tenant -> cancellation time, epoch microseconds
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "select tenant_id, status, "
                    "(extract(epoch from canceled_at) * 1000000)::bigint from meterline.tenants"
                )
            ).all()
            tenants = {r[0]: r[1] for r in rows}
            canceled_at = {r[0]: r[2] for r in rows if r[1] == "canceled" and r[2] is not None}
            meters = {
                r[0]: MeterInfo(r[0], r[1], r[2], r[3])
                for r in conn.execute(
                    text("select meter, aggregation, unit, unique_dimension from meterline.meters")
                )
            }
        self.tenants, self.meters, self.canceled_at = tenants, meters, canceled_at
        self._loaded_at = time.monotonic()

    def fresh(self) -> Directory:
        """Refresh when older than ``ttl``; returns self for chaining."""
        if time.monotonic() - self._loaded_at > self.ttl:
            with self._lock:
                if time.monotonic() - self._loaded_at > self.ttl:
                    self.refresh()
        return self

    def refresh_on_miss(self) -> bool:
        """Reload after a miss unless that happened less than ``miss_interval`` ago."""
        if time.monotonic() - self._loaded_at < self.miss_interval:
            return False
        with self._lock:
            if time.monotonic() - self._loaded_at < self.miss_interval:
                return False
            self.refresh()
        return True

    @classmethod
    def fixed(cls, tenants: dict[str, str], meters: dict[str, MeterInfo]) -> Directory:
        """A directory that never touches Postgres (unit tests, offline validation)."""
        directory = cls(None, ttl=float("inf"), miss_interval=float("inf"))  # type: ignore[arg-type]
        directory.tenants, directory.meters = dict(tenants), dict(meters)
        directory._loaded_at = time.monotonic()
        return directory
