"""Acceptance of /metrics, request ids and traces through a real stack: the API served over
HTTP by uvicorn (as `meterline serve` configures it), real Redis and Postgres, the loader, a
real alert delivery to a receiver that answers 500, and an invoice run against the Stripe
emulator through the official SDK. The scrape is compared with what happened, number by
number; counters are process-wide, so they are compared as the difference of two scrapes."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from alerts.delivery import deliver_alerts
from alerts.notifier import Notifier
from alerts.store import AlertRequest, record_alerts
from billing.invoicing import create_invoices
from billing.stripe_client import RetryPolicy, make_stripe_client
from ingestion.dead_letters import list_dead_letters
from ingestion.loader import load_stream
from meterline.core import clock
from meterline.core.telemetry.tracing import configure_tracing
from meterline.core.tenants import create_tenant, issue_api_key
from meterline.server import create_app
from tests.integration.billing.test_stripe_invoicing_and_reconciliation import Mart
from tests.integration.observability.serving import failing_receiver, samples, serving

SEP = date(2026, 9, 1)
POISON_RID = "req-poison-0001"


@pytest.fixture(scope="module")
def spans():
    exporter = InMemorySpanExporter()
    configure_tracing(exporter=exporter)
    return exporter


@pytest.fixture
def stack(db, redis_client, test_services, spans):
    create_tenant(db, "acme", "free", email="ops@acme.test", at=date(2026, 1, 1))
    key = issue_api_key(db, "acme")
    app = create_app(db, redis_client, prefix=test_services.redis_prefix, admin_key=None)
    spans.clear()
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        yield http, key


@pytest.fixture
def poison_constraint(db):
    """A schema change the loader's rows do not satisfy: event id 'poison' is refused by
    Postgres, so that row ends as a dead letter (as after a real migration mistake)."""
    with db.begin() as conn:
        conn.execute(
            text(
                "alter table raw.usage_events add constraint obs_no_poison "
                "check (event_id <> 'poison')"
            )
        )
    yield
    with db.begin() as conn:
        conn.execute(text("alter table raw.usage_events drop constraint if exists obs_no_poison"))


def scrape(http) -> tuple[str, dict]:
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text, samples(response.text)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def value(after: dict, name: str, **labels) -> float:
    return after[(name, tuple(sorted(labels.items())))]


def post(http, key, events, rid: str | None = None):
    headers = {"Authorization": f"Bearer {key}"}
    if rid:
        headers["X-Request-Id"] = rid
    return http.post("/v1/events", json=events, headers=headers)


def ev(event_id: str, value: float = 1) -> dict:
    return {"id": event_id, "meter": "api_calls", "value": value}


def test_metrics_count_what_happened(
    stack, db, redis_client, test_services, poison_constraint, spans, tmp_path, caplog
):
    http, key = stack
    caplog.set_level(logging.INFO)
    _, before = scrape(http)

    # the workload: 7 accepted in 3 batches, 1 over quota, 1 duplicate, 2 invalid, 1 bad key
    assert post(http, key, [ev(f"a{i}") for i in range(5)], "req-batch-0001").status_code == 200
    assert post(http, key, ev("a5")).status_code == 200
    assert post(http, key, ev("a6")).status_code == 200
    over = post(http, key, ev("big", 5000))
    assert over.status_code == 402 and over.json()["rejected"] == 1
    dup = post(http, key, ev("a0"))
    assert dup.status_code == 200 and dup.json()["duplicates"] == 1
    invalid = post(http, key, [ev("ok1"), {"id": "bad", "meter": "nope", "value": 1}])
    assert invalid.status_code == 422
    assert post(http, "ml_not_a_key", ev("x")).status_code == 401
    # ... and one accepted event Postgres will refuse when it is loaded
    poison = post(http, key, ev("poison"), POISON_RID)
    assert poison.status_code == 200 and poison.headers["X-Request-Id"] == POISON_RID

    time.sleep(1.2)  # the oldest unloaded entry is now over a second old
    _, waiting = scrape(http)
    assert value(waiting, "meterline_stream_entries") == 4  # one entry per accepted batch
    assert value(waiting, "meterline_streams") == 1
    assert value(waiting, "meterline_loader_lag_seconds") >= 1.0
    assert value(waiting, "meterline_metrics_source_up", source="redis") == 1

    stats = load_stream(redis_client, db, prefix=test_services.redis_prefix)
    assert (stats.rows_loaded, stats.dead_lettered) == (7, 1)

    # one alert whose webhook delivery fails (a real receiver answering 500)
    period = f"{clock.now():%Y-%m}"
    record_alerts(db, AlertRequest("acme", "api_calls", period, (90,), Decimal(910), Decimal(1000)))
    with failing_receiver() as (url, received):
        notifier = Notifier.configure(
            home=tmp_path, webhook_url=url, webhook_secret="whsec-test-secret-0123456789",
            redis=redis_client, redis_prefix=test_services.redis_prefix,
        )  # fmt: skip
        report = deliver_alerts(db, notifier, tenant_id="acme", meter="api_calls", period=period)
    assert received and report.count("failed") == 1 and report.count("sent") == 2

    # one invoice run against the Stripe emulator
    Mart(db).put("acme", SEP, "starter", {"api_calls": Decimal(100)})
    stripe = make_stripe_client(
        "sk_test_meterline_tests", test_services.stripe_api_base, timeout=10
    )
    cutoff = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(hours=72)
    run = create_invoices(db, stripe, SEP, usage_cutoff=cutoff, retry=RetryPolicy(3, 0.01, 0.05))
    assert [i.status for i in run.invoices] == ["open"]

    exposition, after = scrape(http)
    assert delta(before, after, "meterline_ingest_events_accepted_total") == 8  # 7 + poison
    assert delta(before, after, "meterline_ingest_events_duplicate_total") == 1
    assert delta(before, after, "meterline_ingest_events_refused_total", reason="quota") == 1
    assert delta(before, after, "meterline_ingest_events_refused_total", reason="validation") == 2
    assert delta(before, after, "meterline_ingest_requests_refused_total", reason="auth") == 1
    assert delta(before, after, "meterline_ingest_requests_refused_total", reason="quota") == 1
    assert delta(before, after, "meterline_ingest_requests_refused_total", reason="validation") == 1
    # one Lua round trip per recorded request (3 + quota + duplicate + poison), plus the
    # first one's second run after it found no plan cached for the tenant
    assert delta(before, after, "meterline_record_script_duration_seconds_count") == 7
    assert delta(before, after, "meterline_record_script_duration_seconds_sum") > 0
    http_200 = {"method": "POST", "route": "/v1/events", "status": "200"}
    assert delta(before, after, "meterline_http_request_duration_seconds_count", **http_200) == 5
    assert delta(before, after, "meterline_http_request_duration_seconds_count",
                 method="POST", route="/v1/events", status="401") == 1  # fmt: skip
    assert value(after, "meterline_stream_entries") == 0
    assert value(after, "meterline_loader_lag_seconds") == 0
    assert value(after, "meterline_dead_letters") == 1
    assert value(after, "meterline_alert_deliveries", status="failed") == 1
    assert value(after, "meterline_alert_deliveries", status="sent") == 2
    assert value(after, "meterline_invoices", status="open") == 1
    assert value(after, "meterline_invoices", status="pending") == 0
    assert value(after, "meterline_metrics_source_up", source="postgres") == 1
    # no tenant, key or raw path in any label
    assert "acme" not in exposition and key not in exposition and "ml_not_a_key" not in exposition

    # the request id followed the poisoned batch into the stream, the loader and the letter
    [letter] = list_dead_letters(db)
    assert letter.event_id == "poison" and f"[request_id={POISON_RID}]" in letter.reason
    loader_lines = [r.msg for r in caplog.records if r.name == "meterline.loader"]
    assert any(POISON_RID in line.get("request_ids", []) for line in loader_lines), loader_lines
    request_lines = [r.msg for r in caplog.records if r.name == "meterline.api"]
    poisoned = [line for line in request_lines if line.get("request_id") == POISON_RID]
    assert len(poisoned) == 1, request_lines  # one line per request
    assert poisoned[0]["route"] == "/v1/events" and poisoned[0]["tenant_id"] == "acme"
    assert poisoned[0]["status"] == 200 and poisoned[0]["duration_ms"] > 0
    assert not [r for r in caplog.records if r.name == "uvicorn.access"]  # no second line


def test_traces_link_the_loader_batch_to_the_request(stack, db, redis_client, test_services, spans):
    http, key = stack
    parent_trace = "0af7651916cd43dd8448eb211c80319c"
    traceparent = f"00-{parent_trace}-b7ad6b7169203331-01"
    response = http.post(
        "/v1/events",
        json=ev("t1"),
        headers={"Authorization": f"Bearer {key}", "X-Request-Id": "req-traced-0001",
                 "traceparent": traceparent},
    )  # fmt: skip
    assert response.status_code == 200
    load_stream(redis_client, db, prefix=test_services.redis_prefix)

    finished = spans.get_finished_spans()
    [server] = [
        s for s in finished if s.attributes.get("meterline.request_id") == "req-traced-0001"
    ]
    assert server.name == "POST /v1/events" and server.attributes["http.route"] == "/v1/events"
    assert server.attributes["http.response.status_code"] == 200
    assert f"{server.context.trace_id:032x}" == parent_trace  # the caller's trace continues
    scripts = [s for s in finished if s.name == "redis record script"]
    assert scripts and {s.context.trace_id for s in scripts} == {server.context.trace_id}
    [batch] = [s for s in finished if s.name == "loader batch"]
    assert [link.context.trace_id for link in batch.links] == [server.context.trace_id]
    assert batch.context.trace_id != server.context.trace_id  # its own trace, linked
    assert batch.attributes["meterline.rows_inserted"] == 1


def test_request_id_is_echoed_when_well_formed_and_replaced_otherwise(stack):
    http, _ = stack
    assert (
        http.get("/healthz", headers={"X-Request-Id": "abc-12345678"}).headers["X-Request-Id"]
        == "abc-12345678"
    )
    for bad in ("short", "has space 123456", "Bearer ml_secret_key_value;drop", "x" * 200):
        echoed = http.get("/healthz", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
        assert echoed != bad and len(echoed) == 32 and echoed.isalnum()
    generated = http.get("/healthz").headers["X-Request-Id"]
    assert len(generated) == 32


def test_metrics_can_be_switched_off(db, redis_client, test_services):
    app = create_app(
        db, redis_client, prefix=test_services.redis_prefix, admin_key=None, metrics_enabled=False
    )
    with serving(app) as base, httpx.Client(base_url=base) as http:
        assert http.get("/metrics").status_code == 404
        assert http.get("/healthz").status_code == 200


def test_an_unhandled_error_is_a_json_500_with_its_request_id_and_traceback(
    db, redis_client, test_services, caplog
):
    app = create_app(db, redis_client, prefix=test_services.redis_prefix, admin_key=None)

    @app.get("/v1/boom/{item}")
    async def boom(item: str):
        raise RuntimeError(f"broken for {item}")

    caplog.set_level(logging.INFO)
    with serving(app) as base, httpx.Client(base_url=base) as http:
        _, before = scrape(http)
        response = http.get("/v1/boom/42", headers={"X-Request-Id": "req-boom-0001"})
        _, after = scrape(http)
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal"
    assert response.headers["X-Request-Id"] == "req-boom-0001"
    assert "broken" not in response.text  # the cause is in the log, not the answer
    labels = {"method": "GET", "route": "/v1/boom/{item}", "status": "500"}
    assert delta(before, after, "meterline_http_request_duration_seconds_count", **labels) == 1
    lines = [r.msg for r in caplog.records if r.name == "meterline.api"]
    [error] = [line for line in lines if line["event"] == "unhandled error"]
    assert (
        error["request_id"] == "req-boom-0001"
        and "RuntimeError: broken for 42" in error["exception"]
    )
    [request] = [
        line
        for line in lines
        if line.get("request_id") == "req-boom-0001" and line["event"] == "request"
    ]
    assert request["status"] == 500 and request["route"] == "/v1/boom/{item}"
