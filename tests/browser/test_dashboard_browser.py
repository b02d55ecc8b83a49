"""The dashboard pages in headless Chromium against real services and built marts: the quota
bars and costs show exactly what the marts hold, tenants see only their own data, the admin
overview sorts by the highest share of any limit, and page weight and first data paint are
measured (printed; see docs/dashboard.md). Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import os
import shutil
import time
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from portal.signing import mint_dashboard_link, sign
from tests.browser.chromium import MISSING, chromium_path
from tests.browser.dashboard_world import ADMIN_KEY, SECRET_KEY

if chromium_path() is None:  # fail before the fixtures build the marts
    pytest.fail(MISSING, pytrace=False)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_IMG = ROOT / "docs" / "img"
VIEWPORT = {"width": 1280, "height": 900}

pytestmark = pytest.mark.integration

METRICS_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const mark = performance.getEntriesByName('first-data-paint')[0];
  return {
    bytes: nav.transferSize + res.reduce((s, r) => s + r.transferSize, 0),
    decoded: nav.decodedBodySize + res.reduce((s, r) => s + r.decodedBodySize, 0),
    requests: 1 + res.length,
    first_data_paint_ms: mark ? Math.round(mark.startTime) : null,
    load_ms: Math.round(nav.loadEventEnd),
  };
}"""


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="UTC")
    yield ctx
    ctx.close()


def sign_in_as_admin(page, base_url: str) -> None:
    """What an operator does: open /admin (the sign-in form), type the admin key, submit."""
    assert page.goto(f"{base_url}/admin").status == 401
    page.fill("input[name=key]", ADMIN_KEY)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == base_url + "/admin", page.url


def link(tenant: str, ttl: int = 600) -> str:
    return mint_dashboard_link(tenant, secret=SECRET_KEY, ttl=ttl)


def money(minor: int) -> str:
    sign_ = "-" if minor < 0 else ""
    return f"{sign_}${abs(minor) / 100:,.2f}"


def num(value: Decimal) -> str:
    return f"{Decimal(value).normalize():,f}"


def wait_loaded(page) -> None:
    page.wait_for_selector("body[data-loaded=true]", timeout=15_000)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    # docs/img holds the README's copy: refreshed only when missing or asked for, so that a
    # test run does not dirty the git tree with a new timestamp in the picture
    docs_copy = DOCS_IMG / f"{name}.png"
    if not docs_copy.exists() or os.environ.get("METERLINE_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, docs_copy)
    return path


def report(label: str, metrics: dict) -> None:
    line = json.dumps({"page": label, **metrics})
    print(f"\nDASHBOARD-PERF {line}")
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "dashboard-perf.jsonl").open("a") as fh:
        fh.write(line + "\n")


def test_tenant_page_shows_the_marts_numbers(world, base_url, context):
    page = context.new_page()
    response = page.goto(base_url + link("acme"))
    assert response.ok and page.url == base_url + "/dashboard"
    wait_loaded(page)
    with world.engine.connect() as conn:
        quota = {
            r.meter: r
            for r in conn.execute(
                text(
                    "select q.meter, q.quantity, q.limit_quantity, q.percent_used, m.unit "
                    "from analytics.fct_quota_status q join meterline.meters m using (meter) "
                    "where q.tenant_id = 'acme' and q.month = :m"
                ),
                {"m": world.month},
            )
        }
        overview = conn.execute(
            text("select * from analytics.fct_tenant_overview where tenant_id = 'acme'")
        ).one()
        invoices = conn.execute(
            text(
                "select to_char(period, 'YYYY-MM'), amount_due, status from meterline.invoices "
                "where tenant_id = 'acme' order by period desc"
            )
        ).all()
        daily = dict(
            conn.execute(
                text(
                    "select meter, sum(quantity) from analytics.fct_usage_daily "
                    "where tenant_id = 'acme' and day > current_date - 30 group by meter"
                )
            ).all()
        )

    bars = page.eval_on_selector_all(
        ".meter",
        """els => els.map(e => ({meter: e.dataset.meter, percent: e.dataset.percent,
             level: e.dataset.level, cls: e.className, width: e.querySelector('.bar span').style.width,
             nums: e.querySelector('.nums').textContent, pct: e.querySelector('.pct').textContent,
             rem: e.querySelector('.rem').textContent}))""",
    )
    shown = {b["meter"]: b for b in bars}
    assert set(shown) == set(quota)
    for meter, row in quota.items():
        bar = shown[meter]
        if row.limit_quantity is None:
            assert bar["pct"] == "no limit", meter
            continue
        percent = row.percent_used
        assert Decimal(bar["percent"]) == percent, meter
        assert bar["width"] == f"{num(min(percent, Decimal(100)))}%", meter
        assert bar["nums"] == f"{num(row.quantity)} / {num(row.limit_quantity)} {row.unit}"
        assert bar["pct"] == f"{num(percent)} %", meter
        remaining = max(Decimal(0), row.limit_quantity - row.quantity)
        assert bar["rem"].startswith(f"{num(remaining)} {row.unit} remaining"), meter
        expected_level = max([t for t in (80, 90, 95, 100) if percent >= t], default=0)
        assert bar["level"] == str(expected_level) and f"lvl-{expected_level}" in bar["cls"]
    assert shown["api_calls"]["percent"] == "92" and shown["api_calls"]["level"] == "90"
    assert shown["bandwidth_gb"]["level"] == "95" and shown["storage_gb"]["level"] == "80"
    # bar colours follow the thresholds
    colours = page.eval_on_selector_all(
        ".meter .bar span", "els => els.map(e => getComputedStyle(e).backgroundColor)"
    )
    assert len(set(colours)) >= 3

    assert page.inner_text("#estimated") == money(overview.estimated_cost)
    assert page.inner_text("#projected") == money(overview.projected_cost)
    assert int(page.get_attribute("#estimated", "data-minor")) == overview.estimated_cost
    rows = page.eval_on_selector_all(
        "#invoices tbody tr",
        "els => els.map(e => [e.dataset.period, e.cells[1].textContent, e.cells[2].textContent])",
    )
    assert rows == [[p, money(a), s] for p, a, s in invoices]
    assert page.locator("#alerts tbody tr").count() == 3
    charts = page.eval_on_selector_all(
        "#trend .chart", "els => els.map(e => [e.dataset.meter, e.dataset.total])"
    )
    for meter, total in charts:
        assert Decimal(total) == daily.get(meter, 0), meter
    assert page.locator("#trend svg.bars").count() == len(charts) >= 4
    page.click("#trend button[data-days='90']")
    expect(page.locator("#trend svg title").first).to_contain_text("90 days")
    page.click("#trend button[data-days='30']")
    expect(page.locator("#trend svg title").first).to_contain_text("30 days")
    assert "Acme Corp" in page.inner_text("#who")
    screenshot(page, "dashboard-tenant")


def test_page_weight_and_first_data_paint(world, base_url, browser):
    """Cold cache, unthrottled and on an emulated slow connection (400 ms RTT, ~400 kbit/s)."""
    results = {}
    for label, conditions in (
        ("tenant", None),
        ("tenant-slow", {"latency": 400, "downloadThroughput": 50_000, "uploadThroughput": 25_000}),
    ):
        ctx = browser.new_context(viewport=VIEWPORT, locale="en-US")
        page = ctx.new_page()
        if conditions:
            cdp = ctx.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", {"offline": False, **conditions})
        page.goto(base_url + link("acme"))
        wait_loaded(page)
        results[label] = page.evaluate(METRICS_JS)
        report(label, results[label])
        if label == "tenant":
            page.reload()  # warm: static files come from the cache (immutable)
            wait_loaded(page)
            warm = page.evaluate(METRICS_JS)
            report("tenant-warm", warm)
            assert warm["bytes"] < results[label]["bytes"]
        ctx.close()
    ctx = browser.new_context(viewport=VIEWPORT, locale="en-US")
    page = ctx.new_page()
    sign_in_as_admin(page, base_url)
    wait_loaded(page)
    results["admin"] = page.evaluate(METRICS_JS)
    report("admin", results["admin"])
    ctx.close()
    assert results["tenant"]["bytes"] < 40_000, results["tenant"]
    assert results["admin"]["bytes"] < 40_000, results["admin"]
    assert results["tenant"]["first_data_paint_ms"] is not None
    assert results["tenant-slow"]["first_data_paint_ms"] < 10_000


def test_tenants_see_only_their_own_data(world, base_url, context):
    page = context.new_page()
    page.goto(base_url + link("globex"))
    wait_loaded(page)
    assert "Globex" in page.inner_text("#who") and "Acme" not in page.content()
    meters = page.eval_on_selector_all(".meter", "els => els.map(e => e.dataset.quantity)")
    assert "46000" not in meters  # acme's api_calls
    # the session cannot be pointed at another tenant
    status = page.evaluate("fetch('/v1/dashboard/summary?tenant=acme').then(r => r.status)")
    assert status == 403
    # another tenant's key, a forged link and an expired link show no data
    secret = SECRET_KEY
    expired_at = int(time.time()) - 1
    expired = f"/dashboard?t=acme&exp={expired_at}&code=c&sig={sign(secret, 'tenant', 'acme', expired_at, 'c')}"
    forged = link("globex").replace("t=globex", "t=acme")
    key_in_url = f"/dashboard?t=acme&key={world.keys['globex']}"  # no longer accepted
    for url, expected in ((expired, 401), (forged, 403), (key_in_url, 401)):
        fresh = context.browser.new_context()
        tab = fresh.new_page()
        response = tab.goto(base_url + url)
        assert response.status == expected, url
        assert tab.locator(".meter").count() == 0 and "Acme Corp" not in tab.content()
        assert tab.evaluate("fetch('/v1/dashboard/summary').then(r => r.status)") == 401
        fresh.close()


def test_admin_page_sorts_filters_and_links_to_tenant_pages(world, base_url, context):
    page = context.new_page()
    sign_in_as_admin(page, base_url)
    assert page.url == base_url + "/admin"
    wait_loaded(page)
    rows = page.eval_on_selector_all(
        "#tenants tbody tr",
        "els => els.map(e => ({t: e.dataset.tenant, p: e.dataset.percent, plan: e.dataset.plan,"
        " est: e.querySelector('[data-col=estimated]').dataset.minor,"
        " mrr: e.querySelector('[data-col=mrr]').dataset.minor,"
        " alloc: e.querySelector('[data-col=allocated]').dataset.minor,"
        " margin: e.querySelector('[data-col=margin]').dataset.minor}))",
    )
    order = [r["t"] for r in rows]
    assert order[:3] == ["initech", "acme", "globex"]
    percents = [Decimal(r["p"]) for r in rows if r["p"]]
    assert percents == sorted(percents, reverse=True)
    with world.engine.connect() as conn:
        top = dict(
            conn.execute(
                text(
                    "select tenant_id, max(percent_used) from analytics.fct_quota_status "
                    "where month = :m group by tenant_id"
                ),
                {"m": world.month},
            ).all()
        )
        overview = dict(
            conn.execute(
                text("select tenant_id, estimated_cost from analytics.fct_tenant_overview")
            ).all()
        )
        mrr = dict(
            conn.execute(
                text("select tenant_id, mrr from analytics.fct_mrr where month = :m"),
                {"m": world.month},
            ).all()
        )
        alloc = dict(
            conn.execute(
                text(
                    "select distinct tenant_id, tenant_allocated_cost "
                    "from analytics.fct_cost_allocation where month = :m"
                ),
                {"m": world.last_month},
            ).all()
        )
    for row in rows:
        tenant = row["t"]
        if top.get(tenant) is not None:
            assert Decimal(row["p"]) == top[tenant], tenant
        assert int(row["est"]) == overview[tenant], tenant
        assert int(row["mrr"]) == mrr.get(tenant, 0), tenant
        if tenant in alloc:
            assert int(row["alloc"]) == alloc[tenant], tenant
    assert page.inner_text("#alloc-h") == f"Allocated cost {world.last_month:%Y-%m}"
    screenshot(page, "dashboard-admin")

    page.select_option("#filters select[name=plan]", "starter")
    expect(page.locator("#tenants tbody tr")).to_have_count(1)
    wait_loaded(page)
    assert page.eval_on_selector_all(
        "#tenants tbody tr", "els => els.map(e => e.dataset.tenant)"
    ) == ["acme"]
    assert "plan=starter" in page.url
    page.select_option("#filters select[name=plan]", "")
    page.select_option("#filters select[name=status]", "canceled")
    rows = page.locator("#tenants tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-tenant", "umbrella")
    page.select_option("#filters select[name=status]", "")
    expect(page.locator("#tenants tbody tr")).to_have_count(5)
    # the link opens that tenant's page through a fresh signed link
    page.click("#tenants a:text-is('acme')")
    page.wait_for_url(base_url + "/dashboard")
    wait_loaded(page)
    assert "Acme Corp" in page.inner_text("#who")
