"""The emulator keeps Stripe's documented idempotency and search contracts (official SDK, HTTP).

Stripe, "Idempotent requests": a result is saved once the endpoint started executing, 500s
included, and replayed for at least 24 hours; validation failures and concurrent use of a key
(409) save nothing; keys are at most 255 characters. Search is eventually consistent.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import stripe

from meterline.core import clock
from tests.integration.billing.conftest import admin


def test_a_500_after_execution_started_is_replayed_for_the_same_key(client, emulator):
    admin(
        emulator,
        "POST",
        "faults",
        {"status": 500, "path_prefix": "/v1/customers", "mode": "during"},
    )
    opts = {"idempotency_key": "k-stored-500"}
    with pytest.raises(stripe.APIError) as first:
        client.v1.customers.create(params={"name": "x"}, options=opts)
    with pytest.raises(stripe.APIError) as again:
        client.v1.customers.create(params={"name": "x"}, options=opts)
    assert first.value.http_status == again.value.http_status == 500
    assert again.value.headers.get("idempotent-replayed") == "true"
    # it started executing: what it changed stays (the indeterminate worst case)
    assert len(client.v1.customers.list().data) == 1
    fresh = client.v1.customers.create(params={"name": "x"}, options={"idempotency_key": "k-new"})
    assert fresh.id.startswith("cus_")


def test_keys_expire_after_24_hours(client):
    opts = {"idempotency_key": "k-day"}
    first = client.v1.customers.create(params={"name": "x"}, options=opts)
    with clock.frozen(clock.now() + timedelta(hours=23, minutes=59)):
        assert client.v1.customers.create(params={"name": "x"}, options=opts).id == first.id
    with clock.frozen(clock.now() + timedelta(hours=24, seconds=1)):
        assert client.v1.customers.create(params={"name": "x"}, options=opts).id != first.id


def test_a_key_over_255_characters_is_refused_and_255_is_fine(client):
    with pytest.raises(stripe.InvalidRequestError, match="at most 255 characters") as refused:
        client.v1.customers.create(params={"name": "x"}, options={"idempotency_key": "k" * 256})
    assert refused.value.http_status == 400
    assert client.v1.customers.list().data == []
    client.v1.customers.create(params={"name": "x"}, options={"idempotency_key": "k" * 255})


def test_a_validation_failure_does_not_consume_the_key(client):
    opts = {"idempotency_key": "k-invalid-first"}
    with pytest.raises(stripe.InvalidRequestError, match="Missing required param: customer"):
        client.v1.invoices.create(params={}, options=opts)
    cus = client.v1.customers.create(params={"name": "x"})
    # the same key, now with valid parameters, executes (no idempotency_error, no replay)
    invoice = client.v1.invoices.create(params={"customer": cus.id}, options=opts)
    assert invoice.customer == cus.id


def test_concurrent_use_of_one_key_is_a_409_that_saves_nothing(client, emulator):
    admin(
        emulator,
        "POST",
        "faults",
        {"status": None, "delay_seconds": 1.0, "path_prefix": "/v1/customers"},
    )
    opts = {"idempotency_key": "k-busy"}
    results: list = []
    slow = threading.Thread(
        target=lambda: results.append(
            client.v1.customers.create(params={"name": "x"}, options=opts)
        )
    )
    slow.start()
    threading.Event().wait(0.3)  # the first request is in progress (held by the delay)
    with pytest.raises(stripe.StripeError) as busy:  # the SDK maps any 409 to APIError
        client.v1.customers.create(params={"name": "x"}, options=opts)
    slow.join(5)
    assert busy.value.http_status == 409
    assert busy.value.json_body["error"]["code"] == "idempotency_key_in_use"
    assert client.v1.customers.create(params={"name": "x"}, options=opts).id == results[0].id


def test_search_finds_new_objects_only_after_the_configured_lag(client, emulator):
    admin(emulator, "POST", "config", {"search_lag_seconds": 60})
    cus = client.v1.customers.create(params={"name": "x", "metadata": {"t": "1"}})
    query = {"query": "metadata['t']:'1'"}
    assert client.v1.customers.search(params=query).data == []
    assert [c.id for c in client.v1.customers.list().data] == [cus.id]  # lists are consistent
    with clock.frozen(clock.now() + timedelta(seconds=61)):
        assert [c.id for c in client.v1.customers.search(params=query).data] == [cus.id]
    assert admin(emulator, "POST", "reset")["reset"]
    assert admin(emulator, "GET", "config")["config"] == {
        "search_lag_seconds": 0, "webhook_url": None, "webhook_secret": None,
    }  # fmt: skip
