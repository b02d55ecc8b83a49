"""The ASGI quota middleware in front of a plain Starlette app."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ingestion.middleware import QuotaMiddleware
from ingestion.recorder import UsageRecorder
from ingestion.usage import live_usage
from meterline.core.tenants import create_tenant, issue_api_key


@pytest.fixture
def prefix(test_services):
    return test_services.redis_prefix


def build(recorder, **options):
    async def search(_request):
        return JSONResponse({"results": []})

    async def health(_request):
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/v1/search", search), Route("/health", health)])
    app.add_middleware(
        QuotaMiddleware, recorder=recorder, routes={"/v1/search": "api_calls"}, **options
    )
    return TestClient(app)


def test_meters_routes_and_refuses_over_the_hard_limit(db, redis_client, prefix):
    create_tenant(db, "acme", "free")  # api_calls: 1,000 hard
    recorder = UsageRecorder(redis_client, db, prefix=prefix)
    recorder.record({"tenant_id": "acme", "meter": "api_calls", "value": 998})
    client = build(recorder)
    first = client.get("/v1/search", headers={"X-Tenant-ID": "acme"})
    assert first.status_code == 200 and first.headers["X-Usage-Remaining"] == "1"
    second = client.get("/v1/search", headers={"X-Tenant-ID": "acme"})
    assert second.status_code == 200 and second.headers["X-Usage-Remaining"] == "0"
    refused = client.get("/v1/search", headers={"X-Tenant-ID": "acme"})
    assert refused.status_code == 402
    problem = refused.json()["error"]
    assert problem["meter"] == "api_calls" and problem["upgrade_to"] == "starter"
    assert "1000" in problem["message"]
    assert client.get("/health").status_code == 200  # unmetered: untouched
    usage = {u.meter: u for u in live_usage(redis_client, db, "acme", prefix=prefix)}
    assert usage["api_calls"].quantity == 1000 and usage["api_calls"].refused_events == 1


def test_tenant_from_api_key_and_missing_tenant(db, redis_client, prefix):
    create_tenant(db, "keyed", "payg")
    key = issue_api_key(db, "keyed")
    client = build(UsageRecorder(redis_client, db, prefix=prefix), tenant_header=None)
    assert client.get("/v1/search", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.get("/v1/search").status_code == 401
    usage = {u.meter: u for u in live_usage(redis_client, db, "keyed", prefix=prefix)}
    assert usage["api_calls"].event_count == 1
