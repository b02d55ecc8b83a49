"""Quota-threshold alerts end to end: the sensor evaluated tick by tick while usage rises to
105 % of a limit, runs executed on a real Dagster instance, deliveries checked at a real SMTP
server (aiosmtpd), a real HTTP receiver that verifies the HMAC signature, and the Redis list."""

from __future__ import annotations

import asyncio
import email
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from sqlalchemy import text

SECRET = "whsec_dGVzdC13ZWJob29rLXNlY3JldC1mb3ItbWV0ZXJsaW5l"
ADMIN = "admin@meterline.test"


# -- real local receivers --------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[tuple[float, list[str], email.message.EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append((time.time(), list(envelope.rcpt_tos), msg))
        return "250 OK"

    def to(self, address: str) -> list:
        with self.lock:
            return [m for _, rcpts, m in self.messages if address in rcpts]


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, SmtpSink]]:
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", sink
    finally:
        controller.stop()
        asyncio.set_event_loop(asyncio.new_event_loop())


class WebhookReceiver:
    def __init__(self) -> None:
        self.accepted: list[tuple[float, dict, dict]] = []
        self.rejected_signatures = 0
        self.fail_next = 0  # answer HTTP 500 to this many (validly signed) requests
        self.lock = threading.Lock()


@pytest.fixture
def webhook() -> Iterator[tuple[str, WebhookReceiver]]:
    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError

    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:  # what a receiver does, off the shelf: the Standard Webhooks library
                Webhook(SECRET).verify(body, dict(self.headers))
                ok = True
            except WebhookVerificationError:
                ok = False
            with receiver.lock:
                if not ok:
                    receiver.rejected_signatures += 1
                    status = 401
                elif receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    status = 500
                else:
                    receiver.accepted.append((time.time(), dict(self.headers), json.loads(body)))
                    status = 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/meterline", receiver
    finally:
        server.shutdown()
        server.server_close()


# -- harness ---------------------------------------------------------------------------------
class Harness:
    """The sensor evaluated with build_sensor_context on a real instance; requested runs are
    launched like the daemon does: a run key already used by a run is skipped."""

    def __init__(self, instance, resources, engine):
        self.instance = instance
        self.resources = resources
        self.engine = engine
        self.cursor: str | None = None
        self.launched: list[str] = []
        self.results: list = []

    def tick(self) -> list[dg.RunRequest]:
        from orchestration.defs.alerts.sensors import quota_threshold_sensor

        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources=self.resources,
            sensor_name="quota_threshold_sensor",
        )
        result = quota_threshold_sensor(context)
        self.cursor = result.cursor
        return list(result.run_requests or [])

    def launch(self, requests: list[dg.RunRequest]) -> list:
        from orchestration.defs.alerts.jobs import quota_notification_job

        results = []
        for request in requests:
            existing = self.instance.get_runs(
                filters=dg.RunsFilter(tags={"dagster/run_key": request.run_key})
            )
            if existing:
                continue
            result = quota_notification_job.execute_in_process(
                run_config=request.run_config,
                instance=self.instance,
                resources=self.resources,
                tags={**request.tags, "dagster/run_key": request.run_key},
                raise_on_error=False,
            )
            self.launched.append(request.run_key)
            results.append(result)
        self.results.extend(results)
        return results

    def tick_and_run(self) -> list:
        return self.launch(self.tick())


def _resources(test_services, smtp_url: str, webhook_url: str):
    from orchestration.defs.alerts.resources import NotifierResource
    from orchestration.resources import PostgresResource, RedisResource

    return {
        "postgres": PostgresResource(url=test_services.database_url),
        "redis": RedisResource(url=test_services.redis_url, prefix=test_services.redis_prefix),
        "notifier": NotifierResource(
            smtp_url=smtp_url, webhook_url=webhook_url, webhook_secret=SECRET, admin_email=ADMIN
        ),
    }


_seq = iter(range(1, 10**9))


def add_usage(engine, tenant: str, meter: str, value, *, at: datetime | None = None) -> None:
    at = at or datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into raw.usage_events (tenant_id, event_id, meter, value, occurred_at, received_at) "
                "values (:t, :id, :m, :v, :at, :at)"
            ),
            {"t": tenant, "id": f"evt_{next(_seq)}", "m": meter, "v": value, "at": at},
        )


def alert_rows(engine, tenant: str):
    with engine.connect() as conn:
        return conn.execute(
            text(
                "select threshold, channel, notified, delivery_status, attempts, last_error "
                "from meterline.alerts where tenant_id = :t order by threshold, channel"
            ),
            {"t": tenant},
        ).all()


def redis_notifications(redis_client, prefix: str) -> list[dict]:
    return [json.loads(x) for x in redis_client.lrange(f"{prefix}:notifications", 0, -1)]


@pytest.fixture
def instance(test_services) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


# -- tests -----------------------------------------------------------------------------------
def test_usage_rising_to_105_percent_notifies_each_threshold_once_per_channel(
    db, redis_client, test_services, smtp_server, webhook, instance
):
    from meterline.core.tenants import create_tenant

    smtp_url, sink = smtp_server
    webhook_url, receiver = webhook
    create_tenant(db, "acme", "free", name="Acme Inc", email="ops@acme.test")
    create_tenant(db, "bigco", "payg", email="it@bigco.test")  # payg: no limits, never alerts
    h = Harness(instance, _resources(test_services, smtp_url, webhook_url), db)

    # free plan: api_calls limit 1,000 (hard). Steps in % of the limit, several ticks per step.
    latencies: dict[int, float] = {}
    steps = ["0", "40", "79.9", "80", "85", "90", "94", "95", "99.9", "100", "105"]
    total = Decimal(0)
    for pct in map(Decimal, steps):
        add = pct * 10 - total
        crossed_at = time.time()
        if add:
            add_usage(db, "acme", "api_calls", add)
            add_usage(db, "bigco", "api_calls", 250_000)
            total = pct * 10
        before = len(sink.messages)
        for _ in range(2):  # overlapping ticks see the same usage
            h.tick_and_run()
        if len(sink.messages) > before:
            latencies[int(pct)] = max(t for t, _, _ in sink.messages[before:]) - crossed_at

    # one run per threshold, keyed deterministically
    period = datetime.now(UTC).strftime("%Y-%m")
    assert h.launched == [f"quota:acme:api_calls:{t}:{period}" for t in (80, 90, 95, 100)]
    assert all(r.success for r in h.results)

    # tenant emails: one per threshold; admin: only at 100 %
    tenant_mail = sink.to("ops@acme.test")
    assert [m["X-Meterline-Alert"] for m in tenant_mail] == [
        f"quota-acme-api_calls-{period}-{t}" for t in (80, 90, 95, 100)
    ]
    admin_mail = sink.to(ADMIN)
    assert len(admin_mail) == 1 and "100 % alert" in admin_mail[0]["Subject"]
    assert not sink.to("it@bigco.test")
    body = tenant_mail[1].get_content()
    assert "acme" in body and "api_calls" in body and "900 of 1,000 calls" in body
    assert "90.00 %" in body and "Starter plan" in body and "50,000 calls" in body

    # webhook: 90, 95, 100 - each signed (the receiver rejects bad signatures)
    assert receiver.rejected_signatures == 0
    hooks = [payload for _, _, payload in receiver.accepted]
    assert [p["threshold"] for p in hooks] == [90, 95, 100]
    assert all(p["text"].startswith("[Meterline]") and p["tenant_id"] == "acme" for p in hooks)
    assert [hdr["webhook-id"] for _, hdr, _ in receiver.accepted] == [
        f"quota-acme-api_calls-{period}-{t}" for t in (90, 95, 100)
    ]

    # Redis list: every alert, newest first
    pushed = redis_notifications(redis_client, test_services.redis_prefix)
    assert [p["threshold"] for p in pushed] == [100, 95, 90, 80]

    # meterline.alerts: one row per threshold and routed channel, all sent once
    rows = alert_rows(db, "acme")
    assert [(r.threshold, r.channel) for r in rows] == [
        (80, "email"), (80, "redis"),
        (90, "email"), (90, "redis"), (90, "webhook"),
        (95, "email"), (95, "redis"), (95, "webhook"),
        (100, "admin_email"), (100, "email"), (100, "redis"), (100, "webhook"),
    ]  # fmt: skip
    assert {(r.delivery_status, r.attempts, r.notified) for r in rows} == {("sent", 1, True)}
    from alerts.store import list_alerts

    listed = list_alerts(db, period)
    assert len(listed) == 12 and {a.period for a in listed} == {period}
    assert all(a.delivered_at is not None for a in listed)

    # re-evaluating sends nothing more, even with a lost cursor (seeded from meterline.alerts)
    counts = (len(sink.messages), len(receiver.accepted), len(pushed))
    assert h.tick() == []
    h.cursor = None
    assert h.tick() == []
    add_usage(db, "acme", "api_calls", 100)
    assert h.tick() == []
    assert (len(sink.messages), len(receiver.accepted),
            redis_client.llen(f"{test_services.redis_prefix}:notifications")) == counts  # fmt: skip

    # crossing -> delivered, measured at the SMTP server (sensor evaluation + run)
    assert set(latencies) == {80, 90, 95, 100}
    print(
        "\nthreshold crossed -> email received (s):", {k: round(v, 3) for k, v in latencies.items()}
    )
    assert max(latencies.values()) < 30  # plus at most one 30 s sensor interval in production


def test_one_tick_crossing_several_thresholds_notifies_only_the_highest(
    db, redis_client, test_services, smtp_server, webhook, instance
):
    from meterline.core.tenants import create_tenant

    smtp_url, sink = smtp_server
    webhook_url, receiver = webhook
    create_tenant(db, "jumpy", "starter", email="dev@jumpy.test")  # api_calls limit 50,000
    h = Harness(instance, _resources(test_services, smtp_url, webhook_url), db)
    add_usage(db, "jumpy", "api_calls", 48_000)  # 96 %: crosses 80, 90 and 95 at once

    requests = h.tick()
    assert [r.run_key for r in requests] == [f"quota:jumpy:api_calls:95:{datetime.now(UTC):%Y-%m}"]
    config = requests[0].run_config["ops"]["notify_quota_threshold"]["config"]
    assert config["thresholds"] == [80, 90, 95]
    [result] = h.launch(requests)
    assert result.success

    rows = alert_rows(db, "jumpy")
    notified = {(r.threshold, r.channel): (r.notified, r.delivery_status) for r in rows}
    assert notified == {
        (80, "email"): (False, "skipped"), (80, "redis"): (False, "skipped"),
        (90, "email"): (False, "skipped"), (90, "redis"): (False, "skipped"),
        (90, "webhook"): (False, "skipped"),
        (95, "email"): (True, "sent"), (95, "redis"): (True, "sent"),
        (95, "webhook"): (True, "sent"),
    }  # fmt: skip
    assert len(sink.to("dev@jumpy.test")) == 1
    assert [p["threshold"] for _, _, p in receiver.accepted] == [95]
    assert [
        p["threshold"] for p in redis_notifications(redis_client, test_services.redis_prefix)
    ] == [95]
    assert h.tick() == []


def test_failed_webhook_is_retried_on_the_next_run_and_never_duplicated(
    db, redis_client, test_services, smtp_server, webhook, instance
):
    from meterline.core.tenants import create_tenant
    from orchestration.defs.alerts.jobs import quota_notification_job
    from orchestration.defs.alerts.sensors import admin_run_failure_sensor

    smtp_url, sink = smtp_server
    webhook_url, receiver = webhook
    create_tenant(db, "flaky", "free", email="ops@flaky.test")
    resources = _resources(test_services, smtp_url, webhook_url)
    h = Harness(instance, resources, db)
    add_usage(db, "flaky", "api_calls", 910)  # 91 %: one run for 90 (80 recorded)

    receiver.fail_next = 1  # the webhook answers HTTP 500 once
    [first] = h.tick_and_run()
    assert not first.success  # the run fails loudly, after recording what was delivered
    status = {
        (r.threshold, r.channel): (r.delivery_status, r.attempts)
        for r in alert_rows(db, "flaky")
        if r.notified
    }
    assert status == {
        (90, "email"): ("sent", 1), (90, "redis"): ("sent", 1), (90, "webhook"): ("failed", 1),
    }  # fmt: skip
    assert len(sink.to("ops@flaky.test")) == 1 and receiver.accepted == []

    # the admin hears about the failed run (email + webhook) through the run-failure sensor
    failure_event = first.get_run_failure_event()
    context = dg.build_run_status_sensor_context(
        sensor_name="admin_run_failure_sensor",
        dagster_event=failure_event,
        dagster_instance=instance,
        dagster_run=first.dagster_run,
        resources={"notifier": resources["notifier"]},
    ).for_run_failure()
    admin_run_failure_sensor(context)
    [admin_mail] = sink.to(ADMIN)
    assert "quota_notification_job" in admin_mail["Subject"]
    assert first.run_id in admin_mail.get_content() and "HTTP 500" in admin_mail.get_content()
    [(_, _, run_hook)] = receiver.accepted
    assert run_hook["type"] == "run.failure" and run_hook["run_id"] == first.run_id
    receiver.accepted.clear()

    # the next tick asks for a retry run (new run key per attempt); it sends only the webhook
    [retry] = h.tick()
    assert retry.run_key.startswith("quota-retry:flaky:api_calls:90:")
    [second] = h.launch([retry])
    assert second.success
    assert [p["threshold"] for _, _, p in receiver.accepted] == [90]
    assert len(sink.to("ops@flaky.test")) == 1  # the email is not sent again
    assert len(redis_notifications(redis_client, test_services.redis_prefix)) == 1
    status = {
        (r.threshold, r.channel): (r.delivery_status, r.attempts)
        for r in alert_rows(db, "flaky")
        if r.notified
    }
    assert status[(90, "webhook")] == ("sent", 2)

    # re-running the original run config (a Dagster run retry) delivers nothing twice
    again = quota_notification_job.execute_in_process(
        run_config=retry.run_config, instance=instance, resources=resources
    )
    assert again.success
    assert len(receiver.accepted) == 1 and len(sink.to("ops@flaky.test")) == 1
    assert h.tick() == []


def test_live_redis_counters_drive_the_sensor(db, redis_client, test_services):
    """With the metering engine's counters in Redis, usage comes from there, not Postgres."""
    from alerts.usage import current_usage
    from ingestion.recorder import UsageRecorder
    from meterline.core.tenants import create_tenant

    create_tenant(db, "live", "free", email="ops@live.test")
    create_tenant(db, "cold", "free", email="ops@cold.test")
    prefix = test_services.redis_prefix
    recorder = UsageRecorder(redis_client, db, prefix=prefix)
    now = datetime.now(UTC)
    stamp = now.isoformat()
    calls = [{"tenant_id": "live", "meter": "api_calls", "value": 1, "timestamp": stamp}] * 850
    users = [
        {"tenant_id": "live", "meter": "active_users", "value": 1, "timestamp": stamp,
         "dimensions": {"user_id": f"u{i}"}}
        for i in range(3)
    ]  # fmt: skip
    result = recorder.record([dict(e) for e in calls] + users)
    assert result.accepted == 853
    add_usage(db, "live", "api_calls", 5)  # Postgres lags or differs: Redis wins for "live"
    add_usage(db, "cold", "api_calls", 812)  # no Redis counters: Postgres fallback

    rows = {(r.tenant_id, r.meter): r for r in current_usage(redis_client, db, prefix=prefix)}
    assert rows[("live", "api_calls")].source == "redis"
    assert rows[("live", "api_calls")].quantity == 850
    assert rows[("live", "active_users")].quantity == 3  # unique users, at the limit of 3
    assert rows[("cold", "api_calls")].source == "postgres"
    assert rows[("cold", "api_calls")].quantity == 812
    assert rows[("cold", "api_calls")].percent == Decimal("81.20")

    # Redis unreachable: every tenant falls back to Postgres instead of failing the tick
    import redis as redis_lib

    down = redis_lib.Redis(host="127.0.0.1", port=_free_port(), socket_connect_timeout=0.5)
    rows = {(r.tenant_id, r.meter): r for r in current_usage(down, db, prefix=prefix)}
    assert rows[("live", "api_calls")].source == "postgres"
    assert rows[("live", "api_calls")].quantity == 5


def test_default_outbox_without_smtp_url(db, redis_client, test_services, instance, monkeypatch):
    """No SMTP_URL and no ALERT_WEBHOOK_URL: email becomes .eml files, webhook is skipped."""
    from meterline.core.services import running_service_urls
    from meterline.core.settings import Settings
    from meterline.core.tenants import create_tenant
    from orchestration.resources import resources_from_settings

    # The code location's own resources, built from the settings with every optional variable
    # unset (not even exported empty). METERLINE_HOME is the test run's home.
    optional = ("SMTP_URL", "ALERT_WEBHOOK_URL", "ALERT_WEBHOOK_SECRET", "METERLINE_ADMIN_EMAIL",
                "METERLINE_ALERT_SENDER")  # fmt: skip
    for name in (*optional, "METERLINE_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    create_tenant(db, "quiet", "free", email="ops@quiet.test")
    settings = Settings.from_env()
    location = resources_from_settings(settings, running_service_urls(settings))
    resources = {name: location[name] for name in ("postgres", "redis", "notifier")}
    h = Harness(instance, resources, db)
    add_usage(db, "quiet", "api_calls", 1000)
    [result] = h.tick_and_run()
    assert result.success
    outbox = test_services.home / "outbox"
    files = sorted(p.name for p in outbox.glob("quota-quiet-*.eml"))
    period = datetime.now(UTC).strftime("%Y-%m")
    assert files == [
        f"quota-quiet-api_calls-{period}-100-admin.eml",
        f"quota-quiet-api_calls-{period}-100.eml",
    ]
    msg = email.message_from_bytes((outbox / files[1]).read_bytes(), policy=policy.default)
    assert msg["To"] == "ops@quiet.test" and "refused (HTTP 402)" in msg.get_content()
    status = {r.channel: r.delivery_status for r in alert_rows(db, "quiet")}
    assert status == {"email": "sent", "admin_email": "sent", "redis": "sent", "webhook": "skipped"}
