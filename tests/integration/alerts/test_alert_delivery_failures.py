"""Any exception a channel raises is a recorded attempt: it is retried under a new run key
(the attempt count moves on), delivered when the channel recovers, and given up visibly after
the maximum attempts - never retried forever under one run key without being sent."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest
from sqlalchemy import text

from alerts.channels.redis_list import RedisListChannel
from alerts.delivery import MAX_DELIVERY_ATTEMPTS, deliver_alerts, retry_candidates
from alerts.notifier import Notifier
from alerts.store import AlertRequest, list_alerts, record_alerts
from meterline.core import clock
from meterline.core.tenants import create_tenant

SECRET_URL = "https://ops:hunter2@relay.example.com/hooks/T0001/s3cr3t?token=abc"


@dataclass
class BreakingRedisList:
    """The real Redis list channel behind a fault: the first ``failures`` sends raise an
    error no channel is supposed to raise (not a DeliveryError)."""

    inner: RedisListChannel
    failures: int

    def describe(self) -> str:
        return self.inner.describe()

    def send(self, message) -> str:
        if self.failures:
            self.failures -= 1
            raise RuntimeError(f"relay pool exhausted while posting to {SECRET_URL}")
        return self.inner.send(message)


@pytest.fixture
def setup(db, redis_client, test_services, tmp_path):
    create_tenant(db, "acme", "free", email="ops@acme.test")
    period = f"{clock.now():%Y-%m}"
    record_alerts(
        db,
        AlertRequest("acme", "api_calls", period, (90,), Decimal(910), Decimal(1000)),
    )
    real = Notifier.configure(
        home=tmp_path, redis=redis_client, redis_prefix=test_services.redis_prefix
    )
    return period, real


def redis_row(db):
    with db.connect() as conn:
        return conn.execute(
            text(
                "select delivery_status, attempts, last_error from meterline.alerts "
                "where tenant_id = 'acme' and channel = 'redis'"
            )
        ).one()


def deliver(db, notifier, period):
    return deliver_alerts(db, notifier, tenant_id="acme", meter="api_calls", period=period)


def test_unexpected_channel_error_is_an_attempt_and_the_retry_delivers(
    db, redis_client, test_services, setup
):
    period, real = setup
    notifier = replace(real, redis_list=BreakingRedisList(real.redis_list, failures=1))

    first = deliver(db, notifier, period)  # no exception escapes: the failure is recorded
    assert {d.channel: d.status for d in first.deliveries} == {
        "email": "sent", "redis": "failed", "webhook": "skipped",
    }  # fmt: skip
    status, attempts, error = redis_row(db)
    assert (status, attempts) == ("failed", 1)
    assert error == (
        "unexpected RuntimeError: relay pool exhausted while posting to "
        "https://relay.example.com/..."
    )
    assert "hunter2" not in error and "s3cr3t" not in error and "token" not in error

    [retry] = retry_candidates(db, period)  # a new run key: the attempt count moved on
    assert retry.run_key == f"quota-retry:acme:api_calls:90:{period}:1"
    second = deliver(db, notifier, period)
    assert [(d.channel, d.status) for d in second.deliveries] == [("redis", "sent")]
    assert redis_row(db) == ("sent", 2, None)
    [pushed] = redis_client.lrange(f"{test_services.redis_prefix}:notifications", 0, -1)
    assert json.loads(pushed)["threshold"] == 90
    assert retry_candidates(db, period) == []


def test_a_channel_that_always_fails_is_given_up_visibly_after_max_attempts(
    db, redis_client, test_services, setup
):
    period, real = setup
    notifier = replace(real, redis_list=BreakingRedisList(real.redis_list, failures=10**6))
    deliver(db, notifier, period)
    run_keys = []
    while candidates := retry_candidates(db, period):
        [candidate] = candidates
        assert candidate.run_key not in run_keys  # never the same run key twice
        run_keys.append(candidate.run_key)
        deliver(db, notifier, period)
    assert run_keys == [
        f"quota-retry:acme:api_calls:90:{period}:{n}" for n in range(1, MAX_DELIVERY_ATTEMPTS)
    ]
    status, attempts, error = redis_row(db)
    assert (status, attempts) == ("failed", MAX_DELIVERY_ATTEMPTS)
    assert error.startswith(
        f"gave up after {MAX_DELIVERY_ATTEMPTS} attempts: unexpected RuntimeError"
    )
    assert "hunter2" not in error
    [listed] = [a for a in list_alerts(db, period) if a.channel == "redis"]
    assert listed.last_error == error  # what `meterline.alerts` shows an operator
    assert deliver(db, notifier, period).deliveries == []  # nothing more is tried


@dataclass
class DyingRedisList:
    """The process is stopped while this channel sends (SystemExit is not an Exception)."""

    inner: RedisListChannel

    def describe(self) -> str:
        return self.inner.describe()

    def send(self, message) -> str:
        raise SystemExit(137)


def test_a_run_killed_while_sending_still_moves_the_retry_on(
    db, redis_client, test_services, setup
):
    period, real = setup
    with pytest.raises(SystemExit):
        deliver(db, replace(real, redis_list=DyingRedisList(real.redis_list)), period)
    status, attempts, error = redis_row(db)
    assert (status, attempts) == ("pending", 1)
    assert error == "attempt 1 did not finish: the run stopped while sending"

    [retry] = retry_candidates(db, period, stale_pending_seconds=0)
    assert retry.run_key == f"quota-retry:acme:api_calls:90:{period}:1"  # not ...:0 again
    deliver(db, real, period)
    assert redis_row(db) == ("sent", 2, None)
