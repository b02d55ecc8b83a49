"""The Grafana dashboard (deploy/grafana/meterline.json) only queries metrics the app really
exposes: every panel's expressions are compared with the names of a real /metrics scrape of
the served app (after one request of each kind, so labelled series exist too)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import yaml

from meterline.core.tenants import create_tenant, issue_api_key
from meterline.server import create_app
from tests.integration.observability.serving import exposed_names, serving

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "meterline.json"
METRIC = re.compile(r"\bmeterline_[a-z0-9_]+\b")
TOPICS = (  # what the dashboard must show, as metric names
    "meterline_ingest_events_accepted_total", "meterline_ingest_events_duplicate_total",
    "meterline_ingest_events_refused_total", "meterline_http_request_duration_seconds_bucket",
    "meterline_record_script_duration_seconds_bucket", "meterline_loader_lag_seconds",
    "meterline_stream_entries", "meterline_dead_letters", "meterline_alert_deliveries",
    "meterline_invoices",
)  # fmt: skip


def dashboard_exprs() -> dict[str, list[str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in panels}


def test_every_panel_queries_metrics_the_app_exposes(db, redis_client, test_services):
    create_tenant(db, "acme", "free")
    key = issue_api_key(db, "acme")
    app = create_app(db, redis_client, prefix=test_services.redis_prefix, admin_key=None)
    with serving(app) as base, httpx.Client(base_url=base) as http:
        auth = {"Authorization": f"Bearer {key}"}
        http.post("/v1/events", json={"meter": "api_calls", "value": 1}, headers=auth)
        http.post("/v1/events", json={"meter": "nope", "value": 1}, headers=auth)
        scraped = http.get("/metrics")
    assert scraped.status_code == 200
    names = exposed_names(scraped.text)

    exprs = dashboard_exprs()
    assert exprs and all(exprs.values()), "every panel has at least one query"
    used = {title: set(METRIC.findall(" ".join(e))) for title, e in exprs.items()}
    assert all(used.values()), {t: e for t, e in exprs.items() if not used[t]}
    unknown = {title: sorted(m - names) for title, m in used.items() if m - names}
    assert unknown == {}, f"panels query metrics /metrics does not expose: {unknown}"
    assert set(TOPICS) <= set().union(*used.values())


def test_the_prometheus_example_scrapes_metrics():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"]
