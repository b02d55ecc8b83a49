"""The Redis engine against real Redis and Postgres: dedupe, quotas, aggregations, plans."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from ingestion import keys
from ingestion.loader import load_stream
from ingestion.recorder import UsageRecorder, invalidate_plan_cache
from ingestion.usage import live_usage
from ingestion.validation import EventValidationError
from meterline.core.tenants import cancel_tenant, create_tenant, set_plan
from tests.instants import INSTANTS, ticking_from

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def prefix(test_services):
    return test_services.redis_prefix


@pytest.fixture
def recorder(db, redis_client, prefix):
    return UsageRecorder(redis_client, db, prefix=prefix)


def calls(tenant, n, *, start=0, meter="api_calls", value=1, tag="e"):
    return [
        {"id": f"{tag}{i}", "tenant_id": tenant, "meter": meter, "value": value}
        for i in range(start, start + n)
    ]


def month_counter(redis_client, prefix, tenant, meter, when=NOW):
    raw = redis_client.hget(keys.month_key(prefix, tenant, when.strftime("%Y%m")), meter)
    return Decimal(int(raw or 0)) / keys.MICRO


def test_duplicates_within_and_across_batches_count_once(recorder, db, redis_client, prefix):
    create_tenant(db, "acme", "payg")
    first = recorder.record(
        [*calls("acme", 3), {"id": "e1", "tenant_id": "acme", "meter": "api_calls", "value": 1}]
    )
    assert (first.accepted, first.duplicates, first.rejected) == (3, 1, 0)
    assert [o.status for o in first.outcomes] == ["accepted"] * 3 + ["duplicate"]
    second = recorder.record(calls("acme", 5))  # e0..e2 again, e3 and e4 new
    assert (second.accepted, second.duplicates) == (2, 3)
    assert month_counter(redis_client, prefix, "acme", "api_calls") == 5
    stats = load_stream(redis_client, db, prefix=prefix)
    assert stats.rows_loaded == 5 and stats.duplicates_skipped == 0
    with db.connect() as conn:
        assert conn.execute(text("select count(*) from raw.usage_events")).scalar() == 5


def test_hard_limit_is_check_and_increment_in_order(recorder, db, redis_client, prefix):
    create_tenant(db, "tiny", "free")  # api_calls: 1,000 hard
    result = recorder.record(calls("tiny", 998, value=1) + calls("tiny", 4, start=998, value=1))
    assert result.accepted == 1000 and result.rejected == 2
    last_ok, refused = result.outcomes[999], result.outcomes[1000]
    assert last_ok.status == "accepted" and last_ok.remaining == 0 and last_ok.warning == 100
    assert refused.status == "rejected" and refused.reason == "quota_exceeded"
    assert refused.limit == 1000 and refused.remaining == 0
    # a big event that does not fit is refused, the counter never goes above the limit
    assert month_counter(redis_client, prefix, "tiny", "api_calls") == 1000
    usage = {u.meter: u for u in live_usage(redis_client, db, "tiny", prefix=prefix)}
    assert usage["api_calls"].quantity == 1000 and usage["api_calls"].percent == 100.0
    assert usage["api_calls"].refused_events == 2 and usage["api_calls"].refused == 2


def test_partial_batch_and_soft_warnings(recorder, db):
    create_tenant(db, "t1", "free")
    result = recorder.record(calls("t1", 3, value=300) + calls("t1", 2, start=3, value=50))
    statuses = [o.status for o in result.outcomes]
    assert statuses == ["accepted", "accepted", "accepted", "accepted", "accepted"]
    warnings = [o.warning for o in result.outcomes]
    assert warnings == [None, None, 90, 95, 100]  # 30 %, 60 %, 90 %, 95 %, 100 %
    refused = recorder.record(calls("t1", 1, start=10, value=1))
    assert refused.rejected == 1 and refused.outcomes[0].reason == "quota_exceeded"


def test_rejected_event_is_not_marked_seen_so_retry_after_upgrade_works(recorder, db):
    create_tenant(db, "grow", "free")
    recorder.record(calls("grow", 1, value=1000, tag="big"))
    retry = calls("grow", 1, start=1, value=5, tag="r")
    assert recorder.record(retry).rejected == 1
    set_plan(db, "grow", "starter")
    recorder.invalidate_plan_cache("grow")
    again = recorder.record(retry)
    assert again.accepted == 1 and again.outcomes[0].limit == 50000


def test_plan_change_takes_effect_at_once_via_module_invalidation(
    recorder, db, redis_client, prefix
):
    create_tenant(db, "p", "free")
    assert recorder.record(calls("p", 1, value=1000)).accepted == 1
    assert recorder.record(calls("p", 1, start=1)).rejected == 1
    set_plan(db, "p", "pro")
    invalidate_plan_cache(redis_client, prefix=prefix, tenant_id="p")
    result = recorder.record(calls("p", 1, start=2, value=600000))
    outcome = result.outcomes[0]
    assert outcome.status == "accepted" and outcome.overage and outcome.limit == 500000
    assert outcome.remaining == 0


def test_overage_plans_accept_and_flag(recorder, db):
    create_tenant(db, "big", "pro")  # api_calls 500,000, overage allowed
    result = recorder.record(calls("big", 2, value=300000))
    assert [o.overage for o in result.outcomes] == [False, True]
    assert result.outcomes[1].status == "accepted" and result.outcomes[1].warning == 100


def test_aggregations_max_last_unique(recorder, db, redis_client, prefix):
    create_tenant(db, "agg", "payg")
    t0 = NOW - timedelta(minutes=30)
    events = [
        {"tenant_id": "agg", "meter": "storage_gb", "value": 3.5, "timestamp": t0.isoformat()},
        {"tenant_id": "agg", "meter": "storage_gb", "value": 2, "timestamp": NOW.isoformat()},
    ] + [
        {
            "tenant_id": "agg",
            "meter": "active_users",
            "value": 1,
            "dimensions": {"user_id": f"u{i % 7}"},
        }
        for i in range(40)
    ]
    assert recorder.record(events).accepted == 42
    usage = {u.meter: u for u in live_usage(redis_client, db, "agg", prefix=prefix)}
    assert usage["storage_gb"].quantity == Decimal("3.5")  # max of the month
    assert usage["active_users"].quantity == 7  # HyperLogLog, exact at this size
    assert usage["active_users"].event_count == 40


def test_unique_hard_limit_admits_known_members_only(recorder, db):
    create_tenant(db, "few", "free")  # active_users: 3 hard
    users = ["a", "b", "c", "d", "a", "c", "e"]
    result = recorder.record(
        [
            {"tenant_id": "few", "meter": "active_users", "value": 1, "dimensions": {"user_id": u}}
            for u in users
        ]
    )
    assert [o.status for o in result.outcomes] == [
        "accepted",
        "accepted",
        "accepted",
        "rejected",
        "accepted",
        "accepted",
        "rejected",
    ]


def test_event_month_is_its_own_timestamp(recorder, db, redis_client, prefix):
    month_start = INSTANTS["first-second-of-a-month"]
    when = month_start - timedelta(hours=3)  # late, within the grace hours, last month
    with ticking_from(month_start + timedelta(hours=2)):
        create_tenant(db, "late", "payg", at=month_start - timedelta(days=60))
        recorder.record(
            [{"tenant_id": "late", "meter": "api_calls", "value": 7, "timestamp": when.isoformat()}]
        )
    assert month_counter(redis_client, prefix, "late", "api_calls", when) == 7
    hour = redis_client.hget(keys.hour_key(prefix, "late", when.strftime("%Y%m%d%H")), "api_calls")
    assert int(hour) == 7 * keys.MICRO


def test_invalid_event_fails_the_whole_batch(recorder, db, redis_client, prefix):
    create_tenant(db, "strict", "payg")
    batch = calls("strict", 5)
    batch[3]["value"] = -2
    with pytest.raises(EventValidationError, match=r"event\[3\]\.value"):
        recorder.record(batch)
    assert list(redis_client.scan_iter(match=f"{prefix}:{{strict}}:*", count=10000)) == []


def test_canceled_tenant_is_refused_even_inside_the_cache_window(recorder, db):
    create_tenant(db, "bye", "payg", at=NOW - timedelta(days=2))
    assert recorder.record(calls("bye", 1)).accepted == 1
    cancel_tenant(db, "bye")
    invalidate_plan_cache(recorder.redis, prefix=recorder.prefix, tenant_id="bye")
    with pytest.raises(EventValidationError, match="canceled"):
        recorder.record(calls("bye", 1, start=1))


def test_batch_with_several_tenants_uses_one_script_call_each(recorder, db, redis_client, prefix):
    create_tenant(db, "a", "payg")
    create_tenant(db, "b", "free")
    mixed = calls("a", 3) + calls("b", 2, value=600, tag="b") + calls("a", 2, start=3)
    result = recorder.record(mixed)
    assert [o.status for o in result.outcomes] == ["accepted"] * 4 + [
        "rejected",
        "accepted",
        "accepted",
    ]
    assert month_counter(redis_client, prefix, "a", "api_calls") == 5
    assert month_counter(redis_client, prefix, "b", "api_calls") == 600


def test_concurrent_clients_respect_the_hard_limit_exactly(recorder, db, redis_client, prefix):
    """Acceptance: 8 clients x 10,000 distinct events, hard limit 50,000."""
    create_tenant(db, "race", "starter")  # api_calls: 50,000 hard
    results = []
    lock = threading.Lock()

    def client(n: int) -> None:
        own = UsageRecorder(redis_client.__class__.from_url(_url(redis_client)), db, prefix=prefix)
        for b in range(10):
            r = own.record(calls("race", 1000, start=b * 1000, tag=f"c{n}-"))
            with lock:
                results.append(r)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.accepted for r in results) == 50000
    assert sum(r.rejected for r in results) == 30000
    assert month_counter(redis_client, prefix, "race", "api_calls") == 50000
    load_stream(redis_client, db, prefix=prefix)
    with db.connect() as conn:
        rows = conn.execute(text("select count(*) from raw.usage_events where tenant_id = 'race'"))
        assert rows.scalar() == 50000


def _url(client) -> str:
    kw = client.connection_pool.connection_kwargs
    if "path" in kw:
        return f"unix://{kw['path']}?db={kw.get('db', 0)}"
    return f"redis://{kw.get('host', '127.0.0.1')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"
