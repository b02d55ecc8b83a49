"""HTTP API against real Redis and Postgres: malformed input, quotas, rate limits, keys."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import text

from ingestion import keys
from ingestion.loader import load_stream
from ingestion.ratelimit import EventBudget
from meterline.core.tenants import create_tenant, issue_api_key
from meterline.server import create_app

ADMIN = "admin-secret-key"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def prefix(test_services):
    return test_services.redis_prefix


@pytest.fixture
def setup(db, redis_client, prefix):
    create_tenant(db, "acme", "free")
    create_tenant(db, "other", "payg")
    keys_ = {"acme": issue_api_key(db, "acme"), "other": issue_api_key(db, "other")}
    app = create_app(
        db,
        redis_client,
        prefix=prefix,
        admin_key=ADMIN,
        rate_limit_per_second=10_000,
        rate_limit_burst=10_000,
    )
    return TestClient(app), keys_


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def recorded(redis_client, prefix, tenant="acme") -> list:
    return list(redis_client.scan_iter(match=f"{prefix}:{{{tenant}}}:id:*", count=10000))


def ev(**overrides):
    base = {"id": "e1", "meter": "api_calls", "value": 1}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


MALFORMED = [
    # (name, body (str = raw), headers override, expected status, field, message fragment)
    ("value string", ev(value="5"), None, 422, "event[0].value", "finite number"),
    (
        "value NaN literal",
        '{"meter": "api_calls", "value": NaN}',
        None,
        400,
        "body",
        "not valid JSON",
    ),
    (
        "value Infinity literal",
        '[{"meter": "api_calls", "value": Infinity}]',
        None,
        400,
        "body",
        "not valid JSON",
    ),
    ("value negative", ev(value=-1), None, 422, "event[0].value", ">= 0"),
    ("value huge", ev(value=1e15), None, 422, "event[0].value", "at most"),
    ("value bool", ev(value=True), None, 422, "event[0].value", "finite number"),
    ("value missing", ev(value=...), None, 422, "event[0].value", "is required"),
    ("meter missing", ev(meter=...), None, 422, "event[0].meter", "is required"),
    ("meter unknown", ev(meter="api_callz"), None, 422, "event[0].meter", "unknown meter"),
    ("meter wrong type", ev(meter=["api_calls"]), None, 422, "event[0].meter", "must be a string"),
    ("tenant unknown", ev(tenant_id="ghost"), None, 403, "event[0].tenant_id", "API key"),
    ("tenant of someone else", ev(tenant_id="other"), None, 403, "event[0].tenant_id", "API key"),
    (
        "timestamp no zone",
        ev(timestamp="2026-10-05T12:00:00"),
        None,
        422,
        "event[0].timestamp",
        "timezone",
    ),
    ("timestamp garbage", ev(timestamp="soon"), None, 422, "event[0].timestamp", "ISO-8601"),
    (
        "timestamp far past",
        ev(timestamp=(NOW - timedelta(days=90)).isoformat()),
        None,
        422,
        "event[0].timestamp",
        "meterline import",
    ),
    (
        "timestamp future",
        ev(timestamp=(NOW + timedelta(hours=2)).isoformat()),
        None,
        422,
        "event[0].timestamp",
        "future",
    ),
    ("id control chars", ev(id="evt\u0000\u0007"), None, 422, "event[0].id", "control"),
    ("id too long", ev(id="x" * 200), None, 422, "event[0].id", "1-128"),
    (
        "dimension control chars",
        ev(dimensions={"k": "a\u001bb"}),
        None,
        422,
        "event[0].dimensions.k",
        "control",
    ),
    ("dimensions list", ev(dimensions=["a"]), None, 422, "event[0].dimensions", "object"),
    (
        "too many dimensions",
        ev(dimensions={f"d{i}": "v" for i in range(20)}),
        None,
        422,
        "event[0].dimensions",
        "at most 16",
    ),
    ("unknown field", ev(colour="red"), None, 422, "event[0].colour", "unknown field"),
    (
        "SQL-looking meter",
        ev(meter="api_calls'; drop table raw.usage_events; --"),
        None,
        422,
        "event[0].meter",
        "unknown meter",
    ),
    (
        "SQL-looking tenant",
        ev(tenant_id="x' or '1'='1"),
        None,
        403,
        "event[0].tenant_id",
        "API key",
    ),
    (
        "second event bad",
        [ev(id="ok"), ev(id="bad", value=-5)],
        None,
        422,
        "event[1].value",
        ">= 0",
    ),
    ("broken JSON", '{"meter": "api_calls", "value": ', None, 400, "body", "not valid JSON"),
    ("scalar body", "42", None, 422, "body", "event object or a list"),
    ("empty list", [], None, 422, "body", "empty list"),
    ("oversized batch", [ev(id=f"b{i}") for i in range(1001)], None, 413, "body", "at most 1,000"),
    (
        "oversized body",
        json.dumps([ev(id=f"p{i}", dimensions={"pad": "p" * 250}) for i in range(4000)]),
        None,
        413,
        "body",
        "larger than",
    ),
    ("missing key", ev(), {}, 401, "Authorization", "missing"),
    (
        "wrong key",
        ev(),
        {"Authorization": "Bearer ml_nope_123"},
        401,
        "Authorization",
        "unknown or revoked",
    ),
    (
        "admin key as tenant key",
        ev(),
        {"Authorization": f"Bearer {ADMIN}"},
        401,
        "Authorization",
        "unknown or revoked",
    ),
    (
        "basic auth",
        ev(),
        {"Authorization": "Basic YWxhZGRpbjpvcGVu"},
        401,
        "Authorization",
        "missing",
    ),
]


@pytest.mark.parametrize(
    ("body", "headers", "status", "field", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in MALFORMED],
)
def test_malformed_requests_get_a_field_level_4xx_and_record_nothing(
    setup, redis_client, prefix, body, headers, status, field, fragment
):
    client, tenant_keys = setup
    sent_headers = auth(tenant_keys["acme"]) if headers is None else headers
    content = body if isinstance(body, str) else json.dumps(body)
    response = client.post(
        "/v1/events", content=content, headers={**sent_headers, "Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    problem = response.json()["error"]
    assert problem["field"] == field
    assert fragment in problem["message"]
    assert "\n" not in problem["message"]
    assert recorded(redis_client, prefix) == []
    # the server keeps serving
    ok = client.post("/v1/events", json=ev(id="after"), headers=auth(tenant_keys["acme"]))
    assert ok.status_code == 200 and ok.json()["accepted"] == 1


def test_at_least_25_malformed_cases():
    assert len(MALFORMED) >= 25


def test_events_outcomes_headers_and_duplicates(setup, db, redis_client, prefix):
    client, tenant_keys = setup
    batch = [ev(id="a"), ev(id="b", value=2), ev(id="a")]
    first = client.post("/v1/events", json=batch, headers=auth(tenant_keys["acme"]))
    assert first.status_code == 200
    body = first.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 0)
    assert [e["status"] for e in body["events"]] == ["accepted", "accepted", "duplicate"]
    assert first.headers["X-Usage-Limit"] == "1000" and first.headers["X-Usage-Remaining"] == "997"
    again = client.post("/v1/events", json=batch, headers=auth(tenant_keys["acme"]))
    assert again.json()["duplicates"] == 3
    load_stream(redis_client, db, prefix=prefix)
    with db.connect() as conn:
        assert conn.execute(text("select count(*) from raw.usage_events")).scalar() == 2


def test_hard_limit_refusal_is_402_with_a_friendly_message(setup):
    client, tenant_keys = setup
    assert (
        client.post(
            "/v1/events", json=ev(id="big", value=1000), headers=auth(tenant_keys["acme"])
        ).status_code
        == 200
    )
    refused = client.post("/v1/events", json=ev(id="one-more"), headers=auth(tenant_keys["acme"]))
    assert refused.status_code == 402
    problem = refused.json()["error"]
    assert (
        problem["meter"] == "api_calls"
        and problem["limit"] == 1000
        and problem["upgrade_to"] == "starter"
    )
    assert (
        "api_calls" in problem["message"]
        and "1,000" in problem["message"]
        and "starter" in problem["message"]
    )
    assert refused.headers["X-Usage-Remaining"] == "0"
    usage = client.get("/v1/usage", headers=auth(tenant_keys["acme"])).json()
    calls = next(m for m in usage["meters"] if m["meter"] == "api_calls")
    assert calls["quantity"] == 1000 and calls["percent"] == 100.0 and calls["refused_events"] == 1


def test_rate_limit_is_429_with_retry_after(db, redis_client, prefix):
    create_tenant(db, "busy", "payg")
    key = issue_api_key(db, "busy")
    client = TestClient(
        create_app(
            db,
            redis_client,
            prefix=prefix,
            admin_key=ADMIN,
            rate_limit_per_second=1,
            rate_limit_burst=3,
        )
    )
    statuses = [
        client.post("/v1/events", json=ev(id=f"r{i}"), headers=auth(key)).status_code
        for i in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    limited = client.post("/v1/events", json=ev(id="r9"), headers=auth(key))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "retry after" in limited.json()["error"]["message"]


def test_usage_admin_health_and_openapi(setup, redis_client, prefix):
    client, tenant_keys = setup
    client.post("/v1/events", json=ev(id="u1", value=900), headers=auth(tenant_keys["acme"]))
    client.post("/v1/events", json=ev(id="u2", value=5), headers=auth(tenant_keys["other"]))
    assert (
        client.get("/v1/usage?month=2026-13", headers=auth(tenant_keys["acme"])).status_code == 422
    )
    assert client.get("/v1/admin/tenants", headers=auth(tenant_keys["acme"])).status_code == 403
    assert client.get("/v1/admin/tenants").status_code == 401
    admin = client.get("/v1/admin/tenants", headers=auth(ADMIN)).json()["tenants"]
    assert [t["tenant_id"] for t in admin] == ["acme", "other"]
    assert admin[0]["max_percent"] == 90.0 and admin[0]["top_meter"] == "api_calls"
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (
        ready.status_code == 200
        and ready.json()["redis"] == "ok"
        and ready.json()["postgres"] == "ok"
    )
    spec = client.get("/openapi.json").json()
    assert "/v1/events" in spec["paths"] and "/v1/admin/tenants" in spec["paths"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_concurrent_http_clients_respect_the_hard_limit(db, redis_client, prefix):
    """Acceptance over real HTTP: 8 clients x 10,000 distinct events, hard limit 50,000."""
    create_tenant(db, "race", "starter")
    key = issue_api_key(db, "race")
    app = create_app(
        db,
        redis_client,
        prefix=prefix,
        admin_key=ADMIN,
        rate_limit_per_second=10_000,
        rate_limit_burst=10_000,
        event_budget=EventBudget(10**6, 10**6),  # this test is about the hard limit
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:

        def client(n: int) -> tuple[int, int, set[int]]:
            accepted = rejected = 0
            statuses = set()
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers=auth(key), timeout=60
            ) as http:
                for b in range(20):
                    batch = [
                        {"id": f"c{n}-{b}-{i}", "meter": "api_calls", "value": 1}
                        for i in range(500)
                    ]
                    response = http.post("/v1/events", json=batch)
                    statuses.add(response.status_code)
                    accepted += response.json()["accepted"]
                    rejected += response.json()["rejected"]
                # a retry of an already-sent batch is all duplicates
                dup = http.post(
                    "/v1/events",
                    json=[
                        {"id": f"c{n}-0-{i}", "meter": "api_calls", "value": 1} for i in range(500)
                    ],
                )
                assert (
                    dup.json()["accepted"] == 0
                    and dup.json()["duplicates"] + dup.json()["rejected"] == 500
                )
            return accepted, rejected, statuses

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(client, range(8)))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert sum(r[0] for r in results) == 50000
    assert sum(r[1] for r in results) == 30000
    assert set().union(*(r[2] for r in results)) <= {200, 402}
    month = NOW.strftime("%Y%m")
    assert (
        int(redis_client.hget(keys.month_key(prefix, "race", month), "api_calls"))
        == 50000 * keys.MICRO
    )
    load_stream(redis_client, db, prefix=prefix)
    with db.connect() as conn:
        assert (
            conn.execute(
                text("select count(*) from raw.usage_events where tenant_id='race'")
            ).scalar()
            == 50000
        )
