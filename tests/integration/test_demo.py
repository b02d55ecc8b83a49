"""`meterline demo` end to end, twice: the second run succeeds and counts nothing twice."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]


def _demo() -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "meterline.cli.app", "demo", "--tenants", "5", "--scale", "0.05"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "160"}, timeout=900,
    )  # fmt: skip


def _totals(db, cutoff) -> dict:
    """Totals of what happened before ``cutoff`` (fixed, so a new hour between runs is ignored)."""
    with db.connect() as conn:
        return {
            "events": conn.execute(
                text(
                    "select count(*), sum(value) from raw.usage_events where occurred_at < :cutoff"
                ),
                {"cutoff": cutoff},
            ).one(),
            "monthly": conn.execute(
                text(
                    "select sum(quantity), sum(event_count) from analytics.fct_usage_monthly "
                    "where month < date_trunc('month', cast(:cutoff as timestamptz))"
                ),
                {"cutoff": cutoff},
            ).one(),
            "invoices": conn.execute(
                text("select count(*), sum(amount_due) from meterline.invoices")
            ).one(),
        }


def test_demo_runs_end_to_end_and_again_without_double_counting(db):
    cutoff = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first = _demo()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for expected in (
        "Usage per tenant",
        "Invoices for",
        "Reconciliation",
        "MRR bridge",
        "demo complete",
    ):
        assert expected in first.stdout, expected
    after_first = _totals(db, cutoff)
    assert after_first["events"][0] > 1000
    assert after_first["invoices"][0] >= 3

    _dashboard_shows_the_marts(db)

    second = _demo()
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "0 new" in second.stdout  # tenants already there
    assert _totals(db, cutoff) == after_first


def _dashboard_shows_the_marts(db) -> None:
    """With the demo's data, the tenant page and the admin page show what the marts hold."""
    import redis as redis_lib
    from fastapi.testclient import TestClient

    from ingestion.api import create_app
    from meterline.core.tenants import issue_api_key

    admin_key = (Path(os.environ["METERLINE_HOME"]) / "admin_key").read_text().strip()
    client = redis_lib.Redis.from_url(os.environ["REDIS_URL"])
    app = create_app(db, client, prefix=os.environ["METERLINE_REDIS_PREFIX"], admin_key=admin_key)
    with db.connect() as conn:
        busiest, month = conn.execute(
            text(
                "select tenant_id, date_trunc('month', now())::date from analytics.fct_tenant_overview "
                "order by top_percent desc nulls last, tenant_id limit 1"
            )
        ).one()
        quota = {
            r.meter: r.quantity
            for r in conn.execute(
                text(
                    "select meter, quantity from analytics.fct_quota_status where tenant_id = :t and month = :m"
                ),
                {"t": busiest, "m": month},
            )
        }
        overview = conn.execute(
            text("select estimated_cost from analytics.fct_tenant_overview where tenant_id = :t"),
            {"t": busiest},
        ).scalar_one()
        mrr = dict(
            conn.execute(
                text("select tenant_id, mrr from analytics.fct_mrr where month = :m"), {"m": month}
            ).all()
        )
    key = issue_api_key(db, busiest)
    with TestClient(app) as http:
        page = http.get("/dashboard", params={"key": key})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        summary = http.get(
            "/v1/dashboard/summary", headers={"Authorization": f"Bearer {key}"}
        ).json()
        admin_page = http.get("/admin", params={"key": admin_key})
        assert admin_page.status_code == 200
        admin = http.get(
            "/v1/admin/overview", headers={"Authorization": f"Bearer {admin_key}"}
        ).json()
        other = http.get("/v1/admin/overview", headers={"Authorization": f"Bearer {key}"})
    client.close()
    assert summary["tenant_id"] == busiest
    assert summary["costs"]["estimated_cost"] == overview
    shown = {m["meter"]: m["quantity"] for m in summary["meters"] if m["meter"] in quota}
    assert shown and all(abs(float(shown[m]) - float(quota[m])) < 1e-6 for m in shown)
    assert other.status_code in (401, 403)
    items = admin["items"]
    percents = [i["max_percent"] for i in items if i["max_percent"] is not None]
    assert percents == sorted(percents, reverse=True)
    for item in items:
        assert item["mrr"] == mrr.get(item["tenant_id"], 0), item["tenant_id"]
