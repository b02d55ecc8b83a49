"""Collection terms from the catalog, Stripe webhooks in, invoice events out - end to end.

Real parts: Postgres, the Stripe emulator over HTTP (changed through the official SDK), the
Meterline app on uvicorn in a thread receiving the emulator's signed webhooks, the alert
webhook receiver verifying Standard Webhooks signatures. ``analytics.fct_invoice_lines`` is
written from the Python rating engine (``Mart``, as in test_stripe_invoicing_and_reconciliation).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import requests
import stripe
import yaml
from sqlalchemy import text

from billing.catalog import DEFAULT_CATALOG, parse_catalog
from billing.catalog_store import save_catalog
from billing.invoicing import create_invoices
from billing.stripe_emulator.webhooks import signature_header
from meterline.core.api_keys import issue_key
from meterline.core.installation import install_id
from meterline.core.tenants import create_tenant
from tests.browser.dashboard_world import free_port
from tests.integration.billing.conftest import admin
from tests.integration.billing.test_stripe_invoicing_and_reconciliation import (
    FAST,
    SEP,
    Mart,
    cutoff,
)

STRIPE_SECRET = "whsec_stripe_endpoint_secret_for_tests"
ALERT_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
USAGE = {"api_calls": 600_000}


@pytest.fixture
def mart(db):
    return Mart(db)


class AlertReceiver:
    """The customer's alert webhook endpoint: keeps what verifies (Standard Webhooks)."""

    def __init__(self) -> None:
        from standardwebhooks import Webhook

        self.accepted: list[tuple[dict, dict]] = []
        accepted = self.accepted

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                Webhook(ALERT_SECRET).verify(body, dict(self.headers))  # raises when forged
                accepted.append((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


@contextmanager
def serve_app(engine, redis_client, prefix: str, **kwargs) -> Iterator[str]:
    import uvicorn

    from meterline.server import create_app

    app = create_app(engine, redis_client, prefix=prefix, admin_key=None, **kwargs)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start within 20 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def load_collection_catalog(engine) -> None:
    """pro: charged automatically, auto-advancing; starter: sent, due in 14 days."""
    raw = yaml.safe_load(DEFAULT_CATALOG.read_text())
    raw["plans"]["pro"].update(collection_method="charge_automatically", auto_advance=True)
    raw["plans"]["starter"].update(days_until_due=14)
    save_catalog(engine, parse_catalog(raw))


def statuses(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("select tenant_id, status from meterline.invoices")).all())


def wait_for(engine, wanted: dict[str, str], seconds: float = 10.0) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while (found := statuses(engine)) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def post_event(base_url: str, event: dict, secret: str = STRIPE_SECRET) -> httpx.Response:
    body = json.dumps(event)
    return httpx.post(
        f"{base_url}/v1/stripe/webhook",
        content=body,
        headers={"Stripe-Signature": signature_header(body, secret), "Content-Type": "application/json"},
    )  # fmt: skip


@pytest.fixture
def invoiced(db, mart, emulator, client, redis_client, test_services):
    """Three tenants invoiced for September through the emulator, whose webhooks reach the
    running app; the app's alert webhook goes to a verifying receiver."""
    from alerts.notifier import Notifier

    load_collection_catalog(db)
    for tenant_id, plan in (("paid-co", "pro"), ("failed-co", "pro"), ("void-co", "starter")):
        create_tenant(db, tenant_id, plan, at=datetime(2026, 8, 1, tzinfo=UTC))
        mart.put(tenant_id, SEP, plan, USAGE)
    receiver = AlertReceiver()
    notifier = Notifier.configure(
        home=test_services.home,
        webhook_url=receiver.url,
        webhook_secret=ALERT_SECRET,
    )
    with serve_app(
        db, redis_client, test_services.redis_prefix,
        stripe_webhook_secret=STRIPE_SECRET, notifier=notifier,
    ) as base_url:  # fmt: skip
        admin(emulator, "POST", "config",
              {"webhook_url": f"{base_url}/v1/stripe/webhook", "webhook_secret": STRIPE_SECRET})  # fmt: skip
        result = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
        ids = {i.tenant_id: i.stripe_invoice_id for i in result.invoices}
        yield base_url, ids, receiver
        receiver.server.shutdown()


def test_invoices_carry_the_collection_terms_of_the_plan_version(invoiced, client):
    _, ids, _ = invoiced
    charged = client.v1.invoices.retrieve(ids["paid-co"])
    assert (charged.collection_method, charged.auto_advance, charged.due_date) == (
        "charge_automatically", True, None,
    )  # fmt: skip
    sent = client.v1.invoices.retrieve(ids["void-co"])
    assert (sent.collection_method, sent.auto_advance) == ("send_invoice", False)
    assert sent.due_date == sent.status_transitions.finalized_at + 14 * 86400


def test_paid_failed_and_voided_invoices_reach_meterline_through_webhooks(
    invoiced, db, client, emulator
):
    """The acceptance test of issue 14 items 3-4."""
    base_url, ids, receiver = invoiced
    assert wait_for(db, {"paid-co": "open", "failed-co": "open", "void-co": "open"}) == {
        "paid-co": "open", "failed-co": "open", "void-co": "open",
    }  # fmt: skip
    client.v1.invoices.pay(ids["paid-co"])
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(
            ids["failed-co"], params={"payment_method": "pm_card_chargeCustomerFail"}
        )
    client.v1.invoices.void_invoice(ids["void-co"])
    started = time.monotonic()
    wanted = {"paid-co": "paid", "failed-co": "payment_failed", "void-co": "void"}
    assert wait_for(db, wanted) == wanted
    assert time.monotonic() - started < 10

    # the portal shows each tenant its invoice's status
    for tenant_id, status in wanted.items():
        key = issue_key(db, tenant_id).key
        page = httpx.get(
            f"{base_url}/v1/dashboard/invoices", headers={"Authorization": f"Bearer {key}"}
        ).json()
        assert [(i["stripe_invoice_id"], i["status"]) for i in page["items"]] == [
            (ids[tenant_id], status)
        ]
        assert (page["items"][0]["paid_at"] is not None) == (status == "paid")
        assert page["items"][0]["past_due"] is False
    with db.connect() as conn:
        paid_at = conn.execute(
            text("select paid_at from meterline.invoices where tenant_id = 'paid-co'")
        ).scalar()
    assert paid_at is not None

    # replaying Stripe's own event changes nothing: same id, already processed
    paid_id = client.v1.events.list(params={"type": "invoice.paid"}).data[0].id
    paid_event = requests.get(
        f"{emulator.url}/v1/events/{paid_id}",
        headers={"Authorization": "Bearer sk_test_x"},
        timeout=5,
    ).json()
    replay = post_event(base_url, paid_event)
    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    # a late finalized event (a new id, out of order) does not move paid back to open
    late = {**paid_event, "id": "evt_late_finalized", "type": "invoice.finalized"}
    late["data"]["object"]["status"] = "open"
    assert post_event(base_url, late).json()["outcome"] == "unchanged"
    # an event of another installation's invoice is acknowledged and ignored
    foreign = json.loads(json.dumps({**paid_event, "id": "evt_foreign"}))
    foreign["data"]["object"]["metadata"]["meterline_install"] = "someone-else"
    foreign["type"] = "invoice.voided"
    assert post_event(base_url, foreign).json()["outcome"] == "ignored"
    # a forged signature is refused without saying why, and changes nothing
    forged = {**paid_event, "id": "evt_forged", "type": "invoice.voided"}
    refused = post_event(base_url, forged, secret="whsec_not_the_endpoint_secret")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_signature"
    assert STRIPE_SECRET not in refused.text and "whsec_not" not in refused.text
    unsigned = httpx.post(f"{base_url}/v1/stripe/webhook", content=json.dumps(forged))
    assert unsigned.status_code == 400
    assert statuses(db) == wanted
    with db.connect() as conn:
        processed = (
            conn.execute(
                text(
                    "select event_id from meterline.stripe_webhook_events where event_id like 'evt_f%'"
                )
            )
            .scalars()
            .all()
        )
    assert processed == ["evt_foreign"]  # the forged one was never processed

    # the tenant's own endpoint got each invoice event once, signed (Standard Webhooks)
    deadline = time.monotonic() + 10
    while len(receiver.accepted) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    got = sorted((body["type"], body["tenant_id"]) for _, body in receiver.accepted)
    assert got == [
        ("invoice.finalized", "failed-co"), ("invoice.finalized", "paid-co"),
        ("invoice.finalized", "void-co"), ("invoice.paid", "paid-co"),
        ("invoice.payment_failed", "failed-co"),
    ]  # fmt: skip
    paid = next(body for _, body in receiver.accepted if body["type"] == "invoice.paid")
    assert paid["stripe_invoice_id"] == ids["paid-co"] and paid["amount_paid"] > 0
    # the receiver has each body before the sender records its answer: wait for the record
    deadline = time.monotonic() + 10
    while (delivery := _deliveries(db)) != [("sent", 5)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert delivery == [("sent", 5)]


def _deliveries(db) -> list[tuple]:
    with db.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text("select delivery_status, count(*) from meterline.invoice_events group by 1")
            )
        ]


def test_without_a_secret_the_endpoint_answers_503(db, redis_client, test_services):
    with serve_app(db, redis_client, test_services.redis_prefix) as base_url:
        answer = httpx.post(f"{base_url}/v1/stripe/webhook", content=b"{}")
    assert answer.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET" in answer.json()["error"]["message"]


def test_events_of_unrecorded_invoices_change_nothing(db, redis_client, test_services):
    install = install_id(db)
    event = {
        "id": "evt_unknown", "object": "event", "type": "invoice.paid", "created": 1,
        "data": {"object": {"id": "in_unknown", "object": "invoice",
                            "metadata": {"meterline_install": install, "meterline_tenant_id": "x"}}},
    }  # fmt: skip
    with serve_app(
        db, redis_client, test_services.redis_prefix, stripe_webhook_secret=STRIPE_SECRET
    ) as base_url:
        first = post_event(base_url, event)
        again = post_event(base_url, event)
        huge = httpx.post(f"{base_url}/v1/stripe/webhook", content=b"x" * (1024 * 1024 + 1))
        not_an_event = post_event(base_url, {"id": "evt_bad", "type": 5, "data": []})
        odd_invoice = post_event(
            base_url,
            {"id": "evt_odd", "object": "event", "type": "invoice.paid", "created": 2,
             "data": {"object": {"object": "invoice", "id": 7, "metadata": ["x"]}}},
        )  # fmt: skip
    assert first.json()["outcome"] == "ignored" and again.json()["outcome"] == "duplicate"
    assert huge.status_code == 413
    assert not_an_event.status_code == 400  # signed, but not an event: refused, not a 500
    assert (odd_invoice.status_code, odd_invoice.json()["outcome"]) == (200, "ignored")


def test_reconciliation_reports_past_due_and_what_was_paid(invoiced, db, client, tmp_path):
    from datetime import timedelta

    from billing.reconciliation import reconcile

    _, ids, _ = invoiced
    client.v1.invoices.pay(ids["paid-co"])
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(
            ids["failed-co"], params={"payment_method": "pm_card_chargeCustomerFail"}
        )
    sent = client.v1.invoices.retrieve(ids["void-co"])  # send_invoice, due in 14 days
    after_due = datetime.fromtimestamp(sent.due_date, UTC) + timedelta(days=1)
    result = reconcile(db, client, SEP, reports_dir=tmp_path, retry=FAST, now=after_due)
    rows = {r.tenant_id: r for r in result.rows}
    assert rows["void-co"].category == "past_due"
    assert rows["void-co"].explanation.startswith("open and past due since ")
    assert rows["paid-co"].category == "matched" and rows["paid-co"].explanation.startswith("paid ")
    assert rows["paid-co"].amount_paid == rows["paid-co"].stripe_amount > 0
    # charged automatically, no due date: a failed payment is not past due by a date
    assert rows["failed-co"].category == "matched" and rows["failed-co"].amount_paid == 0
    paid = rows["paid-co"].amount_paid
    assert result.totals()["USD"]["paid"] == paid
    assert "past_due" in result.markdown() and "| paid |" in result.markdown()
    with db.connect() as conn:
        stored = dict(
            conn.execute(
                text("select tenant_id, amount_paid from meterline.invoice_reconciliation")
            ).all()
        )
    assert stored == {"paid-co": paid, "failed-co": 0, "void-co": 0}
    csv_text = result.csv_path.read_text()
    assert csv_text.splitlines()[0].endswith(",paid")


def test_an_invoice_run_sends_invoice_finalized_once_without_stripe_webhooks(
    db, mart, client, test_services
):
    from alerts.invoice_events import (
        deliver_invoice_events,
        invoice_events,
        record_finalized_invoices,
    )
    from alerts.notifier import Notifier

    load_collection_catalog(db)
    for tenant_id, plan in (("one-co", "starter"), ("two-co", "pro")):
        create_tenant(db, tenant_id, plan, at=datetime(2026, 8, 1, tzinfo=UTC))
        mart.put(tenant_id, SEP, plan, USAGE)
    receiver = AlertReceiver()
    notifier = Notifier.configure(
        home=test_services.home, webhook_url=receiver.url, webhook_secret=ALERT_SECRET
    )
    try:
        result = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
        assert record_finalized_invoices(db, result) == 2
        assert deliver_invoice_events(db, notifier).sent == [
            f"invoice.finalized:{i.stripe_invoice_id}" for i in result.invoices
        ]
        again = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
        assert record_finalized_invoices(db, again) == 0  # unchanged: nothing new
        assert deliver_invoice_events(db, notifier).sent == []
    finally:
        receiver.server.shutdown()
    assert sorted(body["tenant_id"] for _, body in receiver.accepted) == ["one-co", "two-co"]
    assert {r.delivery_status for r in invoice_events(db)} == {"sent"}


def test_late_usage_of_a_month_whose_payment_failed_is_still_billed(db, mart, client):
    """A failed payment leaves the invoice finalized: late usage goes on the next invoice."""
    from billing.stripe_webhooks import apply_event
    from tests.integration.billing.test_stripe_invoicing_and_reconciliation import AUG

    create_tenant(db, "acme", "payg", at=datetime(2026, 1, 1, tzinfo=UTC))
    mart.put("acme", AUG, "payg", {"api_calls": 10_000_000})
    [aug] = create_invoices(db, client, AUG, usage_cutoff=cutoff(AUG), retry=FAST).invoices
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(
            aug.stripe_invoice_id, params={"payment_method": "pm_card_chargeCustomerFail"}
        )
    failed = client.v1.events.list(params={"type": "invoice.payment_failed"}).data[0]
    event = json.loads(str(failed))
    assert apply_event(db, event, install_id(db)).outcome == "applied"
    with db.begin() as conn:
        conn.execute(
            text(
                """
                insert into raw.usage_events (tenant_id, event_id, meter, value, occurred_at, received_at, loaded_at)
                values ('acme', 'late-1', 'api_calls', 1000000, '2026-08-20T10:00:00Z', now(), now())
                """
            )
        )
    mart.put("acme", AUG, "payg", {"api_calls": 11_000_000})
    mart.put("acme", SEP, "payg", {"api_calls": 20_000})
    [sep] = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST).invoices
    assert "adjustment:2026-08:usage:api_calls" in [line.line_key for line in sep.lines]
    with db.connect() as conn:
        august = conn.execute(
            text("select status from meterline.invoices where period = '2026-08-01'")
        ).scalar()
    assert august == "payment_failed"


def test_a_failed_invoice_event_is_retried_by_the_sensor_and_its_job(
    db, mart, client, test_services
):
    import dagster as dg

    from alerts.invoice_events import deliver_invoice_events, record_finalized_invoices
    from alerts.notifier import Notifier
    from orchestration.defs.alerts.invoice_events import invoice_events_job, pending_run_key
    from orchestration.defs.alerts.resources import NotifierResource
    from orchestration.resources import PostgresResource

    create_tenant(db, "acme", "starter", at=datetime(2026, 8, 1, tzinfo=UTC))
    mart.put("acme", SEP, "starter", USAGE)
    result = create_invoices(db, client, SEP, usage_cutoff=cutoff(SEP), retry=FAST)
    record_finalized_invoices(db, result)
    assert pending_run_key(db) is not None
    unreachable = Notifier.configure(
        home=test_services.home,
        webhook_url=f"http://127.0.0.1:{free_port()}/down",
        webhook_secret=ALERT_SECRET,
    )
    assert len(deliver_invoice_events(db, unreachable).failed) == 1
    key = pending_run_key(db)
    assert key is not None and key.endswith(":1")  # one attempt made: a new run key
    receiver = AlertReceiver()
    try:
        with dg.instance_for_test() as instance:
            run = invoice_events_job.execute_in_process(
                instance=instance,
                resources={
                    "postgres": PostgresResource(url=test_services.database_url),
                    "notifier": NotifierResource(
                        home=str(test_services.home),
                        webhook_url=receiver.url,
                        webhook_secret=ALERT_SECRET,
                    ),
                },
            )
        assert run.success
    finally:
        receiver.server.shutdown()
    assert [body["type"] for _, body in receiver.accepted] == ["invoice.finalized"]
    assert pending_run_key(db) is None


def test_collection_terms_are_stored_per_plan_version(db):
    from billing.catalog_store import read_catalog, read_plan_versions
    from billing.collection import Collection

    raw = yaml.safe_load(DEFAULT_CATALOG.read_text())
    raw["plans"]["pro"].update(collection_method="charge_automatically", auto_advance=True)
    loaded = save_catalog(db, parse_catalog(raw))
    assert loaded.new_versions == {"pro": 2}
    assert [str(c) for c in loaded.changes] == [
        "pro: collection_method 'send_invoice' -> 'charge_automatically'",
        "pro: days_until_due 30 -> -",
        "pro: auto_advance false -> true",
    ]
    assert read_catalog(db).plans["pro"].collection == Collection(
        "charge_automatically", None, True
    )
    versions = read_plan_versions(db)
    assert versions[("pro", 1)].collection == Collection()  # the old version keeps its terms
    assert save_catalog(db, parse_catalog(raw)).new_versions == {}  # same file: nothing new
