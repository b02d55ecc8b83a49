"""`meterline stripe check` against the Stripe emulator, over HTTP through the official SDK:
all green on a working key, and a named ✘ with what to do when something is wrong."""

from __future__ import annotations

import os
import secrets

import pytest
import requests
import stripe
from typer.testing import CliRunner

from billing.stripe_client import make_stripe_client
from billing.stripe_emulator import start_emulator
from meterline.cli.app import app
from meterline.cli.context import console

KEY = "sk_test_" + secrets.token_hex(16)  # long enough to show its last four characters
WEBHOOK = {
    "url": "https://billing.example.test/v1/stripe/webhook",
    "enabled_events": ["invoice.paid", "invoice.voided", "invoice.marked_uncollectible"],
}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    running = start_emulator(state_dir=tmp_path_factory.mktemp("emulator"))
    yield running
    running.stop()


def admin(emulator, method: str, path: str, body: dict | None = None) -> dict:
    response = requests.request(
        method,
        f"{emulator.url}/_emulator/{path}",
        json=body,
        headers={"X-Emulator-Token": emulator.admin_token},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture
def stripe_env(emulator, monkeypatch, tmp_path):
    admin(emulator, "POST", "reset")
    monkeypatch.setenv("STRIPE_API_KEY", KEY)
    monkeypatch.setenv("STRIPE_API_BASE", emulator.url)
    monkeypatch.setenv("METERLINE_HOME", str(tmp_path))
    monkeypatch.setattr(console, "width", 600)  # one table row per line
    return make_stripe_client(KEY, emulator.url, timeout=5)


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["stripe", "check", *args])
    assert os.environ["STRIPE_API_KEY"] not in result.output  # masked, never printed whole
    return result.exit_code, result.output


def row(output: str, name: str) -> str:
    """The table row of check ``name`` (its mark first)."""
    [line] = [line for line in output.splitlines() if line.split("│")[2:3] and _name(line) == name]
    return line


def _name(line: str) -> str:
    return line.split("│")[2].replace("(optional)", "").strip()


def mark(output: str, name: str) -> str:
    return row(output, name).split("│")[1].strip()


def api_requests(emulator) -> list[dict]:
    return [
        r for r in admin(emulator, "GET", "requests")["requests"] if r["path"].startswith("/v1")
    ]


def test_every_check_passes_against_the_emulator_and_nothing_is_left_behind(stripe_env, emulator):
    stripe_env.v1.webhook_endpoints.create(params=WEBHOOK)
    code, output = check()
    assert code == 0, output
    names = [
        "API key", "account reachable", "list customers", "list invoices",
        "create + delete a customer", "create + delete a draft invoice", "search",
        "webhook endpoint", "API version",
    ]  # fmt: skip
    assert {name: mark(output, name) for name in names} == dict.fromkeys(names, "✔")
    assert "test mode" in row(output, "API key")
    assert f"sk_test_…{KEY[-4:]}" in output and KEY not in output  # masked, never printed
    assert "acct_" in row(output, "account reachable")
    assert "billing.example.test" in row(output, "webhook endpoint")
    assert stripe.api_version in row(output, "API version")
    assert "this key can do everything Meterline needs" in output
    # nothing stays in Stripe: the customer and the draft invoice were deleted
    assert stripe_env.v1.customers.list().data == []
    assert stripe_env.v1.invoices.list().data == []
    creates = [
        r
        for r in api_requests(emulator)
        if r["method"] == "POST" and r["path"] != "/v1/webhook_endpoints"  # made by the test
    ]
    assert {r["path"] for r in creates} == {"/v1/customers", "/v1/invoices"}
    assert all(r["idempotency_key"].startswith("meterline:check:") for r in creates)
    assert not any(r["path"].startswith("/v1/invoiceitems") for r in api_requests(emulator))


def test_search_lag_and_a_missing_webhook_endpoint_are_warnings_not_failures(stripe_env, emulator):
    admin(emulator, "POST", "config", {"search_lag_seconds": 3600})
    code, output = check()
    assert code == 0, output
    assert mark(output, "search") == "!" and "lagging" in row(output, "search")
    assert "Meterline finds customers and invoices by list" in row(output, "search")
    assert mark(output, "webhook endpoint") == "!"
    assert "STRIPE_WEBHOOK_SECRET" in row(output, "webhook endpoint")
    assert mark(output, "create + delete a customer") == "✔"


def test_a_live_key_is_refused_without_live_and_nothing_is_called(
    stripe_env, emulator, monkeypatch
):
    live = "sk_live_" + secrets.token_hex(16)
    monkeypatch.setenv("STRIPE_API_KEY", live)
    code, output = check()
    assert code == 1
    assert mark(output, "API key") == "✘" and "refused without --live" in row(output, "API key")
    assert "re-run with --live" in row(output, "API key")
    assert mark(output, "account reachable") == "-"
    assert live not in output and f"sk_live_…{live[-4:]}" in output
    assert "required check(s) failed: API key" in output
    assert api_requests(emulator) == []  # not one call with a live key


def test_a_key_stripe_refuses_names_the_account_check_and_never_prints_the_key(
    stripe_env, emulator, monkeypatch
):
    live = "sk_live_" + secrets.token_hex(16)
    monkeypatch.setenv("STRIPE_API_KEY", live)  # the emulator accepts test keys only: a 401
    code, output = check("--live")
    assert code == 1
    assert mark(output, "API key") == "!" and "LIVE" in row(output, "API key")
    assert mark(output, "account reachable") == "✘"
    assert "401 AuthenticationError" in row(output, "account reachable")
    assert "copy it again" in row(output, "account reachable")
    assert mark(output, "list customers") == "-"
    assert live not in output


@pytest.mark.parametrize(
    "key, says",
    [
        ("pk_test_" + "x" * 24, "publishable key"),
        ("notakey123", "is not a Stripe API key"),
        ("sk_test_" + "x" * 12 + " " + "x" * 12, "characters no Stripe key has"),
        ('"sk_test_' + "x" * 24 + '"', "characters no Stripe key has"),
    ],
    ids=["publishable", "garbage", "inner-space", "quoted"],
)
def test_a_key_that_cannot_work_is_named(stripe_env, monkeypatch, key, says):
    monkeypatch.setenv("STRIPE_API_KEY", key)
    code, output = check()
    assert code == 1 and mark(output, "API key") == "✘" and says in row(output, "API key")
    assert key not in output


def test_a_failing_draft_invoice_is_named_and_the_customer_is_still_cleaned_up(
    stripe_env, emulator
):
    admin(
        emulator, "POST", "faults",
        {"status": 500, "count": 100, "path_prefix": "/v1/invoices", "method": "POST"},
    )  # fmt: skip
    code, output = check()
    assert code == 1
    assert mark(output, "create + delete a draft invoice") == "✘"
    assert "500" in row(output, "create + delete a draft invoice")
    assert "status.stripe.com" in row(output, "create + delete a draft invoice")
    assert mark(output, "create + delete a customer") == "✔"
    assert "required check(s) failed: create + delete a draft invoice" in output
    assert stripe_env.v1.customers.list().data == []


def test_a_transient_500_is_retried_and_passes(stripe_env, emulator):
    admin(
        emulator, "POST", "faults",
        {"status": 500, "count": 1, "path_prefix": "/v1/customers", "method": "POST",
         "mode": "after"},
    )  # fmt: skip
    code, output = check()
    assert code == 0, output
    assert mark(output, "create + delete a customer") == "✔"
    replayed = [r for r in api_requests(emulator) if r["replayed"]]
    assert [r["path"] for r in replayed] == ["/v1/customers"]  # same key: one customer
    assert stripe_env.v1.customers.list().data == []


def test_what_an_interrupted_check_left_is_removed(stripe_env):
    left = stripe_env.v1.customers.create(
        params={"name": "Meterline stripe check", "metadata": {"meterline_check": "true"}}
    )
    draft = stripe_env.v1.invoices.create(
        params={"customer": left.id, "metadata": {"meterline_check": "true"}}
    )
    kept = stripe_env.v1.customers.create(params={"name": "A real customer"})
    real_draft = stripe_env.v1.invoices.create(params={"customer": kept.id})
    code, output = check()
    assert code == 0, output
    assert "removed 2 object(s) left by an interrupted check" in row(
        output, "create + delete a customer"
    )
    assert [c.id for c in stripe_env.v1.customers.list().data] == [kept.id]
    assert [i.id for i in stripe_env.v1.invoices.list().data] == [real_draft.id]
    assert stripe_env.v1.customers.retrieve(left.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        stripe_env.v1.invoices.retrieve(draft.id)


def test_a_draft_that_could_not_be_deleted_is_named_and_the_next_check_removes_it(
    stripe_env, emulator
):
    admin(
        emulator, "POST", "faults",
        {"status": 500, "count": 100, "path_prefix": "/v1/invoices/", "method": "DELETE"},
    )  # fmt: skip
    code, output = check()
    assert code == 1
    [draft] = stripe_env.v1.invoices.list().data
    assert mark(output, "create + delete a draft invoice") == "✘"
    assert f"delete draft {draft.id} in the Dashboard" in row(
        output, "create + delete a draft invoice"
    )
    admin(emulator, "DELETE", "faults")
    code, output = check()
    assert code == 0, output
    assert "removed 1 object(s)" in row(output, "create + delete a customer")
    assert stripe_env.v1.invoices.list().data == []
