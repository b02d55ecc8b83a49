"""The Stripe emulator through the official stripe SDK over real HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
import stripe

from billing.stripe_client import make_stripe_client
from billing.stripe_emulator.params import allowed_params

ROOT = Path(__file__).resolve().parents[3]


def customer(client, tenant="acme"):
    return client.v1.customers.create(
        params={"name": tenant, "metadata": {"meterline_tenant_id": tenant}}
    )


def test_idempotency_replays_and_rejects_other_parameters(client, emulator):
    opts = {"idempotency_key": "meterline:acme:customer"}
    first = client.v1.customers.create(params={"name": "Acme"}, options=opts)
    again = client.v1.customers.create(params={"name": "Acme"}, options=opts)
    assert first.id == again.id and first.id.startswith("cus_")
    assert len(list(client.v1.customers.list().auto_paging_iter())) == 1
    with pytest.raises(stripe.IdempotencyError, match="same parameters"):
        client.v1.customers.create(params={"name": "Other"}, options=opts)
    with pytest.raises(stripe.IdempotencyError, match="same endpoint"):
        client.v1.invoices.create(params={"customer": first.id}, options=opts)
    log = requests.get(
        f"{emulator.url}/_emulator/requests",
        headers={"X-Emulator-Token": emulator.admin_token},
        timeout=5,
    ).json()["requests"]
    assert [r["replayed"] for r in log[:2]] == [False, True]


def test_parameters_are_checked_against_the_sdk_types(client):
    assert "pending_invoice_items_behavior" in allowed_params("InvoiceCreateParams")
    assert "idempotency_key" not in allowed_params("InvoiceCreateParams")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.create(params={"name": "x", "colour": "blue"})
    assert (unknown.value.param, unknown.value.code) == ("colour", "parameter_unknown")
    assert "Received unknown parameter: colour" in str(unknown.value)
    with pytest.raises(stripe.InvalidRequestError, match="Missing required param: customer"):
        client.v1.invoices.create(params={})


def test_invoice_lifecycle_and_shapes(client):
    cus = customer(client)
    draft = client.v1.invoices.create(params={
        "customer": cus.id, "currency": "eur", "pending_invoice_items_behavior": "exclude",
        "metadata": {"meterline_tenant_id": "acme", "meterline_period": "2026-10"},
    })  # fmt: skip
    assert (draft.object, draft.status, draft.total, draft.currency) == (
        "invoice",
        "draft",
        0,
        "eur",
    )
    item = client.v1.invoice_items.create(params={
        "customer": cus.id, "invoice": draft.id, "amount": 1234, "currency": "eur",
        "description": "API calls: 1,234,567 calls", "metadata": {"meter": "api_calls"},
    })  # fmt: skip
    assert item.id.startswith("ii_") and item.invoice == draft.id
    with pytest.raises(stripe.InvalidRequestError, match="must match"):
        client.v1.invoice_items.create(
            params={"customer": cus.id, "invoice": draft.id, "amount": 1, "currency": "usd"}
        )
    opened = client.v1.invoices.finalize_invoice(draft.id)
    assert (opened.status, opened.total, opened.amount_due) == ("open", 1234, 1234)
    assert opened.number and opened.status_transitions.finalized_at
    [line] = opened.lines.data
    assert (line.object, line.amount, line.metadata["meter"]) == ("line_item", 1234, "api_calls")
    assert line.parent.invoice_item_details.invoice_item == item.id
    with pytest.raises(stripe.InvalidRequestError) as not_editable:
        client.v1.invoice_items.create(
            params={"customer": cus.id, "invoice": draft.id, "amount": 1, "currency": "eur"}
        )
    assert not_editable.value.code == "invoice_not_editable"
    with pytest.raises(stripe.InvalidRequestError, match="already finalized"):
        client.v1.invoices.finalize_invoice(draft.id)
    paid = client.v1.invoices.pay(draft.id, params={"paid_out_of_band": True})
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 1234, 0)
    with pytest.raises(stripe.InvalidRequestError, match="only void open or uncollectible"):
        client.v1.invoices.void_invoice(draft.id)
    other = client.v1.invoices.create(params={"customer": cus.id})
    client.v1.invoice_items.create(
        params={"customer": cus.id, "invoice": other.id, "amount": 500, "currency": "usd"}
    )
    client.v1.invoices.finalize_invoice(other.id)
    assert client.v1.invoices.mark_uncollectible(other.id).status == "uncollectible"
    assert client.v1.invoices.void_invoice(other.id).status == "void"
    statuses = {
        i.id: i.status
        for i in client.v1.invoices.list(params={"customer": cus.id}).auto_paging_iter()
    }
    assert statuses == {draft.id: "paid", other.id: "void"}
    assert [i.id for i in client.v1.invoices.list(params={"status": "void"}).data] == [other.id]
    found = client.v1.invoices.search(params={"query": "metadata['meterline_period']:'2026-10'"})
    assert [i.id for i in found.data] == [draft.id]
    items = client.v1.invoice_items.list(params={"invoice": draft.id})
    assert [i.id for i in items.data] == [item.id] and items.object == "list"


def test_pending_items_are_excluded_unless_asked(client):
    cus = customer(client)
    client.v1.invoice_items.create(params={"customer": cus.id, "amount": 700, "currency": "usd"})
    excluded = client.v1.invoices.create(
        params={"customer": cus.id, "pending_invoice_items_behavior": "exclude"}
    )
    assert excluded.total == 0
    included = client.v1.invoices.create(
        params={"customer": cus.id, "pending_invoice_items_behavior": "include"}
    )
    assert included.total == 700
    assert client.v1.invoice_items.list(params={"pending": True}).data == []


def test_list_and_search_pagination(client):
    created = [customer(client, f"t{i:02d}").id for i in range(23)]
    listed = [c.id for c in client.v1.customers.list(params={"limit": 10}).auto_paging_iter()]
    assert listed == created[::-1]  # newest first, every object exactly once
    first = client.v1.customers.list(params={"limit": 5})
    assert first.has_more and len(first.data) == 5
    found = client.v1.customers.search(params={"query": "metadata['meterline_tenant_id']:'t07'"})
    assert [c.id for c in found.data] == [created[7]]
    every = client.v1.customers.search(params={"query": "name:'t01' OR name:'t02'", "limit": 1})
    assert every.has_more and every.next_page
    assert sorted(c.id for c in every.auto_paging_iter()) == sorted(created[1:3])
    with pytest.raises(stripe.InvalidRequestError, match="Unsupported search clause"):
        client.v1.customers.search(params={"query": "created>1"})


def test_fault_injection(client, emulator):
    requests.post(
        f"{emulator.url}/_emulator/faults",
        json={"status": 429, "count": 1, "path_prefix": "/v1/customers"},
        headers={"X-Emulator-Token": emulator.admin_token},
        timeout=5,
    )
    with pytest.raises(stripe.RateLimitError):
        customer(client)
    requests.post(
        f"{emulator.url}/_emulator/faults",
        json={"status": 500, "count": 1, "path_prefix": "/v1/customers", "mode": "after"},
        headers={"X-Emulator-Token": emulator.admin_token},
        timeout=5,
    )
    with pytest.raises(stripe.APIError):
        client.v1.customers.create(params={"name": "lost"}, options={"idempotency_key": "k-lost"})
    # the request ran; the same key now replays the stored result
    replay = client.v1.customers.create(
        params={"name": "lost"}, options={"idempotency_key": "k-lost"}
    )
    assert [c.id for c in client.v1.customers.list().data] == [replay.id]
    requests.post(
        f"{emulator.url}/_emulator/faults",
        json={"status": None, "delay_seconds": 1.2, "count": 1},
        headers={"X-Emulator-Token": emulator.admin_token},
        timeout=5,
    )
    impatient = make_stripe_client("sk_test_emulator", emulator.url, timeout=0.5)
    with pytest.raises(stripe.APIConnectionError):
        impatient.v1.customers.list()
    bad = requests.post(
        f"{emulator.url}/_emulator/faults",
        json={"status": 500, "colour": 1},
        headers={"X-Emulator-Token": emulator.admin_token},
        timeout=5,
    )
    assert bad.status_code == 400 and "colour" in bad.json()["error"]["message"]


def test_auth_errors(emulator):
    with pytest.raises(stripe.AuthenticationError, match="only accepts test keys"):
        make_stripe_client("sk_live_nope", emulator.url).v1.customers.list()
    response = requests.get(f"{emulator.url}/v1/customers", timeout=5)
    assert (
        response.status_code == 401 and response.json()["error"]["type"] == "invalid_request_error"
    )


def test_cli_server_keeps_state_across_restarts(tmp_path):
    def start():
        proc = subprocess.Popen(
            [sys.executable, "-m", "billing.stripe_emulator", "--host", "127.0.0.1", "--port", "0",
             "--state-dir", str(tmp_path)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        url = proc.stdout.readline().split("listening on ")[1].split()[0]
        return proc, make_stripe_client("sk_test_emulator", url, timeout=5)

    proc, client = start()
    try:
        cus = client.v1.customers.create(
            params={"name": "kept"}, options={"idempotency_key": "keep-1"}
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert (tmp_path / "state.json").exists()
    proc, client = start()
    try:
        assert client.v1.customers.retrieve(cus.id).name == "kept"
        again = client.v1.customers.create(
            params={"name": "kept"}, options={"idempotency_key": "keep-1"}
        )
        assert again.id == cus.id
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_emulator_admin_endpoints_need_its_token_and_refuse_other_origins(emulator, tmp_path):
    token = {"X-Emulator-Token": emulator.admin_token}
    # the token is the emulator's own, shared through its state dir (mode 0600)
    state_dir = emulator.emulator.state.path.parent
    token_file = state_dir / "admin_token"
    assert token_file.read_text().strip() == emulator.admin_token
    assert token_file.stat().st_mode & 0o777 == 0o600
    for method, path in (("POST", "reset"), ("GET", "requests"), ("DELETE", "faults"),
                         ("GET", "health")):  # fmt: skip
        url = f"{emulator.url}/_emulator/{path}"
        assert requests.request(method, url, timeout=5).status_code == 401, path
        wrong = requests.request(method, url, headers={"X-Emulator-Token": "é-guess"}, timeout=5)
        assert wrong.status_code == 401, path
        page = requests.request(
            method, url, headers={**token, "Origin": "https://evil.example"}, timeout=5
        )
        assert page.status_code == 403, path
        fetched = requests.request(
            method, url, headers={**token, "Sec-Fetch-Site": "cross-site"}, timeout=5
        )
        assert fetched.status_code == 403, path
        assert requests.request(method, url, headers=token, timeout=5).status_code == 200, path


def _finalized_invoice(client, customer_id: str, amount: int, currency: str = "usd"):
    draft = client.v1.invoices.create(
        params={"customer": customer_id, "currency": currency,
                "collection_method": "send_invoice", "days_until_due": 30}
    )  # fmt: skip
    client.v1.invoice_items.create(
        params={
            "customer": customer_id,
            "invoice": draft.id,
            "amount": amount,
            "currency": currency,
        }
    )
    return client.v1.invoices.finalize_invoice(draft.id)


def test_customer_balance_credit_applies_to_the_next_invoice_and_the_rest_stays(client):
    cus = client.v1.customers.create(params={"name": "Acme"})
    credit = client.v1.customers.balance_transactions.create(
        cus.id,
        params={"amount": -2000, "currency": "usd", "description": "goodwill"},
        options={"idempotency_key": "credit-1"},
    )
    replay = client.v1.customers.balance_transactions.create(
        cus.id,
        params={"amount": -2000, "currency": "usd", "description": "goodwill"},
        options={"idempotency_key": "credit-1"},
    )
    assert replay.id == credit.id and (credit.type, credit.ending_balance) == ("adjustment", -2000)
    assert client.v1.customers.retrieve(cus.id).balance == -2000

    first = _finalized_invoice(client, cus.id, 1500)
    assert (first.total, first.starting_balance, first.amount_due) == (1500, -2000, 0)
    assert (first.ending_balance, first.status) == (-500, "paid")
    second = _finalized_invoice(client, cus.id, 1200)
    assert (second.total, second.starting_balance, second.amount_due) == (1200, -500, 700)
    assert (second.ending_balance, second.status) == (0, "open")
    assert client.v1.customers.retrieve(cus.id).balance == 0
    with pytest.raises(stripe.InvalidRequestError) as other_currency:
        client.v1.customers.balance_transactions.create(
            cus.id, params={"amount": -100, "currency": "eur"}
        )
    assert other_currency.value.param == "currency"


def test_an_invoice_below_the_minimum_charge_is_paid_and_moves_to_the_balance(client):
    cus = client.v1.customers.create(params={"name": "Acme"})
    small = _finalized_invoice(client, cus.id, 30)  # USD 0.30 < Stripe's USD 0.50
    assert (small.status, small.total, small.amount_due, small.amount_remaining) == (
        "paid", 30, 30, 0,
    )  # fmt: skip
    assert small.ending_balance == 30 and client.v1.customers.retrieve(cus.id).balance == 30
    nxt = _finalized_invoice(client, cus.id, 1000)
    assert (nxt.total, nxt.starting_balance, nxt.amount_due, nxt.status) == (1000, 30, 1030, "open")
    ledger = client.v1.customers.balance_transactions.list(cus.id, params={"limit": 10}).data
    assert [(t.type, t.amount, t.invoice) for t in ledger] == [
        ("applied_to_invoice", -30, nxt.id),
        ("invoice_too_small", 30, small.id),
    ]
    gbp = client.v1.customers.create(params={"name": "Pound"})
    assert _finalized_invoice(client, gbp.id, 30, "gbp").status == "open"  # GBP minimum is 0.30
