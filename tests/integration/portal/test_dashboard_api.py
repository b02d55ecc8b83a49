"""The dashboard's HTTP side against real Postgres, Redis, dbt marts and uvicorn: access
control (keys, cookies, signed links), the numbers against the marts, pagination, gzip and
cache headers. The browser tests (tests/browser/) check what the pages render."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
from sqlalchemy import text

from portal.signing import mint_dashboard_link, sign
from tests.browser.dashboard_world import ADMIN_KEY, CURRENT, SECRET_KEY


def dec(value) -> Decimal | None:
    return None if value is None else round(Decimal(str(value)), 6).normalize()


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_tenant_data_equals_the_marts_and_live_counters(world, base_url):
    with httpx.Client(base_url=base_url) as http:
        summary = http.get("/v1/dashboard/summary", headers=bearer(world.keys["acme"])).json()
    assert summary["tenant_id"] == "acme" and summary["plan"] == "starter"
    assert summary["month"] == world.month.strftime("%Y-%m")
    with world.engine.connect() as conn:
        quota = {
            r.meter: r
            for r in conn.execute(
                text(
                    "select meter, quantity, limit_quantity, percent_used "
                    "from analytics.fct_quota_status where tenant_id = 'acme' and month = :m"
                ),
                {"m": world.month},
            )
        }
        overview = conn.execute(
            text("select * from analytics.fct_tenant_overview where tenant_id = 'acme'")
        ).one()
        lines = conn.execute(
            text(
                "select line_key, amount from analytics.fct_invoice_lines "
                "where tenant_id = 'acme' and month = :m"
            ),
            {"m": world.month},
        ).all()
    meters = {m["meter"]: m for m in summary["meters"]}
    assert set(meters) == set(quota)
    for meter, row in quota.items():
        shown = meters[meter]
        assert dec(shown["quantity"]) == row.quantity, meter
        assert dec(shown["limit"]) == row.limit_quantity, meter
        assert dec(shown["percent"]) == row.percent_used, meter
        assert dec(shown["quantity"]) == Decimal(str(CURRENT["acme"].get(meter, 0))), meter
    assert meters["api_calls"]["percent"] == 92 and meters["api_calls"]["level"] == 90
    assert meters["api_calls"]["remaining"] == 4000
    assert meters["storage_gb"]["level"] == 80 and meters["bandwidth_gb"]["level"] == 95
    assert meters["active_users"]["level"] == 0
    costs = summary["costs"]
    assert costs["source"] == "marts" and costs["currency"] == "USD"
    assert costs["estimated_cost"] == overview.estimated_cost > 0
    assert costs["projected_cost"] == overview.projected_cost >= overview.estimated_cost
    assert {(x["line_key"], x["amount"]) for x in costs["lines"]} == {tuple(r) for r in lines}
    assert costs["base_fee"] == 2900  # starter: $29

    with httpx.Client(base_url=base_url) as http:
        initech = http.get("/v1/dashboard/summary", headers=bearer(world.keys["initech"])).json()
    api = next(m for m in initech["meters"] if m["meter"] == "api_calls")
    assert (api["percent"], api["level"], api["remaining"], api["refused"]) == (100, 100, 0, 5)


def test_trend_alerts_and_invoices_are_the_tenants_own_and_paginate(world, base_url):
    with httpx.Client(base_url=base_url, headers=bearer(world.keys["acme"])) as http:
        trend30 = http.get("/v1/dashboard/usage", params={"days": 30, "per_page": 2}).json()
        trend90 = http.get("/v1/dashboard/usage", params={"days": 90, "per_page": 50}).json()
        alerts = http.get("/v1/dashboard/alerts", params={"per_page": 2}).json()
        alerts2 = http.get("/v1/dashboard/alerts", params={"per_page": 2, "page": 2}).json()
        invoices = http.get("/v1/dashboard/invoices").json()
        bad = http.get("/v1/dashboard/usage", params={"days": "lots"})
    with world.engine.connect() as conn:
        plan_meters = conn.execute(
            text("select count(*) from meterline.plan_meters where plan_id = 'starter'")
        ).scalar()
    assert trend30["total"] == plan_meters >= 4 and len(trend30["items"]) == 2
    assert trend30["pages"] == -(-plan_meters // 2)
    assert all(len(i["values"]) == 30 and i["svg"].startswith("<svg") for i in trend30["items"])
    with world.engine.connect() as conn:
        daily = dict(
            conn.execute(
                text(
                    "select meter, sum(quantity) from analytics.fct_usage_daily "
                    "where tenant_id = 'acme' and day > current_date - 90 group by meter"
                )
            ).all()
        )
    assert {i["meter"]: Decimal(str(i["total"])) for i in trend90["items"] if i["total"]} == daily
    assert alerts["total"] == 3 and len(alerts["items"]) == 2 and len(alerts2["items"]) == 1
    assert [a["threshold"] for a in alerts["items"] + alerts2["items"]] == [95, 90, 80]
    assert [(i["period"], i["status"], i["amount_due"]) for i in invoices["items"]] == [
        (world.last_month.strftime("%Y-%m"), "open", 5321),
        (world.month.replace(day=1).__class__(*_two_back(world)).strftime("%Y-%m"), "paid", 4150),
    ]
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "days"


def _two_back(world):
    year, month = world.last_month.year, world.last_month.month - 1
    return (year - 1, 12, 1) if month < 1 else (year, month, 1)


def test_another_tenants_key_forged_or_expired_links_get_no_data(world, base_url):
    secret = SECRET_KEY
    endpoints = ["/v1/dashboard/summary", "/v1/dashboard/usage", "/v1/dashboard/alerts",
                 "/v1/dashboard/invoices"]  # fmt: skip
    with httpx.Client(base_url=base_url) as http:
        for path in endpoints:
            anonymous = http.get(path)
            assert anonymous.status_code == 401 and "error" in anonymous.json()
            other = http.get(path, params={"tenant": "acme"}, headers=bearer(world.keys["globex"]))
            assert other.status_code == 403, path
            assert "acme" not in other.text and "items" not in other.json()
            assert http.get(path, headers=bearer("ml_nope")).status_code == 401
        # the admin endpoint refuses tenant keys
        assert http.get("/v1/admin/overview", headers=bearer(world.keys["acme"])).status_code == 403
        # signed links: valid, expired, forged (tenant swapped), garbage
        good = mint_dashboard_link("acme", secret=secret, ttl=60)
        expired_at = int(time.time()) - 5
        expired = (
            f"/dashboard?t=acme&exp={expired_at}&code=c"
            f"&sig={sign(secret, 'tenant', 'acme', expired_at, 'c')}"
        )
        forged = good.replace("t=acme", "t=globex")
        for link, status in (
            (expired, 401),
            (forged, 403),
            ("/dashboard?t=acme&exp=1&code=c&sig=x", 403),
        ):
            page = http.get(link)
            assert page.status_code == status, link
            assert "meterline_dashboard" not in page.headers.get("set-cookie", "")
            assert page.headers["cache-control"] == "no-store"
        assert http.get("/dashboard").status_code == 401
        assert http.post("/dashboard/sign-in", data={"key": "wrong"}).status_code == 401
        assert http.post("/admin/sign-in", data={"key": "wrong"}).status_code == 401
        assert http.get("/admin").status_code == 401

    # a valid link sets an HttpOnly session cookie for that tenant only, then drops the query
    with httpx.Client(base_url=base_url) as http:
        opened = http.get(good)
        assert opened.status_code == 303 and opened.headers["location"] == "/dashboard"
        cookie = opened.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and ADMIN_KEY not in cookie
        assert http.get("/dashboard").status_code == 200
        assert http.get("/v1/dashboard/summary").json()["tenant_id"] == "acme"
        assert http.get("/v1/dashboard/summary", params={"tenant": "globex"}).status_code == 403
        assert http.get("/v1/admin/overview").status_code == 401
    # a key typed into the form opens the page; the cookie holds a signed session, never the key
    with httpx.Client(base_url=base_url) as http:
        opened = http.post("/dashboard/sign-in", data={"key": world.keys["globex"]})
        assert (
            opened.status_code == 303 and world.keys["globex"] not in opened.headers["set-cookie"]
        )
        assert http.get("/v1/dashboard/summary").json()["tenant_id"] == "globex"


def test_admin_overview_sorted_filtered_paginated_and_equal_to_the_marts(world, base_url):
    with httpx.Client(base_url=base_url, headers=bearer(ADMIN_KEY)) as http:
        everyone = http.get("/v1/admin/overview").json()
        paged = http.get("/v1/admin/overview", params={"per_page": 2, "page": 2}).json()
        starter = http.get("/v1/admin/overview", params={"plan": "starter"}).json()
        canceled = http.get("/v1/admin/overview", params={"status": "canceled"}).json()
        exceeded = http.get("/v1/admin/overview", params={"quota": "exceeded"}).json()
        bad = http.get("/v1/admin/overview", params={"status": "sleepy"})
    order = [i["tenant_id"] for i in everyone["items"]]
    assert order[:3] == ["initech", "acme", "globex"]  # 100 %, 96 %, 40 %
    percents = [i["max_percent"] for i in everyone["items"] if i["max_percent"] is not None]
    assert percents == sorted(percents, reverse=True)
    assert set(order) == {"acme", "globex", "initech", "hooli", "umbrella"}
    assert [i["tenant_id"] for i in paged["items"]] == order[2:4] and paged["pages"] == 3
    assert [i["tenant_id"] for i in starter["items"]] == ["acme"]
    assert [i["tenant_id"] for i in canceled["items"]] == ["umbrella"]
    assert [i["tenant_id"] for i in exceeded["items"]] == ["initech"]
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"
    assert everyone["finance_month"] == world.last_month.strftime("%Y-%m")
    assert everyone["plans"][0] == "free" or "free" in everyone["plans"]
    with world.engine.connect() as conn:
        overview = {
            r.tenant_id: r
            for r in conn.execute(text("select * from analytics.fct_tenant_overview"))
        }
        mrr = dict(
            conn.execute(
                text("select tenant_id, mrr from analytics.fct_mrr where month = :m"),
                {"m": world.month},
            ).all()
        )
        alloc = {
            r.tenant_id: r
            for r in conn.execute(
                text(
                    "select distinct tenant_id, tenant_allocated_cost, gross_margin, margin_pct "
                    "from analytics.fct_cost_allocation where month = :m"
                ),
                {"m": world.last_month},
            )
        }
    for item in everyone["items"]:
        tenant = item["tenant_id"]
        assert item["estimated_cost"] == overview[tenant].estimated_cost, tenant
        assert item["projected_cost"] == overview[tenant].projected_cost, tenant
        assert item["mrr"] == mrr.get(tenant, 0), tenant
        if tenant in alloc:
            assert item["allocated_cost"] == alloc[tenant].tenant_allocated_cost, tenant
            assert item["gross_margin"] == alloc[tenant].gross_margin, tenant
        assert item["dashboard_url"].startswith(f"/dashboard?t={tenant}&exp=")
    assert everyone["items"][1]["mrr"] == 2900  # acme on starter
    assert sum(a.tenant_allocated_cost for a in alloc.values()) == 22550  # $180 + $45.50


def test_gzip_and_cache_headers(world, base_url):
    with httpx.Client(base_url=base_url) as http:
        page = http.get("/dashboard", headers=bearer(world.keys["acme"]))
        assert page.status_code == 200 and page.headers["cache-control"] == "private, no-cache"
        assets = [a.split('"')[0] for a in page.text.split("/dashboard/static/")[1:]]
        assert {a.rsplit("/", 1)[1] for a in assets} == {"dashboard.css", "tenant.js"}
        for asset in assets:
            static = http.get(f"/dashboard/static/{asset}", headers={"Accept-Encoding": "gzip"})
            assert static.status_code == 200
            assert static.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert static.headers["content-encoding"] == "gzip"
        assert http.get("/dashboard/static/0000/tenant.js").status_code == 404
        data = http.get(
            "/v1/dashboard/usage", params={"days": 90},
            headers={**bearer(world.keys["acme"]), "Accept-Encoding": "gzip"},
        )  # fmt: skip
        assert data.headers["content-encoding"] == "gzip"
        assert data.headers["cache-control"] == "private, max-age=30"
        assert "Authorization" in data.headers["vary"] and "Cookie" in data.headers["vary"]
        assert data.num_bytes_downloaded < len(data.content) / 2
        # the ingest path is not gzipped (its CPU goes to recording)
        usage = http.get(
            "/v1/usage", headers={**bearer(world.keys["acme"]), "Accept-Encoding": "gzip"}
        )
        assert "content-encoding" not in usage.headers
