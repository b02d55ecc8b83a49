"""The metering SDK: validate a batch, then record it in one Redis round trip.

    recorder = UsageRecorder(redis.Redis.from_url(url), engine, prefix="meterline")
    result = recorder.record([{"tenant_id": "acme", "meter": "api_calls", "value": 1}])
    result.accepted, result.duplicates, result.rejected
    result.outcomes[0].status      # "accepted" | "duplicate" | "rejected"

The batch is grouped by tenant and each tenant's part runs through ``lua/record.lua`` with
one EVALSHA (several tenants: one pipeline, still one round trip). Each EVALSHA is atomic:
dedupe, quota check-and-increment, counters and the stream append happen together or not at
all. See docs/ingestion.md for the key layout and the memory cost of dedupe.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from redis.exceptions import NoScriptError
from sqlalchemy import Engine

from ingestion import keys
from ingestion.directory import Directory
from ingestion.metrics import RECORD_SCRIPT_SECONDS
from ingestion.outcomes import BatchResult, EventOutcome, micro_to_decimal, parse_reply
from ingestion.plans import PLAN_CACHE_TTL, refresh_plan_cache
from ingestion.plans import invalidate_plan_cache as _invalidate
from ingestion.ratelimit import BudgetExceeded, EventBudget
from ingestion.validation import EventValidationError, PreparedBatch, as_event_list, validate_batch
from meterline.core import clock
from meterline.core.settings import Settings
from meterline.core.telemetry import request_id, tracing

SCRIPT = (Path(__file__).parent / "lua" / "record.lua").read_text()
MONTH_TTL = 100 * 86400
HOUR_TTL = 8 * 86400
COVER_MARGIN = timedelta(days=1)  # the plan cache reaches this much further back than needed

__all__ = [
    "BatchResult",
    "BudgetExceeded",
    "CounterCorrupted",
    "EventBudget",
    "EventOutcome",
    "UsageRecorder",
    "invalidate_plan_cache",
    "micro_to_decimal",
]


class CounterCorrupted(RuntimeError):
    """A stored counter is not a whole number in range (edited by hand, or left by a former
    version): the script refused the batch before writing anything."""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class UsageRecorder:
    """Records usage events into Redis (counters, quotas, dedupe, stream)."""

    def __init__(
        self,
        redis,
        engine: Engine,
        *,
        prefix: str = "meterline",
        dedupe_window_seconds: int = 35 * 86400,
        plan_cache_ttl: int = PLAN_CACHE_TTL,
        month_ttl: int = MONTH_TTL,
        hour_ttl: int = HOUR_TTL,
        directory: Directory | None = None,
        max_lateness: timedelta | None = None,
    ):
        """``max_lateness``: how old a live event's timestamp may be (default: the
        ``BILLING_GRACE_HOURS`` setting, so late usage lands before its month is invoiced);
        older usage goes through ``meterline import``."""
        if dedupe_window_seconds <= 0:
            raise ValueError("dedupe_window_seconds must be > 0")
        self.redis = redis
        self.engine = engine
        self.prefix = prefix
        self.dedupe_window_seconds = int(dedupe_window_seconds)
        self.plan_cache_ttl = plan_cache_ttl
        self.month_ttl = month_ttl
        self.hour_ttl = hour_ttl
        self.directory = directory or Directory(engine)
        if max_lateness is None:
            max_lateness = timedelta(hours=Settings.from_env().billing_grace_hours)
        self.max_lateness = max_lateness
        self._script = redis.register_script(SCRIPT)
        self._registered: set[str] = set()

    # -- public API -----------------------------------------------------------------------
    def record(
        self,
        events: Mapping | list[dict],
        *,
        now: datetime | None = None,
        tenant_id: str | None = None,
        historical: bool = False,
        enforce_limits: bool = True,
        write_stream: bool = True,
        budget: EventBudget | None = None,
    ) -> BatchResult:
        """Validate and record one event or a batch; one Redis round trip.

        Raises :class:`EventValidationError` (nothing recorded) when an event is invalid.
        ``tenant_id`` fills events without one and must match those with one (API keys).
        ``historical`` accepts any past timestamp and, with ``enforce_limits=False``,
        records usage that already happened even above a hard limit (imports).
        ``budget`` spends each tenant's event budget (N events cost N) in the same script;
        over it, nothing of that tenant is recorded and, when the batch has one tenant,
        :class:`BudgetExceeded` is raised.
        """
        event_list = as_event_list(events)
        now = now or clock.now()
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (UTC)")
        batch = validate_batch(
            event_list,
            self.directory,
            now=now,
            historical=historical,
            tenant_id=tenant_id,
            max_age=self.max_lateness,
        )
        return self.record_prepared(
            batch, enforce_limits=enforce_limits, write_stream=write_stream, budget=budget
        )

    def record_prepared(
        self,
        batch: PreparedBatch,
        *,
        enforce_limits: bool = True,
        write_stream: bool = True,
        budget: EventBudget | None = None,
    ) -> BatchResult:
        if batch.size == 0:
            return BatchResult(batch, {})
        fixed = [
            self.dedupe_window_seconds,
            "1" if enforce_limits else "0",
            "1" if write_stream else "0",
            self.month_ttl,
            self.hour_ttl,
            keys.GROUP,
        ]
        tail = [budget.rate, budget.burst] if budget else [0, 0]
        tail.append(batch.received_us // 1000)
        # where the batch came from, stored with its stream entry (the loader logs and links it)
        origin = [request_id.current() or "", tracing.traceparent()]
        calls: dict[str, tuple[list, list]] = {}
        for tenant, positions in batch.by_tenant.items():
            if len(positions) == batch.size:
                payload = orjson.dumps(batch.args)
                rows = "".join(batch.rows) if write_stream else ""
            else:
                payload = orjson.dumps([batch.args[p] for p in positions])
                rows = "".join([batch.rows[p] for p in positions]) if write_stream else ""
            ids = batch.ids if len(positions) == batch.size else [batch.ids[p] for p in positions]
            repeats = "1" if len(set(ids)) < len(ids) else "0"
            calls[tenant] = (
                [keys.plan_key(self.prefix, tenant), keys.stream_key(self.prefix, tenant)],
                [keys.base(self.prefix, tenant), *fixed, payload, rows, *tail, repeats, *origin],
            )
        if write_stream:
            self._register_streams(batch.by_tenant)
        raw = self._execute(calls)
        reload = [t for t, r in raw.items() if _text(r) in ("NOPLAN", "STALE")]
        if reload:
            self._refresh_plans(batch, reload)
            raw.update(self._execute({t: calls[t] for t in reload}))
        return self._result(batch, raw, budget)

    def _refresh_plans(self, batch: PreparedBatch, tenants: list[str]) -> None:
        """Cache the plan terms from the oldest instant these tenants' events need."""
        now = datetime.fromtimestamp(batch.received_us / 1_000_000, UTC)
        oldest = min(batch.occurred_us[p] for t in tenants for p in batch.by_tenant[t])
        covers = min(now - self.max_lateness, datetime.fromtimestamp(oldest / 1_000_000, UTC))
        refresh_plan_cache(
            self.redis,
            self.engine,
            prefix=self.prefix,
            tenant_ids=tenants,
            covers=covers - COVER_MARGIN,
            ttl=self.plan_cache_ttl,
        )

    def _result(self, batch: PreparedBatch, raw: dict, budget: EventBudget | None) -> BatchResult:
        replies = {}
        inactive: dict[str, str] = {}
        for tenant, reply in raw.items():
            text = _text(reply)
            kind, _, detail = text.partition(":")
            if kind in ("INACTIVE", "NOPLAN", "STALE"):
                inactive[tenant] = detail or "missing"
            elif kind == "BUDGET" and budget is not None:
                events = len(batch.by_tenant[tenant])
                wait = None if detail == "-1" else max(1, -(-int(detail) // 1000))
                if len(batch.by_tenant) == 1:
                    raise BudgetExceeded(tenant, events, budget, wait)
                inactive[tenant] = "over_budget"
            elif kind == "BADARG":
                position = batch.by_tenant[tenant][max(0, int(detail) - 1)]
                raise EventValidationError(
                    position, "value", "is out of the range a counter can take; nothing recorded"
                )
            elif kind == "CORRUPT":
                raise CounterCorrupted(
                    f"Redis counter {detail} is not a whole number of micro-units in range; "
                    "nothing of the batch was recorded: correct or delete that field"
                )
            else:
                replies[tenant] = parse_reply(text)
        refused = {t: s for t, s in inactive.items() if s != "over_budget"}
        if refused and len(batch.by_tenant) == 1:
            tenant, status = next(iter(refused.items()))
            self.directory.tenants[tenant] = status  # remember until the next refresh
            raise EventValidationError(
                batch.by_tenant[tenant][0],
                "tenant_id",
                f"tenant {tenant!r} is {status}; move it to a plan with `meterline tenants set-plan`",
            )
        return BatchResult(
            batch, replies, {t: "over_budget" if s == "over_budget" else "tenant_inactive"
                             for t, s in inactive.items()}
        )  # fmt: skip

    def invalidate_plan_cache(self, tenant_id: str | None = None) -> int:
        """Drop the cached plan limits of a tenant (all tenants when None): the next batch
        reloads them from Postgres, so a plan change takes effect at once."""
        self.directory.refresh_on_miss()
        return _invalidate(self.redis, prefix=self.prefix, tenant_id=tenant_id)

    # -- internals ------------------------------------------------------------------------
    def _register_streams(self, tenants) -> None:
        new = [t for t in tenants if t not in self._registered]
        if new:
            self.redis.sadd(keys.streams_registry(self.prefix), *new)
            self._registered.update(new)

    def _execute(self, calls: dict[str, tuple[list, list]]) -> dict[str, object]:
        """One round trip (a span and a latency observation around it)."""
        with tracing.tracer().start_as_current_span(
            "redis record script", attributes={"meterline.tenants": len(calls)}
        ):
            started = time.perf_counter()
            try:
                return self._round_trip(calls)
            finally:
                RECORD_SCRIPT_SECONDS.observe(time.perf_counter() - started)

    def _round_trip(self, calls: dict[str, tuple[list, list]]) -> dict[str, object]:
        script = self._script
        if len(calls) == 1:
            tenant, (ks, args) = next(iter(calls.items()))
            return {tenant: script(keys=ks, args=args)}
        results = self._pipeline(calls, raise_on_error=False)
        out: dict[str, object] = {}
        retry: dict[str, tuple[list, list]] = {}
        for tenant, result in zip(calls, results, strict=True):
            if isinstance(result, NoScriptError):
                retry[tenant] = calls[tenant]
            elif isinstance(result, Exception):
                raise result
            else:
                out[tenant] = result
        if retry:  # the script cache was flushed: load it once and run the rest again
            script.sha = self.redis.script_load(script.script)
            out.update(zip(retry, self._pipeline(retry), strict=True))
        return out

    def _pipeline(self, calls: dict[str, tuple[list, list]], *, raise_on_error: bool = True):
        pipe = self.redis.pipeline(transaction=False)
        for ks, args in calls.values():
            pipe.evalsha(self._script.sha, len(ks), *ks, *args)
        return pipe.execute(raise_on_error=raise_on_error)


def invalidate_plan_cache(redis, *, prefix: str, tenant_id: str | None = None) -> int:
    """Module-level form for the CLI (`tenants set-plan`, `catalog load`)."""
    return _invalidate(redis, prefix=prefix, tenant_id=tenant_id)
