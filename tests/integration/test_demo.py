"""`meterline demo` end to end, twice: the second run succeeds and counts nothing twice."""

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]


def _demo() -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "meterline.cli.app", "demo", "--tenants", "5", "--scale", "0.05"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "160"}, timeout=900,
    )  # fmt: skip


def _totals(db) -> dict:
    with db.connect() as conn:
        return {
            "events": conn.execute(
                text(
                    "select count(*), sum(value) from raw.usage_events where occurred_at < date_trunc('hour', now())"
                )
            ).one(),
            "monthly": conn.execute(
                text(
                    "select sum(quantity), sum(event_count) from analytics.fct_usage_monthly where month < date_trunc('month', now())"
                )
            ).one(),
            "invoices": conn.execute(
                text("select count(*), sum(amount_due) from meterline.invoices")
            ).one(),
            "alerts": conn.execute(text("select count(*) from meterline.alerts")).scalar_one(),
        }


def test_demo_runs_end_to_end_and_again_without_double_counting(db):
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
    after_first = _totals(db)
    assert after_first["events"][0] > 1000
    assert after_first["invoices"][0] >= 3

    second = _demo()
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "0 new" in second.stdout  # tenants already there
    assert _totals(db) == after_first
