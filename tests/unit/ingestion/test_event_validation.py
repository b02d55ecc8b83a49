"""Event validation: every rule names the event's position and field (no services needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingestion.directory import Directory, MeterInfo
from ingestion.validation import EventValidationError, parse_value, validate_batch

NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
METERS = {
    "api_calls": MeterInfo("api_calls", "sum", "calls", None),
    "requests": MeterInfo("requests", "count", "requests", None),
    "storage_gb": MeterInfo("storage_gb", "max", "GB", None),
    "active_users": MeterInfo("active_users", "unique_count", "users", "user_id"),
}


@pytest.fixture
def directory() -> Directory:
    return Directory.fixed({"acme": "active", "gone": "canceled"}, METERS)


def event(**overrides) -> dict:
    base = {
        "id": "evt_1",
        "tenant_id": "acme",
        "meter": "api_calls",
        "value": 1,
        "timestamp": "2026-10-15T11:00:00Z",
        "dimensions": {"endpoint": "/v1/search"},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def check(directory, events, **kwargs):
    return validate_batch(events, directory, now=NOW, **kwargs)


def test_valid_batch_is_prepared_with_copy_rows_and_buckets(directory):
    batch = check(
        directory, [event(), event(id="evt_2", value=2.5, timestamp="2026-10-15T13:04:00+02:00")]
    )
    assert batch.ids == ["evt_1", "evt_2"]
    assert batch.by_tenant == {"acme": [0, 1]}
    # value in micro-units (as hi * 1e9 + lo), the hour bucket of the event's own time (UTC)
    assert batch.args[1][3:5] == [0, 2_500_000] and batch.args[1][5] == "2026101511"
    tenant, event_id, meter, value, occurred, dims, _received = (
        batch.rows[0].rstrip("\n").split("\t")
    )
    assert (tenant, event_id, meter, value, dims) == (
        "acme",
        "evt_1",
        "api_calls",
        "1",
        '{"endpoint":"/v1/search"}',
    )
    assert int(occurred) == int(datetime(2026, 10, 15, 11, tzinfo=UTC).timestamp() * 1e6)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"value": float("nan")}, "value", 'got "NaN"'),
        ({"value": float("inf")}, "value", "finite number"),
        ({"value": -1}, "value", ">= 0"),
        ({"value": 10**13}, "value", "at most"),
        ({"value": "5"}, "value", "finite number"),
        ({"value": True}, "value", "finite number"),
        ({"value": ...}, "value", "is required"),
        ({"meter": ...}, "meter", "is required"),
        ({"meter": "nope"}, "meter", "unknown meter"),
        ({"meter": 5}, "meter", "must be a string"),
        ({"tenant_id": "ghost"}, "tenant_id", "unknown tenant"),
        ({"tenant_id": "gone"}, "tenant_id", "canceled"),
        ({"tenant_id": ...}, "tenant_id", "is required"),
        ({"timestamp": "2026-10-15T11:00:00"}, "timestamp", "timezone"),
        ({"timestamp": "yesterday"}, "timestamp", "ISO-8601"),
        ({"timestamp": 1760000000}, "timestamp", "ISO-8601"),
        ({"timestamp": "2026-10-12T11:59:59Z"}, "timestamp", "meterline import"),
        ({"timestamp": "2026-10-15T12:06:00Z"}, "timestamp", "future"),
        ({"id": "x" * 129}, "id", "1-128"),
        ({"id": "bad\nid"}, "id", "control"),
        ({"id": 7}, "id", "must be a string"),
        ({"dimensions": []}, "dimensions", "object"),
        ({"dimensions": {f"k{i}": "v" for i in range(17)}}, "dimensions", "at most 16"),
        ({"dimensions": {"k": 1}}, "dimensions.k", "must be a string"),
        ({"dimensions": {"k": "v" * 257}}, "dimensions.k", "256"),
        ({"dimensions": {"k": "a\x00b"}}, "dimensions.k", "control"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_invalid_event_names_position_and_field(directory, overrides, field, fragment):
    events = [event(id="ok_0"), event(id="ok_1"), event(**overrides)]
    with pytest.raises(EventValidationError) as info:
        check(directory, events)
    error = info.value
    assert error.index == 2
    assert error.field == field
    assert str(error).startswith(f"event[2].{field}: ")
    assert fragment in str(error)
    assert "\n" not in str(error)


def test_nan_message_matches_the_documented_form(directory):
    with pytest.raises(
        EventValidationError, match=r'^event\[0\]\.value: must be a finite number >= 0, got "NaN"$'
    ):
        check(directory, [event(value=float("nan"))])


def test_missing_id_and_timestamp_are_generated(directory):
    batch = check(directory, [event(id=..., timestamp=...), event(id=..., timestamp=...)])
    first, second = batch.ids
    assert first != second and len(first) == 28
    assert batch.occurred_us[0] == int(NOW.timestamp() * 1e6)


def test_historical_mode_accepts_any_past_timestamp(directory):
    batch = check(directory, [event(timestamp="2019-03-01T00:00:00Z")], historical=True)
    assert batch.args[0][5] == "2019030100"
    with pytest.raises(EventValidationError, match="future"):
        check(directory, [event(timestamp="2027-01-01T00:00:00Z")], historical=True)


def test_api_key_tenant_fills_and_guards_tenant_id(directory):
    batch = check(directory, [event(tenant_id=...)], tenant_id="acme")
    assert batch.tenant_ids == ["acme"]
    with pytest.raises(EventValidationError) as info:
        check(directory, [event(tenant_id="gone")], tenant_id="acme")
    assert info.value.status == 403 and "API key" in str(info.value)


def test_unique_meter_requires_its_dimension(directory):
    with pytest.raises(EventValidationError, match=r"dimensions\.user_id: is required"):
        check(directory, [event(meter="active_users", dimensions={"x": "y"})])
    batch = check(directory, [event(meter="active_users", dimensions={"user_id": "u7"})])
    assert batch.args[0][2] == "u" and batch.args[0][7] == "u7"


def test_count_meter_counts_events_not_values(directory):
    batch = check(directory, [event(meter="requests", value=42)])
    assert batch.args[0][3:5] == [0, 1_000_000]


def test_copy_rows_escape_backslashes(directory):
    batch = check(directory, [event(id="a\\b", dimensions={"q": 'say "hi"'})])
    _, event_id, _, _, _, dims, _ = batch.rows[0].rstrip("\n").split("\t")
    assert event_id == "a\\\\b"
    assert dims == '{"q":"say \\\\"hi\\\\""}'


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, ("1", 1_000_000)),
        (0.1, ("0.1", 100_000)),
        (2.5e-7, ("0.000000", 0)),
        (0.0000015, ("0.000002", 2)),
        (1e12, ("1000000000000.0", 10**18)),
    ],
)
def test_values_round_half_up_to_micro_units(raw, expected):
    text, micro = parse_value(raw)
    assert (text, micro) == expected
