"""Counters cannot be corrupted: extreme and adversarial values through the HTTP API leave
either a whole batch recorded (every accepted event in the stream) or nothing at all, and
never a 500."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from fastapi.testclient import TestClient

from ingestion import keys
from ingestion.recorder import SCRIPT
from ingestion.validation import COUNTER_CAPACITY
from meterline.core.tenants import create_tenant, issue_api_key
from meterline.server import create_app

NOW = datetime.now(UTC).replace(microsecond=0)
INT64_MAX = 2**63 - 1


@pytest.fixture
def prefix(test_services):
    return test_services.redis_prefix


@pytest.fixture
def api(db, redis_client, prefix):
    create_tenant(db, "tiny", "free")  # api_calls: 1,000, hard
    create_tenant(db, "big", "payg")  # no limits
    app = create_app(db, redis_client, prefix=prefix, admin_key=None)
    client = TestClient(app, raise_server_exceptions=False)
    return client, {t: {"Authorization": f"Bearer {issue_api_key(db, t)}"} for t in ("tiny", "big")}


def state(redis_client, prefix, tenant) -> dict:
    """Every key of a tenant with its full content (counters, dedupe keys, stream length)."""
    out = {}
    for key in redis_client.scan_iter(match=f"{prefix}:{{{tenant}}}:*", count=1000):
        kind = redis_client.type(key).decode()
        if key.endswith((b":plan", b":rl", b":eb")):
            continue  # caches and rate buckets, not recorded usage
        if kind == "hash":
            out[key] = redis_client.hgetall(key)
        elif kind == "stream":
            out[key] = redis_client.xlen(key)
        else:
            out[key] = redis_client.get(key) if kind == "string" else kind
    return out


def stream_rows(redis_client, prefix, tenant) -> list[str]:
    entries = redis_client.xrange(keys.stream_key(prefix, tenant))
    return [line for _, f in entries for line in f[b"rows"].decode().splitlines()]


def calls(tag, n, value=1):
    return [{"id": f"{tag}{i}", "meter": "api_calls", "value": value} for i in range(n)]


ADVERSARIAL = [
    # (name, body, status, field fragment, message fragment)
    ("max int64", calls("i", 1, INT64_MAX), 422, "event[0].value", "at most"),
    ("above 1e12", calls("a", 1, 10**12 + 1), 422, "event[0].value", "at most"),
    ("NaN string", calls("n", 1, "NaN"), 422, "event[0].value", "finite number"),
    ("inf string", calls("f", 1, "Infinity"), 422, "event[0].value", "finite number"),
    ("negative", [*calls("ok", 2), *calls("neg", 1, -1)], 422, "event[2].value", ">= 0"),
    ("huge float", calls("h", 1, 1.7e308), 422, "event[0].value", "at most"),
    ("huge decimal", '[{"meter": "api_calls", "value": 1e400}]', 400, "body", "JSON"),
    ("2**64", '[{"meter": "api_calls", "value": 18446744073709551616}]', 422, "value", "at most"),
    (
        "17 dimensions",
        [{"meter": "api_calls", "value": 1, "dimensions": {f"k{i}": "v" for i in range(17)}}],
        422,
        "event[0].dimensions",
        "at most 16",
    ),
    (
        "batch above a counter's capacity",
        calls("c", 10, 10**12),
        422,
        "event[9].value",
        "the most one counter holds",
    ),
]


@pytest.mark.parametrize(("name", "body", "status", "field", "fragment"), ADVERSARIAL)
def test_adversarial_values_are_refused_whole_with_a_field_error(
    api, redis_client, prefix, name, body, status, field, fragment
):
    client, headers = api
    assert (
        client.post("/v1/events", json=calls("seed", 3), headers=headers["big"]).status_code == 200
    )
    before = state(redis_client, prefix, "big")
    if isinstance(body, str):
        response = client.post("/v1/events", content=body, headers=headers["big"])
    else:
        response = client.post("/v1/events", json=body, headers=headers["big"])
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert field in error["field"] and fragment in error["message"]
    assert state(redis_client, prefix, "big") == before  # counters, dedupe keys, stream


def test_refused_giants_leave_counters_sound_and_later_batches_whole(api, redis_client, prefix):
    """The review's case: ten refused 1e12 events used to wrap the refused counter to
    -9.2e18, and the next batch died half-way (counted and deduplicated, never streamed)."""
    client, headers = api
    for round_ in range(3):  # 30 refused giants: 3e13 units refused, beyond any int64 counter
        giants = calls(f"g{round_}-", 10, 10**12)[:9]  # 9e12: just within one batch's capacity
        response = client.post("/v1/events", json=giants, headers=headers["tiny"])
        assert response.status_code == 402, response.text
    month = keys.month_key(prefix, "tiny", NOW.strftime("%Y%m"))
    refused = int(redis_client.hget(month, "api_calls:r"))
    assert refused == 27 * 10**12 * keys.MICRO  # exact, far beyond int64
    assert int(redis_client.hget(month, "api_calls:rn")) == 27

    response = client.post("/v1/events", json=calls("ok", 5), headers=headers["tiny"])
    assert response.status_code == 200 and response.json()["accepted"] == 5
    assert [line.split("\t")[1] for line in stream_rows(redis_client, prefix, "tiny")] == [
        f"ok{i}" for i in range(5)
    ]
    usage = client.get("/v1/usage", headers=headers["tiny"]).json()
    api_calls = next(m for m in usage["meters"] if m["meter"] == "api_calls")
    assert api_calls["quantity"] == 5 and api_calls["refused"] == 27 * 10**12


def test_a_counter_at_capacity_refuses_instead_of_wrapping(api, redis_client, prefix):
    client, headers = api
    for round_ in range(2):  # 2 x 4.5e12 = 9e12: the capacity, exactly
        batch = calls(f"full{round_}-", 9, 5 * 10**11)
        assert client.post("/v1/events", json=batch, headers=headers["big"]).json()["accepted"] == 9
    response = client.post("/v1/events", json=calls("more", 2), headers=headers["big"])
    assert response.status_code == 200
    outcomes = response.json()["events"]
    assert [o["reason"] for o in outcomes] == ["counter_overflow"] * 2
    month = keys.month_key(prefix, "big", NOW.strftime("%Y%m"))
    assert int(redis_client.hget(month, "api_calls")) == COUNTER_CAPACITY
    assert len(stream_rows(redis_client, prefix, "big")) == 18


def test_fractional_giants_sum_exactly(api, redis_client, prefix):
    """Values whose micro-units a double cannot hold exactly still add up to the micro-unit."""
    client, headers = api
    body = [{"id": f"x{i}", "meter": "api_calls", "value": 999_999_999_999.7} for i in range(3)]
    assert client.post("/v1/events", json=body, headers=headers["big"]).json()["accepted"] == 3
    month = keys.month_key(prefix, "big", NOW.strftime("%Y%m"))
    assert int(redis_client.hget(month, "api_calls")) == 3 * 999_999_999_999_700_000


def test_the_script_refuses_out_of_range_arguments_before_writing(api, db, redis_client, prefix):
    """Defence in depth: a caller that skips Python validation gets BADARG, nothing written."""
    client, headers = api
    client.post("/v1/events", json=calls("seed", 1), headers=headers["big"])  # plan cached
    before = state(redis_client, prefix, "big")
    script = redis_client.register_script(SCRIPT)
    hour = NOW.strftime("%Y%m%d%H")
    ts = int(NOW.timestamp() * 1e6)
    good = ["g1", "api_calls", "s", 0, 1, hour, ts, ""]
    bad_values = [[10**9, 1], [0, 10**9], [-1, 0], [0, 0.5], [0, "1"], [2**60, 0]]
    for vh, vl in bad_values:
        args = ["x", "api_calls", "s", vh, vl, hour, ts, ""]
        reply = script(
            keys=[keys.plan_key(prefix, "big"), keys.stream_key(prefix, "big")],
            args=[keys.base(prefix, "big"), 60, "1", "1", 60, 60, keys.GROUP,
                  orjson.dumps([good, args]), "row1\nrow2\n", 0, 0, 0, "0"],
        )  # fmt: skip
        assert reply == b"BADARG:2", (vh, vl, reply)
    assert state(redis_client, prefix, "big") == before
