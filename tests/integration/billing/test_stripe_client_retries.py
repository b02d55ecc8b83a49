"""``with_retries``: a 409 (the idempotency key is in use by a request still running) waits
longer than other retryable errors, long enough for that request to finish; then the retry
replays its result. Official SDK over HTTP to the emulator."""

from __future__ import annotations

import time

from billing.stripe_client import RetryPolicy, make_stripe_client, with_retries
from tests.integration.billing.conftest import admin


def test_a_key_in_use_backs_off_longer_than_a_timeout_and_then_replays(client, emulator):
    # The first request runs for 1.5 s; the client gives up after 0.5 s and retries the key,
    # which Stripe answers with 409 until the first request has finished.
    admin(emulator, "POST", "faults", {
        "status": None, "delay_seconds": 1.5, "count": 1, "path_prefix": "/v1/customers",
        "method": "POST", "mode": "after",
    })  # fmt: skip
    impatient = make_stripe_client("sk_test_emulator", emulator.url, timeout=0.5)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    policy = RetryPolicy(
        max_attempts=5, base_delay=0.05, max_delay=0.1, sleep=sleep,
        conflict_delay=1.0, max_conflict_delay=2.0,
    )  # fmt: skip
    customer = with_retries(
        policy,
        "customer create",
        lambda: impatient.v1.customers.create(
            params={"name": "Acme"}, options={"idempotency_key": "meterline:test:conflict"}
        ),
    )

    log = [r for r in admin(emulator, "GET", "requests")["requests"] if r["method"] == "POST"]
    statuses = [r["status"] for r in log]
    assert 409 in statuses and statuses[-1] == 200 and log[-1]["replayed"]
    assert waits[0] <= 0.05  # after the timeout: the ordinary backoff
    assert all(w >= 0.5 for w in waits[1:]) and len(waits) <= 3  # after each 409: longer
    assert [c.id for c in client.v1.customers.list().data] == [customer.id]


def test_a_409_waits_conflict_delay_and_other_errors_base_delay():
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, conflict_delay=2.0, max_conflict_delay=30)
    for attempt in range(6):
        other, conflict = min(8.0, 0.5 * 2**attempt), min(30.0, 2.0 * 2**attempt)
        assert other / 2 <= policy.delay(attempt, 500) <= other  # jitter: half to full
        assert conflict / 2 <= policy.delay(attempt, 409) <= conflict
    assert policy.delay(0, 409) >= 2 * policy.delay(0, 500)  # a 409 always waits longer
