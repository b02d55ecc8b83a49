"""`meterline demo` on days other than today: the first minutes of a year and a leap day.

The demo once broke on some days only (its data generator divided by zero for some hours), and
its month rules read the wall clock. Here the whole CLI process runs with its clock moved.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from meterline.core import periods

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "instant",
    [datetime(2027, 1, 1, 0, 5, tzinfo=UTC), datetime(2028, 2, 29, 23, 30, tzinfo=UTC)],
    ids=["first-minutes-of-a-year", "leap-day"],
)
def test_demo_runs_end_to_end_under_a_shifted_clock(instant, db):
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "shifted_clock.py"), instant.isoformat(),
         "demo", "--tenants", "5", "--scale", "0.05"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "160"},
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    billed = periods.last_billable_month(instant, 72)
    this_month = periods.month_start(instant)
    assert f"Billing {billed:%B %Y}" in run.stdout
    with db.connect() as conn:
        months = (
            conn.execute(text("select distinct month from analytics.fct_usage_monthly order by 1"))
            .scalars()
            .all()
        )
        invoiced = (
            conn.execute(text("select distinct period from meterline.invoices")).scalars().all()
        )
        mrr_last = conn.execute(text("select max(month) from analytics.fct_mrr")).scalar_one()
        loaded = conn.execute(text("select max(loaded_at) from raw.usage_events")).scalar_one()
    # two imported history months, plus the live month once an hour of it has passed
    history = [periods.add_months(this_month, -2), periods.add_months(this_month, -1)]
    assert months[:2] == history and set(months) <= {*history, this_month}
    assert invoiced == [billed]
    assert mrr_last == this_month
    assert instant <= loaded < instant.replace(hour=23, minute=59, second=59)
