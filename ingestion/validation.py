"""Event validation: the whole batch is checked before anything is written.

An event (DESIGN.md)::

    {"id": "evt_01", "tenant_id": "acme", "meter": "api_calls", "value": 1,
     "timestamp": "2026-10-05T12:00:00Z", "dimensions": {"endpoint": "/v1/search"}}

The first invalid event raises :class:`EventValidationError` naming its position and field,
e.g. ``event[3].value: must be a finite number >= 0, got "NaN"``; nothing of the batch is
recorded. Valid events come out as :class:`PreparedBatch`: per event the arguments of the Lua
script and a COPY-ready row for ``raw.usage_events``, grouped by tenant.

This loop is the hot path of the SDK (it runs for every event), so it is written flat, with
local names and fast paths for the common types; see docs/ingestion.md for the numbers.

Long because: the hot path is one function with its helpers beside it (see
``validate_batch``); splitting the module would only scatter them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import count

import orjson

from ingestion.directory import Directory
from meterline.core import clock
from meterline.core.settings import DEFAULT_GRACE_HOURS

MAX_VALUE = 10**12
# The most one counter (a tenant's meter in a month or an hour) holds, in micro-units: 9e12
# units. The record script keeps every sum exact up to it (ingestion/lua/record.lua).
COUNTER_CAPACITY = 9 * 10**18
MAX_AGE = timedelta(hours=DEFAULT_GRACE_HOURS)  # live lateness; the recorder uses the setting
MAX_FUTURE = timedelta(minutes=5)
MAX_ID_LENGTH = 128
MAX_DIMENSIONS = 16
MAX_DIMENSION_LENGTH = 256
MAX_TIMESTAMP_LENGTH = 64
FIELDS = frozenset(("id", "tenant_id", "meter", "value", "timestamp", "dimensions"))
AGG_CODES = {"sum": "s", "count": "s", "max": "x", "last": "l", "unique_count": "u"}
_MICRO_QUANTUM = Decimal("0.000001")
_EPOCH_US_MIN = 0  # 1970-01-01, the floor even for historical imports


class EventValidationError(ValueError):
    """An event of a batch is invalid; nothing of the batch was recorded.

    ``index`` is the event's position in the batch (0-based), ``field`` the offending field
    (dotted for dimensions, empty for the event as a whole) and ``reason`` a one-line
    explanation. ``str(error)`` is ``event[<index>].<field>: <reason>``.
    """

    def __init__(self, index: int, field: str, reason: str, *, status: int = 422):
        self.index = index
        self.field = field
        self.reason = reason
        self.status = status  # HTTP status the API answers with (403 for another tenant)
        where = f"event[{index}].{field}" if field else f"event[{index}]"
        super().__init__(f"{where}: {reason}")

    @property
    def location(self) -> str:
        return f"event[{self.index}].{self.field}" if self.field else f"event[{self.index}]"

    def as_dict(self) -> dict:
        return {
            "code": "invalid_event",
            "index": self.index,
            "field": self.location,
            "message": str(self),
        }


def show(value: object) -> str:
    """A short, JSON-looking rendering of a bad value for error messages."""
    if isinstance(value, float) and not math.isfinite(value):
        text = '"NaN"' if math.isnan(value) else ('"Infinity"' if value > 0 else '"-Infinity"')
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:
            text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: object) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


_ID_PREFIX = os.urandom(5).hex()
_ID_COUNTER = count()


def new_event_id(now_ms: int | None = None) -> str:
    """A time-ordered id (like a UUIDv7): 12 hex ms + 10 hex process-random + 6 hex counter."""
    ms = clock.timestamp_ms() if now_ms is None else now_ms
    return f"{ms:012x}{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFF:06x}"


@dataclass
class PreparedBatch:
    """Validated events, ready for the Lua script and the stream."""

    size: int
    received_us: int
    ids: list[str] = field(default_factory=list)
    tenant_ids: list[str] = field(default_factory=list)
    meters: list[str] = field(default_factory=list)
    occurred_us: list[int] = field(default_factory=list)
    # per event: [id, meter, agg code, vh, vl, YYYYMMDDHH, ts_us, unique member], the value in
    # micro-units being vh * 1e9 + vl (each part an exact double for the Lua script)
    args: list[list] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)  # COPY text rows for raw.usage_events
    by_tenant: dict[str, list[int]] = field(default_factory=dict)


_hour_cache: dict[int, str] = {}


def _buckets(hour_index: int) -> str:
    """``YYYYMMDDHH`` (UTC) of an hour index (hours since the epoch); the month is its prefix."""
    found = _hour_cache.get(hour_index)
    if found is None:
        if len(_hour_cache) > 100_000:
            _hour_cache.clear()
        found = datetime.fromtimestamp(hour_index * 3600, UTC).strftime("%Y%m%d%H")
        _hour_cache[hour_index] = found
    return found


def parse_value(raw: object) -> tuple[str, int] | None:
    """``(decimal text, micro-units)`` for a valid value, else None. Rounds half-up to 6 places."""
    kind = type(raw)
    if kind is int:
        if 0 <= raw <= MAX_VALUE:  # type: ignore[operator]
            return str(raw), raw * 1_000_000  # type: ignore[operator]
        return None
    if kind is float:
        if not (0.0 <= raw <= MAX_VALUE):  # type: ignore[operator]  # NaN fails too
            return None
        text = repr(raw)
        dot = text.find(".")
        if "e" in text or (dot >= 0 and len(text) - dot - 1 > 6):
            quantized = Decimal(text).quantize(_MICRO_QUANTUM, rounding=ROUND_HALF_UP)
            return str(quantized), int(quantized.scaleb(6))
        if raw >= 1e9:  # raw * 1e6 rounds to the right integer only below 1e9 (under 2^50)
            return text, int(Decimal(text).scaleb(6))
        return text, round(raw * 1_000_000)  # type: ignore[operator]
    return None


def parse_value_text(raw: str) -> object:
    """A CSV cell to a number (int or float); returns the text unchanged when it is not one."""
    text = raw.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = Decimal(text)
    except InvalidOperation:
        return raw
    return float(number) if number.is_finite() else raw


def validate_batch(
    events: list,
    directory: Directory,
    *,
    now: datetime,
    historical: bool = False,
    tenant_id: str | None = None,
    max_age: timedelta = MAX_AGE,
    max_future: timedelta = MAX_FUTURE,
    offset: int = 0,
) -> PreparedBatch:
    """Validate ``events`` (a list of dicts) and prepare them; raise on the first bad one.

    ``tenant_id`` (the API key's tenant) fills a missing ``tenant_id`` and must equal a given
    one. ``historical`` accepts any past timestamp (imports). ``offset`` is added to positions
    in error messages.

    Long because: this is the hot path of every recorded event (the bench's SDK rate is
    measured through it). One loop with the per-field checks inline and globals bound to
    locals is markedly faster in CPython than a call per field; each field's block is marked
    by a comment rule, and the checks are tested field by field in
    tests/unit/ingestion/test_event_validation.py.
    """
    now_us = round(now.timestamp() * 1_000_000)
    min_us = _EPOCH_US_MIN if historical else now_us - int(max_age.total_seconds() * 1_000_000)
    max_us = now_us + int(max_future.total_seconds() * 1_000_000)
    now_ms = now_us // 1000
    directory.fresh()
    tenants = directory.tenants
    meters = directory.meters
    batch = PreparedBatch(size=len(events), received_us=now_us)
    ids, tenant_ids, meter_names, occurred, args, rows = (
        batch.ids,
        batch.tenant_ids,
        batch.meters,
        batch.occurred_us,
        batch.args,
        batch.rows,
    )
    by_tenant = batch.by_tenant
    recv = str(now_us)
    fromiso = datetime.fromisoformat
    fields = FIELDS
    agg_codes = AGG_CODES
    buckets = _buckets
    hour_us = 3_600_000_000
    meter_cache: dict[str, tuple[str, str | None, bool]] = {}
    big = False  # a value of 1,000 units or more: only then can a batch fill a counter

    for position, event in enumerate(events):
        index = position + offset
        if type(event) is not dict:
            raise EventValidationError(
                index, "", f"must be a JSON object with meter and value, got {_type_name(event)}"
            )
        if not event.keys() <= fields:
            unknown = sorted(k for k in event if k not in fields)[0]
            raise EventValidationError(
                index,
                str(unknown)[:40],
                f"unknown field; allowed fields are {', '.join(sorted(fields))}",
            )
        # tenant ---------------------------------------------------------------------------
        tenant = event.get("tenant_id")
        if tenant is None:
            if tenant_id is None:
                raise EventValidationError(index, "tenant_id", "is required")
            tenant = tenant_id
        elif type(tenant) is not str:
            raise EventValidationError(
                index, "tenant_id", f"must be a string, got {_type_name(tenant)}"
            )
        elif tenant_id is not None and tenant != tenant_id:
            raise EventValidationError(
                index,
                "tenant_id",
                f"{show(tenant)} does not match the API key's tenant {tenant_id!r}; "
                "omit tenant_id or use that tenant's key",
                status=403,
            )
        status = tenants.get(tenant)
        if status is None and directory.refresh_on_miss():
            tenants = directory.tenants
            meters = directory.meters
            status = tenants.get(tenant)
        canceled_from = None
        if status != "active":
            if status is None:
                raise EventValidationError(
                    index,
                    "tenant_id",
                    f"unknown tenant {show(tenant)}; create it with `meterline tenants create`",
                )
            canceled_from = directory.canceled_at.get(tenant)
            if not (historical and status == "canceled" and canceled_from is not None):
                raise EventValidationError(
                    index,
                    "tenant_id",
                    f"tenant {tenant!r} is {status}; move it to a plan with `meterline tenants set-plan`",
                )
        # meter ------------------------------------------------------------------------------
        meter = event.get("meter")
        info = meter_cache.get(meter) if type(meter) is str else None
        if info is None:
            if meter is None:
                raise EventValidationError(index, "meter", "is required")
            if type(meter) is not str:
                raise EventValidationError(
                    index, "meter", f"must be a string, got {_type_name(meter)}"
                )
            found = meters.get(meter)
            if found is None and directory.refresh_on_miss():
                tenants = directory.tenants
                meters = directory.meters
                found = meters.get(meter)
            if found is None:
                known = ", ".join(sorted(meters)) or "none: run `meterline catalog load`"
                raise EventValidationError(
                    index, "meter", f"unknown meter {show(meter)}; known meters: {known}"
                )
            info = (
                agg_codes[found.aggregation],
                found.unique_dimension,
                found.aggregation == "count",
            )
            meter_cache[meter] = info
        agg, unique_dimension, is_count = info
        # value ------------------------------------------------------------------------------
        raw_value = event.get("value")
        if raw_value is None and "value" not in event:
            raise EventValidationError(index, "value", "is required")
        parsed = parse_value(raw_value)
        if parsed is None:
            if type(raw_value) in (int, float) and math.isfinite(raw_value) and raw_value > 0:
                reason = f"must be at most {MAX_VALUE:.0e}, got {show(raw_value)}"
            else:
                reason = f"must be a finite number >= 0, got {show(raw_value)}"
            raise EventValidationError(index, "value", reason)
        value_text, micro = parsed
        if is_count:
            micro = 1_000_000
        # timestamp --------------------------------------------------------------------------
        stamp = event.get("timestamp")
        if stamp is None:
            ts_us = now_us
        else:
            if type(stamp) is not str:
                raise EventValidationError(
                    index,
                    "timestamp",
                    f"must be an ISO-8601 string like 2026-10-05T12:00:00Z, got {_type_name(stamp)}",
                )
            if len(stamp) > MAX_TIMESTAMP_LENGTH:
                raise EventValidationError(index, "timestamp", "is too long for an ISO-8601 time")
            try:
                moment = fromiso(stamp)
            except ValueError:
                raise EventValidationError(
                    index,
                    "timestamp",
                    f"must be ISO-8601 with a timezone like 2026-10-05T12:00:00Z, got {show(stamp)}",
                ) from None
            if moment.tzinfo is None:
                raise EventValidationError(
                    index,
                    "timestamp",
                    f"must include a timezone (append Z for UTC), got {show(stamp)}",
                )
            ts_us = round(moment.timestamp() * 1_000_000)
            if ts_us < min_us:
                if historical:
                    raise EventValidationError(
                        index, "timestamp", f"must be after 1970-01-01, got {show(stamp)}"
                    )
                raise EventValidationError(
                    index,
                    "timestamp",
                    f"is more than {_duration(max_age)} old ({stamp}); live events may be "
                    f"at most {_duration(max_age)} late (BILLING_GRACE_HOURS); "
                    "load older usage with `meterline import`",
                )
            if ts_us > max_us:
                raise EventValidationError(
                    index,
                    "timestamp",
                    f"is more than {int(max_future.total_seconds() // 60)} minutes in the future "
                    f"({stamp}); check the sender's clock",
                )
        if canceled_from is not None and ts_us >= canceled_from:
            # A backfill may load a canceled tenant's history, but nothing from after the cancel.
            raise EventValidationError(
                index,
                "timestamp",
                f"is after tenant {tenant!r} was canceled; only usage before the cancellation "
                "can be imported",
            )
        # dimensions -------------------------------------------------------------------------
        dims = event.get("dimensions")
        if dims is None or dims == {}:
            dims_text = "{}"
            dims = None
        else:
            if type(dims) is not dict:
                raise EventValidationError(
                    index,
                    "dimensions",
                    f"must be an object of string values, got {_type_name(dims)}",
                )
            if len(dims) > MAX_DIMENSIONS:
                raise EventValidationError(
                    index,
                    "dimensions",
                    f"has {len(dims)} entries; at most {MAX_DIMENSIONS} are allowed",
                )
            for key, item in dims.items():
                if (
                    type(key) is not str
                    or not key
                    or len(key) > MAX_DIMENSION_LENGTH
                    or not key.isprintable()
                ):
                    raise EventValidationError(
                        index,
                        "dimensions",
                        f"key {show(key)} must be 1-{MAX_DIMENSION_LENGTH} printable characters",
                    )
                if type(item) is not str:
                    raise EventValidationError(
                        index,
                        f"dimensions.{key}",
                        f"must be a string, got {_type_name(item)}",
                    )
                if len(item) > MAX_DIMENSION_LENGTH or not item.isprintable():
                    raise EventValidationError(
                        index,
                        f"dimensions.{key}",
                        f"must be at most {MAX_DIMENSION_LENGTH} printable characters "
                        "(no control characters)",
                    )
            dims_text = orjson.dumps(dims).decode()
            if "\\" in dims_text:
                dims_text = dims_text.replace("\\", "\\\\")
        member = ""
        if unique_dimension is not None:
            member = dims.get(unique_dimension, "") if dims else ""
            if not member:
                raise EventValidationError(
                    index,
                    f"dimensions.{unique_dimension}",
                    f"is required for meter {meter!r} (it counts distinct {unique_dimension})",
                )
        # id ---------------------------------------------------------------------------------
        event_id = event.get("id")
        if event_id is None:
            event_id = new_event_id(now_ms)
            id_text = event_id
        else:
            if type(event_id) is not str:
                raise EventValidationError(
                    index, "id", f"must be a string, got {_type_name(event_id)}"
                )
            if not 0 < len(event_id) <= MAX_ID_LENGTH or not event_id.isprintable():
                raise EventValidationError(
                    index,
                    "id",
                    f"must be 1-{MAX_ID_LENGTH} printable characters (no control characters), "
                    f"got {show(event_id)}",
                )
            id_text = event_id.replace("\\", "\\\\") if "\\" in event_id else event_id
        hour = buckets(ts_us // hour_us)
        ids.append(event_id)
        tenant_ids.append(tenant)
        meter_names.append(meter)
        occurred.append(ts_us)
        if micro < 1_000_000_000:
            args.append([event_id, meter, agg, 0, micro, hour, ts_us, member])
        else:
            big = True
            args.append([event_id, meter, agg, *divmod(micro, 1_000_000_000), hour, ts_us, member])
        rows.append(f"{tenant}\t{id_text}\t{meter}\t{value_text}\t{ts_us}\t{dims_text}\t{recv}\n")
        positions = by_tenant.get(tenant)
        if positions is None:
            by_tenant[tenant] = [position]
        else:
            positions.append(position)
    if big:
        _check_counter_totals(batch, offset)
    return batch


def _check_counter_totals(batch: PreparedBatch, offset: int) -> None:
    """Refuse a batch whose sum for one counter (tenant, sum meter, month) exceeds what a
    counter holds: such a batch can never be recorded, whatever was counted before."""
    totals: dict[tuple[str, str, str], int] = {}
    for position, (tenant, args) in enumerate(zip(batch.tenant_ids, batch.args, strict=True)):
        if args[2] != "s":
            continue
        key = (tenant, args[1], args[5][:6])
        totals[key] = totals.get(key, 0) + args[3] * 1_000_000_000 + args[4]
        if totals[key] > COUNTER_CAPACITY:
            month = f"{key[2][:4]}-{key[2][4:]}"
            raise EventValidationError(
                position + offset,
                "value",
                f"brings this batch's {key[1]} for {month} above {COUNTER_CAPACITY // 10**6:.0e}, "
                "the most one counter holds; check the values or split them over batches",
            )


def _duration(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours >= 48 and hours % 24 == 0:
        return f"{int(hours // 24)} days"
    return f"{hours:g} hours" if hours != 1 else "1 hour"


def as_event_list(events: Mapping | list) -> list:
    """One event (a dict) or a list of events -> list."""
    if isinstance(events, Mapping):
        return [dict(events)]
    if isinstance(events, list):
        return events
    if isinstance(events, tuple):
        return list(events)
    raise EventValidationError(
        0, "", f"expected an event object or a list of events, got {_type_name(events)}"
    )
