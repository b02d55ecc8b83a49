"""With PROMETHEUS_MULTIPROC_DIR, /metrics sums every server process: two worker processes
count events, a third scrapes (as any worker answering /metrics would) and sees the sum."""

from __future__ import annotations

import os
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

WORKER = """
from ingestion import metrics
metrics.EVENTS_ACCEPTED.inc({n})
metrics.count_refused_request(metrics.AUTH)
metrics.RECORD_SCRIPT_SECONDS.observe(0.002)
"""
SCRAPER = """
import sys
from pathlib import Path
from meterline.observability.metrics_endpoint import scrape
sys.stdout.write(scrape(None, Path({path!r})).decode())
"""


def run(code: str, directory) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_metrics_of_every_worker_are_summed(tmp_path):
    run(WORKER.format(n=3), tmp_path)
    run(WORKER.format(n=4), tmp_path)
    text = run(SCRAPER.format(path=str(tmp_path)), tmp_path)
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert values[("meterline_ingest_events_accepted_total", ())] == 7
    assert values[("meterline_ingest_requests_refused_total", (("reason", "auth"),))] == 2
    assert values[("meterline_record_script_duration_seconds_count", ())] == 2
