"""`meterline bench --json` runs end to end on small sizes and prints every measure.

This checks that the benchmark works and reports numbers; it asserts no timing (the targets
are judged from a full-size run on the reference machine, see README "Performance")."""

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[3]
MEASURES = (
    "sdk_events_per_s", "http_events_per_s", "quota_check_p50_ms", "quota_check_p99_ms",
    "loader_rows_per_s", "full_build_seconds", "incremental_hourly_seconds",
)  # fmt: skip


def test_bench_prints_every_measure_and_cleans_up(engine, redis_client, test_services):
    result = subprocess.run(
        [sys.executable, "-m", "meterline.cli.app", "bench", "--json",
         "--events", "5000", "--transform-events", "20000"],
        capture_output=True, text=True, cwd=ROOT, env=dict(os.environ), timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = json.loads(result.stdout[result.stdout.index("{") :])
    for measure in MEASURES:
        assert isinstance(numbers[measure], int | float) and numbers[measure] > 0, measure
    assert numbers["http_accepted"] == numbers["http_events"]
    # The scratch database and key prefix are gone.
    admin = make_url(test_services.database_url).set(database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False)) as conn:
        leftover = conn.execute(
            "select datname from pg_database where datname like %s",
            (make_url(test_services.database_url).database + "_bench%",),
        ).fetchall()
    assert leftover == []
    assert (
        list(redis_client.scan_iter(match=f"{test_services.redis_prefix}_bench_*", count=1000))
        == []
    )
