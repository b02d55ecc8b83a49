"""`meterline demo` end to end, twice: the second run succeeds and counts nothing twice, and
both runs read well: about two screens, no dbt per-node lines (they go to a log file whose
path is printed), no key, secret or password in anything printed."""

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[3]
MAX_LINES = 120
# What dbt prints per node ("12 of 135 START sql view model ...", "OK created", "PASS ...").
DBT_NODE_LINE = re.compile(
    r"\b\d+ of \d+ (START|OK|PASS|WARN|ERROR|FAIL|SKIP|NO-OP)\b|OK created|START sql|"
    r"^\s*PASS |Running with dbt=|Concurrency: \d+ threads"
)
URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


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
    from meterline.core.db import head_revision

    for expected in (
        f"migrated to revision {head_revision()}",  # the demo migrates its database, and says so
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
    _reads_well(first)

    _dashboard_shows_the_marts(db)
    _printed_admin_link_opens_the_admin_page(db, first.stdout)

    second = _demo()
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "0 new" in second.stdout  # tenants already there
    assert _totals(db, cutoff) == after_first
    _reads_well(second)


def _reads_well(run: subprocess.CompletedProcess) -> None:
    """About two screens; dbt's node lines in a log file (its path printed); no secret."""
    from meterline.core.secrets import secret_key
    from meterline.core.settings import Settings

    output = run.stdout + run.stderr
    lines = output.splitlines()
    assert len(lines) <= MAX_LINES, f"{len(lines)} lines:\n{output}"
    dbt_lines = [line for line in lines if DBT_NODE_LINE.search(line)]
    assert not dbt_lines, dbt_lines[:5]

    logs = re.findall(r"dbt log \.* (\S+)", run.stdout)
    assert len(logs) == 1, "the dbt log path is printed once"
    dbt_log = Path(logs[0])
    assert dbt_log.is_file()
    assert dbt_log.is_relative_to(Path(os.environ["METERLINE_HOME"]))
    assert re.search(r"OK created|PASS", dbt_log.read_text())  # routed there, not dropped

    home = Path(os.environ["METERLINE_HOME"])
    admin_key = (home / "admin_key").read_text().strip()
    secrets = {
        "admin key": admin_key,
        "link secret": secret_key(Settings.from_env()),
        "STRIPE_API_KEY": os.environ["STRIPE_API_KEY"],
    }
    for name, secret in secrets.items():
        assert secret not in output, name
    urls = URL.findall(output)
    assert urls, "the demo prints where to look"
    assert not [u for u in urls if re.search(r"[?&]key=", u)], "a key in a URL"
    assert not [u for u in urls if re.search(r"://[^/@\s]*:[^/@\s]+@", u)], "a password in a URL"
    assert re.search(r"/admin\?exp=\d+&code=[\w-]+&sig=[0-9a-f]{64}", run.stdout), "an admin link"


def _printed_admin_link_opens_the_admin_page(db, stdout: str) -> None:
    """The admin link the demo printed is accepted by the server `meterline serve` builds."""
    import redis as redis_lib
    from fastapi.testclient import TestClient

    from meterline.server import create_app

    link = re.search(r"https?://\S+(/admin\?exp=\d+&code=[\w-]+&sig=[0-9a-f]{64})", stdout).group(1)
    admin_key = (Path(os.environ["METERLINE_HOME"]) / "admin_key").read_text().strip()
    client = redis_lib.Redis.from_url(os.environ["REDIS_URL"])
    app = create_app(db, client, prefix=os.environ["METERLINE_REDIS_PREFIX"], admin_key=admin_key)
    with TestClient(app) as http:
        tampered = http.get(link[:-1] + ("0" if link[-1] != "0" else "1"))
        opened = http.get(link)
        again = http.get(link, follow_redirects=False)
    client.close()
    assert opened.status_code == 200 and str(opened.url).endswith("/admin")
    assert tampered.status_code == 403
    assert again.status_code == 401  # a link opens once


def _dashboard_shows_the_marts(db) -> None:
    """With the demo's data, the tenant page and the admin page show what the marts hold."""
    import redis as redis_lib
    from fastapi.testclient import TestClient

    from meterline.core.tenants import issue_api_key
    from meterline.server import create_app

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
        page = http.post("/dashboard/sign-in", data={"key": key})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        summary = http.get(
            "/v1/dashboard/summary", headers={"Authorization": f"Bearer {key}"}
        ).json()
        admin_page = http.post("/admin/sign-in", data={"key": admin_key})
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
