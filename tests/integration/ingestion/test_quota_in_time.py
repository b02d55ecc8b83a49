"""An event is judged by the plan in force at its own timestamp and its own month's counters,
and live events may be at most BILLING_GRACE_HOURS late: tested at a month boundary with the
clock stopped (``meterline.core.clock.frozen``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from ingestion import keys
from meterline.core import clock
from meterline.core.tenants import create_tenant, issue_api_key, set_plan
from meterline.server import create_app
from tests.instants import INSTANTS

MONTH_START = INSTANTS["first-second-of-a-month"]  # 2027-03-01T00:00:00Z
NOW = MONTH_START + timedelta(hours=1)
LAST_MONTH = MONTH_START - timedelta(hours=2)  # 2027-02-28T22:00Z, within the grace hours


@pytest.fixture
def prefix(test_services):
    return test_services.redis_prefix


@pytest.fixture
def frozen():
    with clock.frozen(NOW):
        yield NOW


@pytest.fixture
def client(frozen, db, redis_client, prefix):
    return TestClient(create_app(db, redis_client, prefix=prefix, admin_key=None))


def calls(tag, n, when=None):
    stamp = {"timestamp": when.isoformat()} if when else {}
    return [{"id": f"{tag}{i}", "meter": "api_calls", "value": 1, **stamp} for i in range(n)]


def key_of(db, tenant):
    return {"Authorization": f"Bearer {issue_api_key(db, tenant)}"}


def month_used(redis_client, prefix, tenant, when) -> int:
    raw = redis_client.hget(keys.month_key(prefix, tenant, when.strftime("%Y%m")), "api_calls")
    return int(raw or 0) // keys.MICRO


def test_after_an_upgrade_last_months_events_meet_the_old_plans_limit(
    client, db, redis_client, prefix
):
    create_tenant(db, "grower", "free", at=MONTH_START - timedelta(days=60))  # 1,000 hard
    set_plan(db, "grower", "pro", at=MONTH_START)  # pro from March: 500,000
    headers = key_of(db, "grower")
    response = client.post("/v1/events", json=calls("feb", 1000, LAST_MONTH), headers=headers)
    assert response.json()["accepted"] == 1000
    late = client.post("/v1/events", json=calls("late", 5, LAST_MONTH), headers=headers)
    assert late.status_code == 402, late.text
    error = late.json()["error"]
    assert error["plan"] == "free" and error["limit"] == 1000 and error["upgrade_to"] is None
    assert "on plan 'free'" in error["message"] and "past period" in error["message"]
    assert month_used(redis_client, prefix, "grower", LAST_MONTH) == 1000
    # this month's events are judged by pro
    assert client.post("/v1/events", json=calls("mar", 5), headers=headers).json()["accepted"] == 5


def test_after_a_402_this_month_backdating_meets_last_months_plan_and_counters(
    client, db, redis_client, prefix
):
    create_tenant(db, "capped", "free", at=MONTH_START - timedelta(days=60))
    headers = key_of(db, "capped")
    assert client.post("/v1/events", json=calls("feb", 1000, LAST_MONTH), headers=headers).json()[
        "accepted"
    ] == 1000  # fmt: skip
    assert client.post("/v1/events", json=calls("mar", 1000), headers=headers).json()[
        "accepted"
    ] == 1000  # fmt: skip
    now = client.post("/v1/events", json=calls("x", 1), headers=headers)
    assert now.status_code == 402
    backdated = client.post("/v1/events", json=calls("x", 1, LAST_MONTH), headers=headers)
    assert backdated.status_code == 402, backdated.text
    assert backdated.json()["events"][0]["quantity"] == 1000  # February's counter, full
    assert month_used(redis_client, prefix, "capped", LAST_MONTH) == 1000


def test_backdating_past_the_grace_hours_points_to_meterline_import(
    frozen, db, redis_client, prefix
):
    """Mid-month, last month is out of reach of live traffic, whatever room it had left."""
    create_tenant(db, "sly", "free", at=MONTH_START - timedelta(days=60))
    mid_month = MONTH_START + timedelta(days=14)
    with clock.frozen(mid_month):
        http = TestClient(create_app(db, redis_client, prefix=prefix, admin_key=None))
        headers = key_of(db, "sly")
        assert http.post("/v1/events", json=calls("mar", 1000), headers=headers).status_code == 200
        assert http.post("/v1/events", json=calls("x", 1), headers=headers).status_code == 402
        old = http.post("/v1/events", json=calls("x", 1, LAST_MONTH), headers=headers)
    assert old.status_code == 422, old.text
    error = old.json()["error"]
    assert error["field"] == "event[0].timestamp"
    assert "meterline import" in error["message"] and "BILLING_GRACE_HOURS" in error["message"]
    assert month_used(redis_client, prefix, "sly", LAST_MONTH) == 0


def test_the_lateness_cap_follows_billing_grace_hours(
    frozen, db, redis_client, prefix, monkeypatch
):
    from ingestion.recorder import UsageRecorder
    from ingestion.validation import EventValidationError

    monkeypatch.setenv("BILLING_GRACE_HOURS", "1")
    recorder = UsageRecorder(redis_client, db, prefix=prefix)
    assert recorder.max_lateness == timedelta(hours=1)
    create_tenant(db, "prompt", "payg", at=MONTH_START - timedelta(days=1))
    event = {"tenant_id": "prompt", "meter": "api_calls", "value": 1}
    with pytest.raises(EventValidationError, match="meterline import"):
        recorder.record({**event, "timestamp": (NOW - timedelta(minutes=61)).isoformat()})
    on_time = (NOW - timedelta(minutes=59)).isoformat()  # within the hour: recorded
    assert recorder.record({**event, "timestamp": on_time}).accepted == 1
