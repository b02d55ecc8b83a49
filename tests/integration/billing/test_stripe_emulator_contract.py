"""The emulator keeps Stripe's API contract on every call Meterline makes.

Source of truth: the installed ``stripe`` SDK (16.1.0 in uv.lock), whose typed resource
classes (``stripe.Invoice`` ...) and request ``params`` TypedDicts are generated from Stripe's
OpenAPI spec. The spec file itself (github.com/stripe/openapi) is not available offline, so
the SDK stands in for it: a field the SDK annotates without ``Optional`` is required and never
null; every field returned must be declared; every parameter accepted must be declared by the
SDK's params class of the call the route emulates. See ``stripe_contract`` for the checker.

The calls: those in ``billing/invoicing/stripe_sync.py`` and
``billing/reconciliation/stripe_invoices.py`` (customers search/create, invoices
list/retrieve/search/create/finalize, invoice items list/create/delete, invoice lines list),
plus the rest the emulator serves (customer retrieve/list/update/delete, invoice update/void/
pay/mark_uncollectible/delete, invoice item retrieve) and what ``meterline stripe check`` reads
(the account, webhook endpoints create/list/delete).
"""

import inspect
import json
import re
import time
from typing import Any

import pytest
import requests
import stripe

from billing.stripe_emulator import invoices as emulator_invoices
from billing.stripe_emulator.routes import ROUTES
from tests.integration.billing.stripe_contract import (
    list_problems,
    object_problems,
    sdk_version,
    search_problems,
)

AUTH = {"Authorization": "Bearer sk_test_contract"}


def api(emulator, method: str, path: str, data: dict | None = None, **headers: str) -> Any:
    response = requests.request(
        method,
        emulator.url + path,
        headers={**AUTH, **headers},
        data=data if method == "POST" else None,
        params=data if method == "GET" else None,
        timeout=5,
    )
    return response.status_code, response.json()


def ok(emulator, method: str, path: str, data: dict | None = None) -> Any:
    status, body = api(emulator, method, path, data)
    assert status == 200, body
    return body


def _every_call(emulator) -> dict[str, tuple[Any, Any]]:
    """One response of every emulated call Meterline uses -> (JSON, what the SDK says it is).

    Long because: it is one scripted billing month, each step's response kept for checking.
    """
    seen: dict[str, tuple[Any, Any]] = {}
    meta = {"metadata[meterline_tenant_id]": "t1", "metadata[meterline_period]": "2026-11"}
    cus = ok(emulator, "POST", "/v1/customers", {"name": "Acme", "email": "a@acme.test", **meta})
    seen["customer create"] = cus, stripe.Customer
    seen["customer retrieve"] = ok(emulator, "GET", f"/v1/customers/{cus['id']}"), stripe.Customer
    seen["customer update"] = (
        ok(emulator, "POST", f"/v1/customers/{cus['id']}", {"description": "x"}),
        stripe.Customer,
    )
    seen["customer list"] = ok(emulator, "GET", "/v1/customers"), ("list", stripe.Customer)
    query = {"query": "metadata['meterline_tenant_id']:'t1'", "limit": 100}
    seen["customer search"] = (
        ok(emulator, "GET", "/v1/customers/search", query),
        ("search", stripe.Customer),
    )
    txns = f"/v1/customers/{cus['id']}/balance_transactions"
    credit = ok(emulator, "POST", txns, {"amount": -300, "currency": "eur", **meta})
    seen["balance transaction create"] = credit, stripe.CustomerBalanceTransaction
    seen["balance transaction retrieve"] = (
        ok(emulator, "GET", f"{txns}/{credit['id']}"),
        stripe.CustomerBalanceTransaction,
    )
    draft = {"customer": cus["id"], "currency": "eur", "collection_method": "send_invoice"}
    inv = ok(emulator, "POST", "/v1/invoices", {**draft, "days_until_due": 14, **meta})
    item = ok(
        emulator,
        "POST",
        "/v1/invoiceitems",
        {"customer": cus["id"], "invoice": inv["id"], "amount": 1250, "currency": "eur",
         "description": "API calls", "period[start]": 1, "period[end]": 2,
         "metadata[line_key]": "api_calls"},
    )  # fmt: skip
    seen["invoice item create"] = item, stripe.InvoiceItem
    seen["invoice item retrieve"] = (
        ok(emulator, "GET", f"/v1/invoiceitems/{item['id']}"),
        stripe.InvoiceItem,
    )
    seen["invoice item list"] = (
        ok(emulator, "GET", "/v1/invoiceitems", {"invoice": inv["id"], "limit": 100}),
        ("list", stripe.InvoiceItem),
    )
    spare = ok(emulator, "POST", "/v1/invoiceitems", {"customer": cus["id"], "amount": 1,
                                                       "currency": "eur"})  # fmt: skip
    seen["invoice item delete"] = (
        ok(emulator, "DELETE", f"/v1/invoiceitems/{spare['id']}"),
        stripe.InvoiceItem,
    )
    seen["invoice create"] = inv, stripe.Invoice
    seen["invoice update"] = (
        ok(emulator, "POST", f"/v1/invoices/{inv['id']}", {"footer": "Thanks"}),
        stripe.Invoice,
    )
    seen["invoice retrieve (draft)"] = (
        ok(emulator, "GET", f"/v1/invoices/{inv['id']}"),
        stripe.Invoice,
    )
    fin = ok(emulator, "POST", f"/v1/invoices/{inv['id']}/finalize", {"auto_advance": "false"})
    seen["invoice finalize"] = fin, stripe.Invoice
    seen["invoice lines"] = (
        ok(emulator, "GET", f"/v1/invoices/{inv['id']}/lines", {"limit": 100}),
        ("list", stripe.InvoiceLineItem),
    )
    seen["invoice list"] = (
        ok(emulator, "GET", "/v1/invoices", {"customer": cus["id"], "created[gte]": 0}),
        ("list", stripe.Invoice),
    )
    seen["invoice search"] = (
        ok(emulator, "GET", "/v1/invoices/search", {"query": "metadata['meterline_period']:'2026-11'"}),
        ("search", stripe.Invoice),
    )  # fmt: skip
    seen["invoice pay"] = ok(emulator, "POST", f"/v1/invoices/{inv['id']}/pay"), stripe.Invoice
    seen["balance transaction list"] = (
        ok(emulator, "GET", txns, {"limit": 100}),
        ("list", stripe.CustomerBalanceTransaction),
    )
    for final in ("void", "mark_uncollectible"):
        other = ok(emulator, "POST", "/v1/invoices", {**draft, "days_until_due": 14})
        ok(emulator, "POST", "/v1/invoiceitems", {"customer": cus["id"], "invoice": other["id"],
                                                   "amount": 500, "currency": "eur"})  # fmt: skip
        ok(emulator, "POST", f"/v1/invoices/{other['id']}/finalize")
        seen[f"invoice {final}"] = (
            ok(emulator, "POST", f"/v1/invoices/{other['id']}/{final}"),
            stripe.Invoice,
        )
    gone = ok(emulator, "POST", "/v1/invoices", {**draft, "days_until_due": 14})
    seen["invoice delete"] = ok(emulator, "DELETE", f"/v1/invoices/{gone['id']}"), stripe.Invoice
    leaving = ok(emulator, "POST", "/v1/customers", {"name": "Leaving"})
    seen["customer delete"] = (
        ok(emulator, "DELETE", f"/v1/customers/{leaving['id']}"),
        stripe.Customer,
    )
    seen["customer retrieve (deleted)"] = (
        ok(emulator, "GET", f"/v1/customers/{leaving['id']}"),
        stripe.Customer,
    )
    seen["account retrieve"] = ok(emulator, "GET", "/v1/account"), stripe.Account
    hook = {
        "url": "https://billing.example.test/v1/stripe/webhook",
        "enabled_events[0]": "invoice.paid",
    }
    endpoint = ok(emulator, "POST", "/v1/webhook_endpoints", hook)
    seen["webhook endpoint create"] = endpoint, stripe.WebhookEndpoint
    seen["webhook endpoint list"] = (
        ok(emulator, "GET", "/v1/webhook_endpoints"),
        ("list", stripe.WebhookEndpoint),
    )
    seen["webhook endpoint delete"] = (
        ok(emulator, "DELETE", f"/v1/webhook_endpoints/{endpoint['id']}"),
        stripe.WebhookEndpoint,
    )
    events = ok(emulator, "GET", "/v1/events", {"limit": 100})
    seen["event list"] = events, ("list", stripe.Event)
    seen["event retrieve"] = (
        ok(emulator, "GET", f"/v1/events/{events['data'][0]['id']}"),
        stripe.Event,
    )
    for event in events["data"]:
        seen[f"event {event['type']} data.object"] = event["data"]["object"], stripe.Invoice
    return seen


def contract_problems(seen: dict[str, tuple[Any, Any]]) -> list[str]:
    found = []
    for call, (body, kind) in seen.items():
        if isinstance(kind, tuple):
            shape, cls = kind
            check = list_problems if shape == "list" else search_problems
            found += check(body, cls, call)
        else:
            found += object_problems(body, kind, call)
    return found


def test_every_response_meterline_reads_fits_the_sdks_contract(emulator, client):
    seen = _every_call(emulator)
    assert contract_problems(seen) == [], f"stripe {sdk_version()}"
    # Meterline reads these; they must be there in the current shape
    lines = seen["invoice lines"][0]["data"]
    assert lines[0]["parent"]["invoice_item_details"]["invoice_item"].startswith("ii_")
    assert lines[0]["subtotal"] == 1250 and lines[0]["pricing"]["unit_amount_decimal"] == "1250"
    assert "unit_amount_decimal" not in seen["invoice item create"][0]
    assert "total_count" not in seen["invoice search"][0]
    assert "total_count" not in seen["invoice finalize"][0]["lines"]
    finalized = seen["invoice finalize"][0]
    assert finalized["due_date"] == finalized["status_transitions"]["finalized_at"] + 14 * 86400
    assert seen["customer retrieve (deleted)"][0] == seen["customer delete"][0]
    assert seen["customer delete"][0]["deleted"] is True
    assert seen["webhook endpoint create"][0]["secret"].startswith("whsec_")
    assert "secret" not in seen["webhook endpoint list"][0]["data"][0]  # shown on create only
    assert seen["account retrieve"][0]["id"].startswith("acct_")
    # the 3.00 EUR credit paid part of the 12.50 invoice: Stripe's balance fields
    assert (finalized["total"], finalized["starting_balance"]) == (1250, -300)
    assert (finalized["amount_due"], finalized["ending_balance"]) == (950, 0)
    ledger = [(t["type"], t["amount"]) for t in seen["balance transaction list"][0]["data"]]
    assert ledger == [("applied_to_invoice", 300), ("adjustment", -300)]
    types = [e["type"] for e in seen["event list"][0]["data"]][::-1]
    assert types == [
        "invoice.finalized", "invoice.paid",
        "invoice.finalized", "invoice.voided",
        "invoice.finalized", "invoice.marked_uncollectible",
    ]  # fmt: skip
    event = seen["event retrieve"][0]
    assert event["id"].startswith("evt_") and event["api_version"] == stripe.api_version
    assert event["data"]["object"]["metadata"] == {}  # the untagged void/uncollectible drafts


def test_contract_check_names_a_required_field_the_emulator_drops(emulator, client, monkeypatch):
    real_invoice, real_line = emulator_invoices._new_invoice, emulator_invoices.line_item

    def broken_invoice(*args, **kwargs):
        invoice = real_invoice(*args, **kwargs)
        del invoice["issuer"]  # required by stripe.Invoice
        invoice["days_until_due"] = 14  # not declared by stripe.Invoice (API 2025+)
        return invoice

    def broken_line(item):
        line = real_line(item)
        del line["subtotal"]  # required by stripe.InvoiceLineItem
        return line

    monkeypatch.setattr(emulator_invoices, "_new_invoice", broken_invoice)
    monkeypatch.setattr(emulator_invoices, "line_item", broken_line)
    found = contract_problems(_every_call(emulator))
    assert "invoice create.issuer: missing; Invoice requires it" in found
    assert "invoice create.days_until_due: not declared by stripe Invoice" in found
    assert "invoice list.data[0].issuer: missing; Invoice requires it" in found
    assert (
        "invoice retrieve (draft).lines.data[0].subtotal: missing; InvoiceLineItem requires it"
        in found
    )


def _sdk_calls() -> dict[tuple[str, str], str]:
    """(HTTP method, path with ``{}`` for ids) -> the params class the SDK sends for it."""
    from stripe import (
        _account_service,
        _customer_balance_transaction_service,
        _customer_service,
        _event_service,
        _invoice_item_service,
        _invoice_line_item_service,
        _invoice_service,
        _webhook_endpoint_service,
    )

    calls = {}
    for module in (_customer_service, _customer_balance_transaction_service, _invoice_service,
                   _invoice_item_service, _invoice_line_item_service, _account_service,
                   _webhook_endpoint_service, _event_service):  # fmt: skip
        for _, cls in inspect.getmembers(module, inspect.isclass):
            for name, fn in inspect.getmembers(cls, inspect.isfunction):
                source = inspect.getsource(fn)
                request = re.search(r'_request\(\s*"(\w+)",\s*"([^"]+)"', source)
                params = inspect.signature(fn).parameters.get("params")
                if request and params is not None and not name.endswith("_async"):
                    path = re.sub(r"\{\w+\}", "{}", request[2])
                    calls[(request[1].upper(), path)] = re.search(
                        r"(\w+Params)", str(params.annotation)
                    )[1]
    return calls


def test_every_route_checks_parameters_against_the_sdk_call_it_emulates():
    sdk = _sdk_calls()
    for method, pattern, params_class, _ in ROUTES:
        path = re.sub(r"\(\?P<\w+>\[\^/\]\+\)", "{}", pattern.pattern)
        assert sdk.get((method, path)) == params_class, (method, path)


def test_an_unknown_nested_parameter_is_refused_and_nothing_is_created(emulator, client):
    cus = client.v1.customers.create(params={"name": "Acme"})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.invoice_items.create(
            params={"customer": cus.id, "amount": 5, "currency": "usd",
                    "period": {"start": 1, "end": 2, "middle": 3}},  # type: ignore[typeddict-unknown-key]
        )  # fmt: skip
    assert refused.value.http_status == 400
    assert (refused.value.code, refused.value.param) == ("parameter_unknown", "period[middle]")
    assert client.v1.invoice_items.list(params={"customer": cus.id}).data == []
    status, body = api(emulator, "GET", "/v1/invoices", {"created[after]": 1})
    assert (status, body["error"]["param"]) == (400, "created[after]")


LIMITS = [
    ({"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata", "up to 50 keys"),
    ({"metadata": {"k" * 41: "v"}}, f"metadata[{'k' * 41}]", "up to 40 characters"),
    ({"metadata": {"k": "v" * 501}}, "metadata[k]", "up to 500 characters"),
    ({"currency": "usdx"}, "currency", "Invalid currency: usdx"),
    ({"description": "d" * 1501}, "description", "at most 1500 characters"),
]


@pytest.mark.parametrize(("change", "param", "message"), LIMITS)
def test_values_over_stripes_limits_are_refused_naming_the_parameter(
    emulator, client, change, param, message
):
    cus = client.v1.customers.create(params={"name": "Acme"})
    params = {"customer": cus.id, "currency": "usd", **change}
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.invoices.create(params=params, options={"idempotency_key": "k-" + param[:20]})
    assert (refused.value.http_status, refused.value.param) == (400, param)
    assert message in refused.value.user_message
    # nothing was created and the key stays unused: the corrected request goes through
    assert client.v1.invoices.list().data == []
    fixed = client.v1.invoices.create(
        params={"customer": cus.id, "currency": "usd"},
        options={"idempotency_key": "k-" + param[:20]},
    )
    assert fixed.status == "draft"


def test_values_at_stripes_limits_are_accepted(client):
    metadata = {f"{i:02d}" + "k" * 38: "v" * 500 for i in range(50)}
    cus = client.v1.customers.create(params={"name": "n" * 256, "metadata": metadata})
    inv = client.v1.invoices.create(
        params={"customer": cus.id, "currency": "jpy", "description": "d" * 1500}
    )
    assert len(inv.description) == 1500 and len(cus.metadata.to_dict()) == 50


def test_state_saved_by_an_older_emulator_is_served_in_the_current_shape(tmp_path):
    from billing.stripe_emulator import start_emulator
    from billing.stripe_emulator.invoices import new_invoice_defaults

    first = start_emulator(state_dir=tmp_path)
    cus = ok(first, "POST", "/v1/customers", {"name": "Acme"})
    inv = ok(first, "POST", "/v1/invoices", {"customer": cus["id"], "currency": "usd",
                                             "collection_method": "send_invoice",
                                             "days_until_due": 7})  # fmt: skip
    ok(first, "POST", "/v1/invoiceitems", {"customer": cus["id"], "invoice": inv["id"],
                                           "amount": 300, "currency": "usd"})  # fmt: skip
    first.stop()
    state_file = tmp_path / "state.json"
    state = json.loads(state_file.read_text())
    for item in state["invoiceitems"].values():  # the pre-2025 item shape
        for field in ("pricing", "parent", "quantity_decimal", "net_amount"):
            del item[field]
        item["unit_amount_decimal"] = "300"
    for invoice in state["invoices"].values():
        for field in new_invoice_defaults(invoice):
            del invoice[field]
        invoice["days_until_due"] = invoice.pop("_days_until_due")
    state_file.write_text(json.dumps(state))

    second = start_emulator(state_dir=tmp_path)
    try:
        seen = {
            "invoice finalize": (
                ok(second, "POST", f"/v1/invoices/{inv['id']}/finalize"),
                stripe.Invoice,
            ),
            "invoice items": (ok(second, "GET", "/v1/invoiceitems"), ("list", stripe.InvoiceItem)),
        }
        assert contract_problems(seen) == []
        finalized = seen["invoice finalize"][0]
        assert finalized["lines"]["data"][0]["pricing"]["unit_amount_decimal"] == "300"
        assert finalized["due_date"] == finalized["status_transitions"]["finalized_at"] + 7 * 86400
    finally:
        second.stop()


class _Receiver:
    """A webhook endpoint on loopback that keeps every request (body, headers)."""

    def __init__(self, answer: int = 200):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = []
        self.answers = [answer]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler):
                body = handler.rfile.read(int(handler.headers["Content-Length"])).decode()
                received.append((body, dict(handler.headers)))
                status = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
                handler.send_response(status)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self, count: int, timeout: float = 10.0) -> list[tuple[str, dict]]:
        import time

        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.received)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = _Receiver()
    yield running
    running.stop()


SECRET = "whsec_emulator_contract_secret"


def _finalized_invoice(client, **collection) -> Any:
    cus = client.v1.customers.create(params={"name": "Acme"})
    params = {"customer": cus.id, "currency": "usd", **collection}
    inv = client.v1.invoices.create(params=params)
    client.v1.invoice_items.create(
        params={"customer": cus.id, "invoice": inv.id, "amount": 900, "currency": "usd"}
    )
    return client.v1.invoices.finalize_invoice(inv.id)


def test_events_are_posted_signed_so_the_sdk_verifies_them(emulator, client, receiver):
    from tests.integration.billing.conftest import admin

    config = admin(
        emulator, "POST", "config", {"webhook_url": receiver.url, "webhook_secret": SECRET}
    )
    assert config["config"]["webhook_secret"] == "set (not shown)"
    state_file = emulator.emulator.state.path
    assert state_file.stat().st_mode & 0o777 == 0o600  # the secret is kept owner-only
    inv = _finalized_invoice(client, collection_method="send_invoice", days_until_due=7)
    with pytest.raises(stripe.CardError) as declined:
        client.v1.invoices.pay(inv.id, params={"payment_method": "pm_card_chargeCustomerFail"})
    assert (declined.value.http_status, declined.value.code) == (402, "card_declined")
    assert client.v1.invoices.retrieve(inv.id).status == "open"
    client.v1.invoices.pay(inv.id)
    received = receiver.events(3)
    events = [
        stripe.Webhook.construct_event(body, h["Stripe-Signature"], SECRET) for body, h in received
    ]
    assert [e.type for e in events] == [
        "invoice.finalized",
        "invoice.payment_failed",
        "invoice.paid",
    ]
    assert [e.data.object.status for e in events] == ["open", "open", "paid"]
    assert contract_problems({"webhook": (json.loads(received[0][0]), stripe.Event)}) == []
    body, headers = received[0]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_other")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            body.replace("open", "paid"), headers["Stripe-Signature"], SECRET
        )


def test_a_failed_delivery_is_retried(emulator, client, receiver):
    from tests.integration.billing.conftest import admin

    receiver.answers = [500, 200]
    admin(emulator, "POST", "config", {"webhook_url": receiver.url, "webhook_secret": SECRET})
    inv = _finalized_invoice(client, collection_method="send_invoice", days_until_due=7)
    received = receiver.events(2)
    assert [json.loads(b)["data"]["object"]["id"] for b, _ in received] == [inv.id, inv.id]
    assert json.loads(received[0][0])["id"] == json.loads(received[1][0])["id"]
    # the receiver has the body before the sender has its answer: wait for the log to say
    deadline = time.monotonic() + 10
    while len(outcomes := _outcomes(emulator)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert outcomes == ["500", "200"]


def _outcomes(emulator) -> list[str]:
    from tests.integration.billing.conftest import admin

    return [d["outcome"] for d in admin(emulator, "GET", "webhooks")["deliveries"]]


def test_endpoints_created_through_the_api_get_the_events_they_listen_to(client, receiver):
    """As in Stripe: an endpoint from POST /v1/webhook_endpoints receives the events named in
    its enabled_events, signed with the secret its creation returned, until it is deleted."""
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": receiver.url, "enabled_events": ["invoice.paid"]}
    )
    inv = _finalized_invoice(client, collection_method="send_invoice", days_until_due=7)
    client.v1.invoices.pay(inv.id)
    received = receiver.events(1)
    events = [
        stripe.Webhook.construct_event(body, h["Stripe-Signature"], endpoint.secret)
        for body, h in received
    ]
    assert [(e.type, e.data.object.id) for e in events] == [("invoice.paid", inv.id)]
    assert client.v1.events.list(params={"type": "invoice.paid"}).data[0].pending_webhooks == 1
    listed = client.v1.webhook_endpoints.list().data
    assert [e.id for e in listed] == [endpoint.id] and all("secret" not in e for e in listed)

    client.v1.webhook_endpoints.delete(endpoint.id)
    later = _finalized_invoice(client, collection_method="send_invoice", days_until_due=7)
    client.v1.invoices.pay(later.id)
    assert len(receiver.events(2, timeout=1.0)) == 1  # nothing after the delete


def test_collection_terms_are_checked_like_stripe(client):
    cus = client.v1.customers.create(params={"name": "Acme"})
    with pytest.raises(stripe.InvalidRequestError) as missing_days:
        client.v1.invoices.create(params={"customer": cus.id, "collection_method": "send_invoice"})
    assert missing_days.value.param == "days_until_due"
    with pytest.raises(stripe.InvalidRequestError) as forbidden:
        client.v1.invoices.create(
            params={"customer": cus.id, "collection_method": "charge_automatically",
                    "days_until_due": 3}
        )  # fmt: skip
    assert forbidden.value.param == "days_until_due"
    assert client.v1.invoices.list().data == []


def test_automatic_collection_pays_or_fails_auto_advancing_invoices(emulator, client):
    from tests.integration.billing.conftest import admin

    charged = _finalized_invoice(
        client, collection_method="charge_automatically", auto_advance=True
    )
    declined = _finalized_invoice(
        client, collection_method="charge_automatically", auto_advance=True
    )
    manual = _finalized_invoice(
        client, collection_method="charge_automatically", auto_advance=False
    )
    sent = _finalized_invoice(client, collection_method="send_invoice", days_until_due=5)
    assert admin(emulator, "POST", "collect", {"invoice": charged.id, "outcome": "paid"}) == {
        "collected": [{"id": charged.id, "status": "paid"}]
    }
    result = admin(emulator, "POST", "collect", {"outcome": "payment_failed"})
    assert result == {"collected": [{"id": declined.id, "status": "open"}]}
    assert client.v1.invoices.retrieve(declined.id).attempt_count == 1
    assert {client.v1.invoices.retrieve(i.id).status for i in (manual, sent)} == {"open"}
    types = [e.type for e in client.v1.events.list(params={"limit": 100}).data]
    assert types.count("invoice.paid") == 1 and types.count("invoice.payment_failed") == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"webhook_url": "http://127.0.0.1:1/hook"}, "webhook_url and webhook_secret go together"),
        ({"webhook_url": "ftp://x", "webhook_secret": "s"}, "webhook_url must be an http(s) URL"),
        ({"webhook_url": "http://x", "webhook_secret": " "}, "webhook_secret must be a non-empty"),
        ({"webhook_secrets": "s"}, "unknown config field"),
    ],
)
def test_bad_webhook_config_is_refused_naming_the_field(emulator, client, config, message):
    answer = requests.post(
        f"{emulator.url}/_emulator/config",
        json=config,
        headers={"X-Emulator-Token": emulator.admin_token},
        timeout=5,
    )
    assert answer.status_code == 400 and message in answer.json()["error"]["message"]
