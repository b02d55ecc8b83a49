"""The ASGI quota middleware in front of a plain Starlette app: metering, refusals, and whose
usage a request is (the key's; a tenant header only from a trusted proxy and never over a key)."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn
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


def build(recorder, client=("testclient", 50000), **options):
    async def search(_request):
        return JSONResponse({"results": []})

    async def health(_request):
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/v1/search", search), Route("/health", health)])
    app.add_middleware(
        QuotaMiddleware, recorder=recorder, routes={"/v1/search": "api_calls"}, **options
    )
    return TestClient(app, client=client)


def test_meters_routes_and_refuses_over_the_hard_limit(db, redis_client, prefix):
    create_tenant(db, "acme", "free")  # api_calls: 1,000 hard
    acme = {"Authorization": f"Bearer {issue_api_key(db, 'acme')}"}
    recorder = UsageRecorder(redis_client, db, prefix=prefix)
    recorder.record({"tenant_id": "acme", "meter": "api_calls", "value": 998})
    client = build(recorder)
    first = client.get("/v1/search", headers=acme)
    assert first.status_code == 200 and first.headers["X-Usage-Remaining"] == "1"
    second = client.get("/v1/search", headers=acme)
    assert second.status_code == 200 and second.headers["X-Usage-Remaining"] == "0"
    refused = client.get("/v1/search", headers=acme)
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
    client = build(UsageRecorder(redis_client, db, prefix=prefix))
    assert client.get("/v1/search", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.get("/v1/search").status_code == 401
    usage = {u.meter: u for u in live_usage(redis_client, db, "keyed", prefix=prefix)}
    assert usage["api_calls"].event_count == 1


def calls(redis_client, db, prefix, tenant):
    usage = {u.meter: u for u in live_usage(redis_client, db, tenant, prefix=prefix)}
    found = usage.get("api_calls")
    return (found.event_count, found.refused_events) if found else (0, 0)


def test_a_tenant_header_without_a_key_is_401_and_counts_nothing(db, redis_client, prefix):
    create_tenant(db, "victim", "payg")
    client = build(UsageRecorder(redis_client, db, prefix=prefix))
    spoofed = client.get("/v1/search", headers={"X-Tenant-ID": "victim"})
    assert spoofed.status_code == 401 and "Bearer" in spoofed.json()["error"]["message"]
    assert calls(redis_client, db, prefix, "victim") == (0, 0)


def test_a_tenant_header_needs_trusted_proxies_to_be_configured(db, redis_client, prefix):
    client = build(UsageRecorder(redis_client, db, prefix=prefix), tenant_header="X-Tenant-ID")
    with pytest.raises(ValueError, match="METERLINE_TRUSTED_PROXIES"):  # when the app starts
        client.get("/v1/search", headers={"X-Tenant-ID": "anyone"})


def test_an_over_limit_key_is_refused_as_its_own_tenant_whatever_the_header_says(
    db, redis_client, prefix
):
    create_tenant(db, "spent", "free")  # api_calls: 1,000 hard
    create_tenant(db, "roomy", "payg")
    key = issue_api_key(db, "spent")
    recorder = UsageRecorder(redis_client, db, prefix=prefix)
    recorder.record({"tenant_id": "spent", "meter": "api_calls", "value": 1000})
    # the request even comes from a trusted proxy, so the header *would* count without a key
    client = build(
        recorder, client=("10.0.0.5", 4321), tenant_header="X-Tenant-ID", trusted_proxies="10.0.0.5"
    )
    response = client.get(
        "/v1/search", headers={"Authorization": f"Bearer {key}", "X-Tenant-ID": "roomy"}
    )
    assert response.status_code == 402 and "plan 'free'" in response.json()["error"]["message"]
    assert calls(redis_client, db, prefix, "spent") == (1, 1)  # the refusal is spent's
    assert calls(redis_client, db, prefix, "roomy") == (0, 0)


def _serve(app):
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("trusted", "honoured"), [("127.0.0.1", True), ("10.0.0.0/8, 192.168.1.7", False)]
)
def test_a_tenant_header_counts_only_from_a_listed_proxy_address(
    db, redis_client, prefix, trusted, honoured
):
    create_tenant(db, "proxied", "payg")
    app = Starlette(routes=[Route("/v1/search", lambda _r: JSONResponse({"ok": True}))])
    app.add_middleware(
        QuotaMiddleware,
        recorder=UsageRecorder(redis_client, db, prefix=prefix),
        routes={"/v1/search": "api_calls"},
        tenant_header="X-Tenant-ID",
        trusted_proxies=trusted,
    )
    server, thread, url = _serve(app)
    try:
        # over real HTTP from 127.0.0.1; a forwarded address does not make a proxy trusted
        response = httpx.get(
            f"{url}/v1/search", headers={"X-Tenant-ID": "proxied", "X-Forwarded-For": "10.0.0.1"}
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert response.status_code == (200 if honoured else 401)
    assert calls(redis_client, db, prefix, "proxied") == ((1, 0) if honoured else (0, 0))
