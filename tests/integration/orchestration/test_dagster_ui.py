"""`meterline ui` (what `make ui` runs) serves the Dagster UI; its GraphQL API shows one
connected asset graph, the sensors and the schedules."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]

QUERY = """
{
  assetNodes { assetKey { path } dependencyKeys { path } groupName }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes { name sensors { name } schedules { name } jobs { name } }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dagster_ui(migrated_db):
    port = _free_port()
    log = open(Path(os.environ["METERLINE_HOME"]) / "dagster-ui.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "meterline.cli.app", "ui", "--port", str(port)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"dagster UI did not start:\n{log.read()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _graphql(url: str) -> dict:
    for _ in range(60):  # the code location may still be loading
        response = httpx.post(f"{url}/graphql", json={"query": QUERY}, timeout=60)
        data = response.json()["data"]
        if data["assetNodes"]:
            return data
        time.sleep(1)
    raise AssertionError("no asset nodes in the UI")


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def test_ui_shows_connected_lineage_sensors_and_schedules(dagster_ui):
    data = _graphql(dagster_ui)
    downstream: dict[str, set[str]] = {}
    for node in data["assetNodes"]:
        key = "/".join(node["assetKey"]["path"])
        for dep in node["dependencyKeys"]:
            downstream.setdefault("/".join(dep["path"]), set()).add(key)
    from_raw = _reachable(downstream, "raw/usage_events")
    for target in (
        "analytics/fct_usage_daily", "analytics/fct_usage_monthly", "analytics/fct_invoice_lines",
        "billing/stripe_invoices", "billing/invoice_reconciliation",
    ):  # fmt: skip
        assert target in from_raw, f"{target} not downstream of raw/usage_events"
    from_tenants = _reachable(downstream, "meterline/tenants")
    assert "raw/usage_events" in from_tenants
    [repo] = data["repositoriesOrError"]["nodes"]
    schedules = {s["name"] for s in repo["schedules"]}
    assert {"ingest_every_minute", "dbt_every_hour", "monthly_billing_schedule"} <= schedules
    sensors = {s["name"] for s in repo["sensors"]}
    assert {"quota_threshold_sensor", "admin_run_failure_sensor"} <= sensors
    jobs = {j["name"] for j in repo["jobs"]}
    assert {
        "meterline_pipeline",
        "reprocess_usage_rollups",
        "monthly_billing",
        "quota_notification_job",
    } <= jobs
