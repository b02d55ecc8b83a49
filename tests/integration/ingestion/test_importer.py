"""`meterline import`: historical backfills with the same validation and dedupe."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from ingestion import keys
from ingestion.importer import ImportRefused, import_events
from ingestion.recorder import UsageRecorder
from meterline.core.tenants import create_tenant

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def prefix(test_services):
    return test_services.redis_prefix


@pytest.fixture
def tenants(db):
    create_tenant(db, "acme", "free", at=NOW - timedelta(days=400))
    return db


def rows(engine, where="true"):
    with engine.connect() as conn:
        return conn.execute(text(f"select count(*) from raw.usage_events where {where}")).scalar()


def month_qty(redis_client, prefix, tenant="acme", when=NOW):
    raw = redis_client.hget(keys.month_key(prefix, tenant, when.strftime("%Y%m")), "api_calls")
    return int(raw or 0) // keys.MICRO


def write_jsonl(path, events):
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return path


def test_jsonl_backfill_old_and_live_events_with_dedupe(tenants, redis_client, prefix, tmp_path):
    old = NOW - timedelta(days=200)
    events = [
        {
            "id": f"old{i}",
            "tenant_id": "acme",
            "meter": "api_calls",
            "value": 1,
            "timestamp": old.isoformat(),
        }
        for i in range(300)
    ] + [
        {
            "id": f"new{i}",
            "tenant_id": "acme",
            "meter": "api_calls",
            "value": 1,
            "timestamp": (NOW - timedelta(hours=1)).isoformat(),
        }
        for i in range(1500)  # above the free plan's hard limit: a backfill is not refused
    ]
    events.append(dict(events[0]))  # duplicate of a historical event inside the file
    events.append(dict(events[400]))  # duplicate of a live event inside the file
    progress = []
    stats = import_events(
        write_jsonl(tmp_path / "e.jsonl", events),
        redis_client,
        tenants,
        prefix=prefix,
        on_progress=progress.append,
        chunk_size=500,
    )
    assert (stats.lines, stats.accepted, stats.duplicates, stats.rejected) == (1802, 1800, 2, 0)
    assert stats.historical_events == 301 and stats.live_events == 1501
    assert sum(progress) == 1802
    assert rows(tenants) == 1800 and stats.rows_loaded == 1800
    assert month_qty(redis_client, prefix) == 1500  # live counters match the loaded rows
    # importing the same file again changes nothing
    again = import_events(tmp_path / "e.jsonl", redis_client, tenants, prefix=prefix)
    assert again.accepted == 0 and again.duplicates == 1802
    assert rows(tenants) == 1800 and month_qty(redis_client, prefix) == 1500


def test_ids_recorded_live_are_duplicates_on_import(tenants, redis_client, prefix, tmp_path):
    UsageRecorder(redis_client, tenants, prefix=prefix).record(
        [{"id": "x1", "tenant_id": "acme", "meter": "api_calls", "value": 1}]
    )
    path = write_jsonl(
        tmp_path / "e.jsonl",
        [
            {"id": "x1", "tenant_id": "acme", "meter": "api_calls", "value": 1},
            {"id": "x2", "tenant_id": "acme", "meter": "api_calls", "value": 1},
        ],
    )
    stats = import_events(path, redis_client, tenants, prefix=prefix)
    assert (stats.accepted, stats.duplicates) == (1, 1)
    assert rows(tenants) == 2 and month_qty(redis_client, prefix) == 2


def test_csv_with_dimensions_as_json_string(tenants, redis_client, prefix, tmp_path):
    path = tmp_path / "e.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "tenant_id", "meter", "value", "timestamp", "dimensions"])
        writer.writerow(
            ["c1", "acme", "storage_gb", "0.05", "2024-01-31T23:00:00Z", '{"region":"eu"}']
        )
        writer.writerow(["c2", "acme", "api_calls", "3", "2024-02-01T00:00:00+00:00", ""])
    stats = import_events(path, redis_client, tenants, prefix=prefix)
    assert stats.accepted == 2
    with tenants.connect() as conn:
        got = conn.execute(
            text("select event_id, value, dimensions from raw.usage_events order by 1")
        ).all()
    assert [(r[0], float(r[1]), r[2]) for r in got] == [
        ("c1", 0.05, {"region": "eu"}),
        ("c2", 3.0, {}),
    ]


def test_invalid_lines_refuse_the_whole_file(tenants, redis_client, prefix, tmp_path):
    lines = [
        json.dumps({"id": f"ok{i}", "tenant_id": "acme", "meter": "api_calls", "value": 1})
        for i in range(5)
    ]
    lines[1] = '{"tenant_id": "acme", "meter": "api_calls", "value": -1}'
    lines[3] = "{broken"
    lines.append(json.dumps({"tenant_id": "nobody", "meter": "api_calls", "value": 1}))
    lines += [json.dumps({"tenant_id": "acme", "meter": "nope", "value": 1})] * 120
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportRefused) as info:
        import_events(path, redis_client, tenants, prefix=prefix, chunk_size=50)
    error = info.value
    assert error.invalid == 123 and len(error.errors) == 100
    assert error.errors[0].startswith("line 2: value: must be a finite number >= 0")
    assert error.errors[1].startswith("line 4: not valid JSON")
    assert error.errors[2].startswith("line 6: tenant_id: unknown tenant")
    assert "--skip-invalid" in str(error) and "and 23 more" in str(error)
    assert (
        rows(tenants) == 0
        and list(redis_client.scan_iter(match=f"{prefix}:{{acme}}:*", count=10000)) == []
    )


def test_skip_invalid_loads_valid_rows_and_writes_rejects(tenants, redis_client, prefix, tmp_path):
    lines = [
        json.dumps({"id": f"ok{i}", "tenant_id": "acme", "meter": "api_calls", "value": 1})
        for i in range(4)
    ]
    lines.insert(
        2, json.dumps({"id": "bad", "tenant_id": "acme", "meter": "api_calls", "value": "NaN"})
    )
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    stats = import_events(
        path, redis_client, tenants, prefix=prefix, skip_invalid=True, rejects_path=rejects
    )
    assert (stats.accepted, stats.rejected) == (4, 1)
    written = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert written == [
        {
            "line": 3,
            "error": 'line 3: value: must be a finite number >= 0, got "NaN"',
            "raw": lines[2],
        }
    ]
    assert rows(tenants) == 4


def test_a_canceled_tenants_history_before_the_cancel_is_imported_and_after_is_refused(
    db, redis_client, test_services, tmp_path
):
    from meterline.core import tenants

    now = datetime.now(UTC)
    tenants.create_tenant(db, "tyrell", "pro", at=now - timedelta(days=60))
    tenants.cancel_tenant(db, "tyrell", at=now - timedelta(days=5))
    before = [now - timedelta(days=40), now - timedelta(days=10)]  # one old, one in the live window
    path = tmp_path / "tyrell.jsonl"
    path.write_text(
        "".join(
            f'{{"id": "t{i}", "tenant_id": "tyrell", "meter": "api_calls", "value": 5, '
            f'"timestamp": "{moment.isoformat()}"}}\n'
            for i, moment in enumerate(before)
        )
    )
    stats = import_events(path, redis_client, db, prefix=test_services.redis_prefix)
    assert (stats.accepted, stats.duplicates, stats.rejected) == (2, 0, 0)
    with db.connect() as conn:
        assert (
            conn.execute(
                text("select count(*) from raw.usage_events where tenant_id = 'tyrell'")
            ).scalar_one()
            == 2
        )

    after = tmp_path / "after.jsonl"
    after.write_text(
        f'{{"id": "t9", "tenant_id": "tyrell", "meter": "api_calls", "value": 5, '
        f'"timestamp": "{(now - timedelta(days=1)).isoformat()}"}}\n'
    )
    with pytest.raises(ImportRefused, match="1 of 1 lines are invalid") as refused:
        import_events(after, redis_client, db, prefix=test_services.redis_prefix)
    assert "is after tenant 'tyrell' was canceled" in refused.value.errors[0]
