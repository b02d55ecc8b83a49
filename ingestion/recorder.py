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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson
from redis.exceptions import NoScriptError
from sqlalchemy import Engine

from ingestion import keys
from ingestion.directory import Directory
from ingestion.plans import PLAN_CACHE_TTL, refresh_plan_cache
from ingestion.plans import invalidate_plan_cache as _invalidate
from ingestion.validation import EventValidationError, PreparedBatch, as_event_list, validate_batch
from meterline.core import clock

SCRIPT = (Path(__file__).parent / "lua" / "record.lua").read_text()
MONTH_TTL = 100 * 86400
HOUR_TTL = 8 * 86400
THRESHOLDS = (100, 95, 90, 80)
STATUS = {"A": "accepted", "O": "accepted", "D": "duplicate", "Q": "rejected", "X": "rejected"}
REASONS = {"Q": "quota_exceeded", "X": "counter_overflow"}


def micro_to_decimal(micro: int) -> Decimal:
    if micro % keys.MICRO == 0:
        return Decimal(micro // keys.MICRO)
    return Decimal(micro).scaleb(-6).normalize()


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What happened to one event of a batch."""

    index: int
    id: str
    tenant_id: str
    meter: str
    status: str  # accepted | duplicate | rejected
    reason: str | None = None  # quota_exceeded | counter_overflow | tenant_inactive
    quantity: Decimal | None = None  # the month's quantity after this event
    limit: Decimal | None = None
    hard_limit: bool = False
    remaining: Decimal | None = None
    percent: float | None = None
    warning: int | None = None  # highest soft threshold reached: 80, 90, 95 or 100
    overage: bool = False  # accepted above a limit that allows overage

    def as_dict(self) -> dict:
        def num(value: Decimal | None):
            if value is None:
                return None
            return int(value) if value == value.to_integral_value() else float(value)

        return {
            "index": self.index,
            "id": self.id,
            "meter": self.meter,
            "status": self.status,
            "reason": self.reason,
            "quantity": num(self.quantity),
            "limit": num(self.limit),
            "remaining": num(self.remaining),
            "percent": None if self.percent is None else round(self.percent, 2),
            "warning": self.warning,
            "overage": self.overage,
        }


@dataclass
class _TenantReply:
    plan: str
    upgrade: str
    limits: dict[str, tuple[int | None, bool]]
    codes: list[str]


class BatchResult:
    """Outcomes of one ``record`` call. Counts are computed at once; the per-event
    :class:`EventOutcome` objects are built on first access of :attr:`outcomes`."""

    def __init__(
        self,
        batch: PreparedBatch,
        replies: dict[str, _TenantReply],
        inactive: dict[str, str] | None = None,
    ):
        self._batch = batch
        self._replies = replies
        self._inactive = inactive or {}
        self._outcomes: list[EventOutcome] | None = None
        accepted = duplicates = 0
        for reply in replies.values():
            for code in reply.codes:
                first = code[0]
                if first == "A" or first == "O":
                    accepted += 1
                elif first == "D":
                    duplicates += 1
        self.accepted = accepted
        self.duplicates = duplicates
        self.rejected = batch.size - accepted - duplicates

    def __len__(self) -> int:
        return self._batch.size

    def __repr__(self) -> str:
        return (
            f"BatchResult(accepted={self.accepted}, duplicates={self.duplicates}, "
            f"rejected={self.rejected})"
        )

    @property
    def outcomes(self) -> list[EventOutcome]:
        if self._outcomes is None:
            self._outcomes = self._build()
        return self._outcomes

    def plan_of(self, tenant_id: str) -> tuple[str | None, str | None]:
        """(plan id, upgrade plan id) of a tenant, as the script saw them."""
        reply = self._replies.get(tenant_id)
        if reply is None:
            return None, None
        return reply.plan or None, reply.upgrade or None

    def _build(self) -> list[EventOutcome]:
        batch = self._batch
        outcomes: list[EventOutcome | None] = [None] * batch.size
        ids, meters = batch.ids, batch.meters
        limit_cache: dict[tuple[str, str], tuple[Decimal | None, bool, int | None]] = {}
        for tenant, positions in batch.by_tenant.items():
            reply = self._replies.get(tenant)
            if reply is None:
                for position in positions:
                    outcomes[position] = EventOutcome(
                        position,
                        ids[position],
                        tenant,
                        meters[position],
                        "rejected",
                        reason="tenant_inactive",
                    )
                continue
            for position, code in zip(positions, reply.codes, strict=True):
                meter = meters[position]
                kind = code[0]
                if kind == "D":
                    outcomes[position] = EventOutcome(
                        position, ids[position], tenant, meter, "duplicate"
                    )
                    continue
                cached = limit_cache.get((tenant, meter))
                if cached is None:
                    limit_micro, hard = reply.limits.get(meter, (None, False))
                    limit = None if limit_micro is None else micro_to_decimal(limit_micro)
                    cached = limit_cache[(tenant, meter)] = (limit, hard, limit_micro)
                limit, hard, limit_micro = cached
                if len(code) == 1:  # accepted, no limit on this meter: quantity not returned
                    outcomes[position] = EventOutcome(
                        position, ids[position], tenant, meter, "accepted", hard_limit=hard
                    )
                    continue
                qty_micro = int(code[1:])
                remaining = percent = warning = None
                if limit_micro is not None:
                    remaining = micro_to_decimal(max(0, limit_micro - qty_micro))
                    if limit_micro > 0:
                        percent = qty_micro * 100 / limit_micro
                        for threshold in THRESHOLDS:
                            if percent >= threshold:
                                warning = threshold
                                break
                    elif qty_micro > 0:
                        percent, warning = 100.0, 100
                outcomes[position] = EventOutcome(
                    position,
                    ids[position],
                    tenant,
                    meter,
                    STATUS[kind],
                    reason=REASONS.get(kind),
                    quantity=micro_to_decimal(qty_micro),
                    limit=limit,
                    hard_limit=hard,
                    remaining=remaining,
                    percent=percent,
                    warning=warning,
                    overage=kind == "O",
                )
        return outcomes  # type: ignore[return-value]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse_reply(raw) -> _TenantReply:
    text = _text(raw)
    header, _, codes = text.partition("\n")
    parts = header.split(";")
    plan, _, upgrade = parts[0].partition("|")
    limits: dict[str, tuple[int | None, bool]] = {}
    for part in parts[1:]:
        meter, _, rest = part.partition("=")
        limit, _, hard = rest.partition("|")
        limits[meter] = (int(limit) if limit else None, hard == "1")
    return _TenantReply(plan, upgrade, limits, codes.split(" ") if codes else [])


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
    ):
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
    ) -> BatchResult:
        """Validate and record one event or a batch; one Redis round trip.

        Raises :class:`EventValidationError` (nothing recorded) when an event is invalid.
        ``tenant_id`` fills events without one and must match those with one (API keys).
        ``historical`` accepts any past timestamp and, with ``enforce_limits=False``,
        records usage that already happened even above a hard limit (imports).
        """
        event_list = as_event_list(events)
        now = now or clock.now()
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (UTC)")
        batch = validate_batch(
            event_list, self.directory, now=now, historical=historical, tenant_id=tenant_id
        )
        return self.record_prepared(batch, enforce_limits=enforce_limits, write_stream=write_stream)

    def record_prepared(
        self, batch: PreparedBatch, *, enforce_limits: bool = True, write_stream: bool = True
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
        calls: dict[str, tuple[list, list]] = {}
        for tenant, positions in batch.by_tenant.items():
            if len(positions) == batch.size:
                payload = orjson.dumps(batch.args)
                rows = "".join(batch.rows) if write_stream else ""
            else:
                payload = orjson.dumps([batch.args[p] for p in positions])
                rows = "".join([batch.rows[p] for p in positions]) if write_stream else ""
            calls[tenant] = (
                [keys.plan_key(self.prefix, tenant), keys.stream_key(self.prefix, tenant)],
                [keys.base(self.prefix, tenant), *fixed, payload, rows],
            )
        if write_stream:
            self._register_streams(batch.by_tenant)
        raw = self._execute(calls)
        missing = [t for t, r in raw.items() if _text(r) == "NOPLAN"]
        if missing:
            refresh_plan_cache(
                self.redis,
                self.engine,
                prefix=self.prefix,
                tenant_ids=missing,
                ttl=self.plan_cache_ttl,
            )
            raw.update(self._execute({t: calls[t] for t in missing}))
        replies: dict[str, _TenantReply] = {}
        inactive: dict[str, str] = {}
        for tenant, reply in raw.items():
            text = _text(reply)
            if text.startswith("INACTIVE:") or text == "NOPLAN":
                inactive[tenant] = text.partition(":")[2] or "missing"
            else:
                replies[tenant] = _parse_reply(text)
        if inactive and len(batch.by_tenant) == 1:
            tenant, status = next(iter(inactive.items()))
            self.directory.tenants[tenant] = status  # remember until the next refresh
            raise EventValidationError(
                batch.by_tenant[tenant][0],
                "tenant_id",
                f"tenant {tenant!r} is {status}; move it to a plan with `meterline tenants set-plan`",
            )
        return BatchResult(batch, replies, inactive)

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
