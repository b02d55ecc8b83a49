"""Per-tenant event budgets (a batch of N events spends N, in the record script) and
zero-value events that are answered without leaving any state behind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from ingestion import keys
from ingestion.loader import load_stream
from ingestion.ratelimit import EventBudget
from meterline.core import clock
from meterline.core.tenants import create_tenant, issue_api_key
from meterline.server import create_app
from tests.instants import INSTANTS

NOW = INSTANTS["leap-day"]


@pytest.fixture
def prefix(test_services):
    return test_services.redis_prefix


def calls(tag, n, value=1):
    return [{"id": f"{tag}{i}", "meter": "api_calls", "value": value} for i in range(n)]


def dedupe_keys(redis_client, prefix, tenant):
    return list(redis_client.scan_iter(match=f"{prefix}:{{{tenant}}}:id:*", count=10_000))


def test_a_batch_spends_one_unit_of_budget_per_event(db, redis_client, prefix):
    create_tenant(db, "busy", "payg", at=NOW - timedelta(days=1))
    headers = {"Authorization": f"Bearer {issue_api_key(db, 'busy')}"}
    app = create_app(
        db, redis_client, prefix=prefix, admin_key=None, event_budget=EventBudget(100, 1000)
    )
    http = TestClient(app)
    with clock.frozen(NOW):
        assert http.post("/v1/events", json=calls("a", 1000), headers=headers).status_code == 200
        over = http.post("/v1/events", json=calls("b", 50), headers=headers)  # 1 request, 50 events
        assert over.status_code == 429, over.text
        assert over.headers["Retry-After"] == "1"  # 50 events at 100/s: half a second
        error = over.json()["error"]
        assert error["code"] == "event_budget_exceeded" and "100 events/s" in error["message"]
        assert len(dedupe_keys(redis_client, prefix, "busy")) == 1000  # nothing of "b"
    with clock.frozen(NOW + timedelta(seconds=1)):  # 100 events earned back
        assert (
            http.post("/v1/events", json=calls("b", 50), headers=headers).json()["accepted"] == 50
        )
        too_big = http.post("/v1/events", json=calls("c", 1001), headers=headers)
    assert too_big.status_code == 413 and "split the batch" in too_big.json()["error"]["message"]


def test_zero_value_events_are_accepted_without_any_state(db, redis_client, prefix):
    create_tenant(db, "idle", "free", at=NOW - timedelta(days=1))  # api_calls: 1,000, hard
    headers = {"Authorization": f"Bearer {issue_api_key(db, 'idle')}"}
    http = TestClient(create_app(db, redis_client, prefix=prefix, admin_key=None))
    with clock.frozen(NOW):
        assert http.post("/v1/events", json=calls("full", 1000), headers=headers).status_code == 200
        load_stream(redis_client, db, prefix=prefix)
        stream = keys.stream_key(prefix, "idle")
        entries = redis_client.xlen(stream)
        response = http.post("/v1/events", json=calls("zero", 500, value=0), headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 500 and body["rejected"] == 0
    assert {(e["status"], e["reason"], e["quantity"]) for e in body["events"]} == {
        ("accepted", "no_effect", 1000)
    }
    assert len(dedupe_keys(redis_client, prefix, "idle")) == 1000  # no dedupe key for a zero
    assert redis_client.xlen(stream) == entries  # no stream row
    month = keys.month_key(prefix, "idle", NOW.strftime("%Y%m"))
    assert redis_client.hget(month, "api_calls:n") == b"1000"
    load_stream(redis_client, db, prefix=prefix)
    with db.connect() as conn:
        rows = conn.execute(
            text("select count(*) from raw.usage_events where tenant_id = 'idle'")
        ).scalar()
    assert rows == 1000  # and no Postgres row
