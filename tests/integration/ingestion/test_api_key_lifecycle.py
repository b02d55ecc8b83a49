"""API keys through the admin API: issue, list, revoke, rotate; a revoked key stops the API
and the portal sessions made from it (real Postgres and Redis, over HTTP)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from meterline.core.api_keys import revoke_key
from meterline.core.tenants import create_tenant
from meterline.server import create_app

ADMIN = {"Authorization": "Bearer admin-key"}
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def prefix(test_services):
    return test_services.redis_prefix


def make_client(db, redis_client, prefix, **options) -> TestClient:
    app = create_app(db, redis_client, prefix=prefix, admin_key="admin-key", **options)
    return TestClient(app, follow_redirects=False)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def issue(client: TestClient, tenant: str) -> dict:
    response = client.post(f"/v1/admin/tenants/{tenant}/keys", headers=ADMIN)
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    return response.json()


def test_keys_are_issued_once_listed_by_id_and_prefix_and_need_the_admin_key(
    db, redis_client, prefix
):
    create_tenant(db, "acme", "payg")
    client = make_client(db, redis_client, prefix)
    issued = issue(client, "acme")
    assert issued["key"].startswith(issued["prefix"]) and issued["status"] == "active"
    listed = client.get("/v1/admin/tenants/acme/keys", headers=ADMIN)
    assert listed.status_code == 200 and issued["key"] not in listed.text
    [only] = listed.json()["keys"]
    assert only["key_id"] == issued["key_id"] and set(only) == {
        "key_id", "tenant_id", "prefix", "status", "created_at", "revoked_at",
    }  # fmt: skip
    assert client.get("/v1/usage", headers=bearer(issued["key"])).status_code == 200
    assert client.get("/v1/admin/tenants/acme/keys").status_code == 401
    assert (
        client.get("/v1/admin/tenants/acme/keys", headers=bearer(issued["key"])).status_code == 403
    )
    missing = client.post("/v1/admin/tenants/nobody/keys", headers=ADMIN)
    assert (
        missing.status_code == 404
        and "unknown tenant 'nobody'" in missing.json()["error"]["message"]
    )
    unknown = client.delete("/v1/admin/keys/key_000000000000", headers=ADMIN)
    assert unknown.status_code == 404
    for odd in ("a%00b", "%C3%A9" * 40, "..", "key_%00"):  # never reaches SQL as is: no 5xx
        assert client.get(f"/v1/admin/tenants/{odd}/keys", headers=ADMIN).status_code == 404
        assert client.post(f"/v1/admin/keys/{odd}/rotate", headers=ADMIN).status_code == 404


def test_revoking_through_the_admin_api_stops_the_key_and_its_portal_session_at_once(
    db, redis_client, prefix
):
    create_tenant(db, "acme", "payg")
    client = make_client(db, redis_client, prefix, key_cache_ttl=60)  # the cache must not matter
    issued = issue(client, "acme")
    signed_in = client.post("/dashboard/sign-in", data={"key": issued["key"]})
    assert signed_in.status_code == 303 and issued["key"] not in signed_in.headers["set-cookie"]
    assert client.get("/dashboard").status_code == 200  # the session cookie works
    assert client.get("/v1/usage", headers=bearer(issued["key"])).status_code == 200
    # a page opened with the key as Bearer also leaves a session (for its scripts)
    page = TestClient(client.app, follow_redirects=False)
    assert page.get("/dashboard", headers=bearer(issued["key"])).status_code == 200
    assert page.get("/dashboard").status_code == 200

    revoked = client.delete(f"/v1/admin/keys/{issued['key_id']}", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert client.get("/v1/usage", headers=bearer(issued["key"])).status_code == 401
    ended = client.get("/dashboard")
    assert ended.status_code == 401 and "was revoked" in ended.text
    assert page.get("/dashboard").status_code == 401
    again = client.delete(f"/v1/admin/keys/{issued['key_id']}", headers=ADMIN)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # idempotent


def test_a_key_revoked_by_another_process_stops_within_the_cache_ttl(db, redis_client, prefix):
    create_tenant(db, "acme", "payg")
    ttl = 0.5
    client = make_client(db, redis_client, prefix, key_cache_ttl=ttl)
    issued = issue(client, "acme")
    client.post("/dashboard/sign-in", data={"key": issued["key"]})
    assert client.get("/dashboard").status_code == 200
    assert client.get("/v1/usage", headers=bearer(issued["key"])).status_code == 200
    revoke_key(db, issued["key_id"])  # e.g. `meterline tenants revoke-key` elsewhere
    time.sleep(ttl + 0.1)
    assert client.get("/v1/usage", headers=bearer(issued["key"])).status_code == 401
    assert client.get("/dashboard").status_code == 401


def test_rotating_a_key_issues_a_new_one_and_the_old_one_stops(db, redis_client, prefix):
    create_tenant(db, "acme", "payg")
    client = make_client(db, redis_client, prefix)
    old = issue(client, "acme")
    assert client.get("/v1/usage", headers=bearer(old["key"])).status_code == 200
    rotated = client.post(f"/v1/admin/keys/{old['key_id']}/rotate", headers=ADMIN)
    assert rotated.status_code == 201
    new = rotated.json()
    assert new["replaces"] == old["key_id"] and new["key_id"] != old["key_id"]
    assert new["tenant_id"] == "acme" and new["key"] != old["key"]
    assert client.get("/v1/usage", headers=bearer(old["key"])).status_code == 401
    assert client.get("/v1/usage", headers=bearer(new["key"])).status_code == 200
    statuses = {
        k["key_id"]: k["status"]
        for k in client.get("/v1/admin/tenants/acme/keys", headers=ADMIN).json()["keys"]
    }
    assert statuses == {old["key_id"]: "revoked", new["key_id"]: "active"}
    twice = client.post(f"/v1/admin/keys/{old['key_id']}/rotate", headers=ADMIN)
    assert twice.status_code == 409 and "issue a new one" in twice.json()["error"]["message"]
