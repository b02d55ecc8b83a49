"""The HTTP API takes the tenant from the API key alone, and guessed keys cannot reach the
database faster than the unknown-key budget allows (real Postgres, real Redis, HTTP)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from ingestion.recorder import UsageRecorder
from ingestion.usage import live_usage
from meterline.core.tenants import create_tenant, issue_api_key
from meterline.server import create_app

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def prefix(test_services):
    return test_services.redis_prefix


def app_client(db, redis_client, prefix, client=("203.0.113.7", 5000), **options):
    app = create_app(
        db,
        redis_client,
        prefix=prefix,
        admin_key="admin-key",
        rate_limit_per_second=10_000,
        rate_limit_burst=10_000,
        **options,
    )
    return TestClient(app, client=client)


def api_calls(redis_client, db, prefix, tenant) -> tuple[int, int]:
    usage = {u.meter: u for u in live_usage(redis_client, db, tenant, prefix=prefix)}
    found = usage.get("api_calls")
    return (found.event_count, found.refused_events) if found else (0, 0)


def event_(n: int) -> dict:
    return {"id": f"e{n}", "meter": "api_calls", "value": 1}


def test_a_tenant_header_without_a_key_is_401_and_counts_nothing(db, redis_client, prefix):
    create_tenant(db, "victim", "payg")
    client = app_client(db, redis_client, prefix)
    response = client.post("/v1/events", json=event_(1), headers={"X-Tenant-ID": "victim"})
    assert response.status_code == 401
    assert response.json()["error"]["field"] == "Authorization"
    assert api_calls(redis_client, db, prefix, "victim") == (0, 0)


def test_an_over_limit_key_with_another_tenants_header_is_refused_as_the_key_tenant(
    db, redis_client, prefix
):
    create_tenant(db, "spent", "free")  # api_calls: 1,000 hard
    create_tenant(db, "roomy", "payg")
    key = issue_api_key(db, "spent")
    UsageRecorder(redis_client, db, prefix=prefix).record(
        {"tenant_id": "spent", "meter": "api_calls", "value": 1000}
    )
    client = app_client(db, redis_client, prefix, trusted_proxies="203.0.113.7")
    response = client.post(
        "/v1/events",
        json=event_(2),
        headers={"Authorization": f"Bearer {key}", "X-Tenant-ID": "roomy"},
    )
    assert response.status_code == 402
    assert api_calls(redis_client, db, prefix, "spent") == (1, 1)
    assert api_calls(redis_client, db, prefix, "roomy") == (0, 0)


class KeyLookups:
    """Counts the statements that look a key up in ``meterline.api_keys``: a real counter on
    the real engine."""

    def __init__(self, engine):
        self.count = 0
        self.engine = engine

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if "from meterline.api_keys" in statement and "key_hash" in statement:
            self.count += 1

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self)


def test_random_unknown_keys_cost_at_most_the_budget_in_lookups_then_429(db, redis_client, prefix):
    create_tenant(db, "known", "payg")
    key = issue_api_key(db, "known")
    budget = 5
    client = app_client(db, redis_client, prefix, unknown_key_limit=f"{budget}/minute")
    assert client.get("/v1/usage", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    statuses = []
    with KeyLookups(db) as lookups:
        for _ in range(40):
            guess = f"ml_known_{secrets.token_urlsafe(24)}"
            response = client.get("/v1/usage", headers={"Authorization": f"Bearer {guess}"})
            statuses.append(response.status_code)
        refused = client.post(
            "/v1/events", json=event_(3), headers={"Authorization": f"Bearer {guess}"}
        )
        cached_good_key = client.get("/v1/usage", headers={"Authorization": f"Bearer {key}"})
    assert lookups.count == budget
    assert statuses == [401] * budget + [429] * (40 - budget)
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "too many unknown" in refused.json()["error"]["message"]
    assert cached_good_key.status_code == 200  # a key already known still works
    # the budget is per client address: another client is not refused
    other = TestClient(client.app, client=("198.51.100.9", 5000))
    guess = f"ml_known_{secrets.token_urlsafe(24)}"
    assert other.get("/v1/usage", headers={"Authorization": f"Bearer {guess}"}).status_code == 401


def test_behind_a_trusted_proxy_unknown_keys_count_per_forwarded_client(db, redis_client, prefix):
    proxy = ("10.0.0.5", 5000)
    client = app_client(
        db, redis_client, prefix, client=proxy, trusted_proxies="10.0.0.5",
        unknown_key_limit="2/minute",
    )  # fmt: skip

    def guess(forwarded_for: str) -> int:
        headers = {
            "Authorization": f"Bearer ml_x_{secrets.token_urlsafe(24)}",
            "X-Forwarded-For": forwarded_for,
        }
        return client.get("/v1/usage", headers=headers).status_code

    assert [guess("192.0.2.1") for _ in range(3)] == [401, 401, 429]
    assert guess("192.0.2.2") == 401  # another client behind the same proxy
    # from an untrusted peer, X-Forwarded-For is ignored: the peer itself is the client
    direct = TestClient(client.app, client=("198.51.100.20", 5000))
    forged = {"X-Forwarded-For": "192.0.2.99"}
    statuses = [
        direct.get(
            "/v1/usage",
            headers={"Authorization": f"Bearer ml_x_{secrets.token_urlsafe(24)}", **forged},
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [401, 401, 429]
