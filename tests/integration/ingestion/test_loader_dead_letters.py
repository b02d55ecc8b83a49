"""A stream row Postgres refuses (or a malformed entry) becomes a dead letter with a readable
reason; every other row loads, the next run is not stalled, and a replay after the fix loads
each letter exactly once."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from ingestion import keys
from ingestion.dead_letters import list_dead_letters, replay
from ingestion.loader import load_stream
from ingestion.recorder import UsageRecorder
from meterline.core.tenants import create_tenant

NOW = datetime.now(UTC).replace(microsecond=0)  # each test starts here (conftest)
US = int(NOW.timestamp()) * 1_000_000


@pytest.fixture
def prefix(test_services):
    return test_services.redis_prefix


@pytest.fixture
def recorder(db, redis_client, prefix):
    create_tenant(db, "acme", "payg")
    return UsageRecorder(redis_client, db, prefix=prefix)


def good_events(recorder, n: int, tag: str, batch: int = 250) -> None:
    for start in range(0, n, batch):
        recorder.record(
            [
                {"id": f"{tag}{i}", "tenant_id": "acme", "meter": "api_calls", "value": 1}
                for i in range(start, min(n, start + batch))
            ]
        )


def row(event_id: str, value: str = "1", dims: str = "{}", ts: int = US) -> bytes:
    return f"acme\t{event_id}\tapi_calls\t{value}\t{ts}\t{dims}\t{US}\n".encode()


def add_entry(redis_client, prefix, fields) -> str:
    return redis_client.xadd(keys.stream_key(prefix, "acme"), fields).decode()


def events(db, where: str = "true") -> list[tuple[str, int]]:
    with db.connect() as conn:
        return conn.execute(
            text(f"select event_id, count(*) from raw.usage_events where {where} group by 1")
        ).all()


def total(db) -> tuple[int, int]:
    with db.connect() as conn:
        return tuple(
            conn.execute(
                text("select count(*), count(distinct event_id) from raw.usage_events")
            ).one()
        )


def drained(redis_client, prefix) -> bool:
    stream = keys.stream_key(prefix, "acme")
    return (
        redis_client.xlen(stream) == 0 and redis_client.xpending(stream, keys.GROUP)["pending"] == 0
    )


@pytest.fixture
def wide_value_column(db):
    """The fix for a value numeric(24,6) refuses: a wider column (undone after the test)."""

    def widen() -> None:
        with db.begin() as conn:
            conn.execute(
                text("alter table raw.usage_events alter column value type numeric(30, 6)")
            )

    yield widen
    with db.begin() as conn:
        conn.execute(text("delete from raw.usage_events where abs(value) >= 1e18"))
        conn.execute(text("alter table raw.usage_events alter column value type numeric(24, 6)"))


def test_poisoned_rows_are_set_aside_and_every_good_row_loads(
    recorder, db, redis_client, prefix, wide_value_column
):
    good_events(recorder, 500, "a")  # two entries of 250 good rows
    # one entry: good, too big for numeric(24,6), good, broken JSON, a timestamp out of range
    mixed = add_entry(
        redis_client,
        prefix,
        {
            "n": "5",
            "rows": row("m1")
            + row("huge", value="1e19")
            + row("m3")
            + row("badjson", dims="{not json")
            + row("late", ts=-(2**62)),
        },
    )
    no_rows = add_entry(redis_client, prefix, {"n": "1", "junk": "x"})  # malformed entry
    good_events(recorder, 500, "b")  # and more good entries after the poison

    stats = load_stream(redis_client, db, prefix=prefix, batch_size=100_000)
    assert stats.rows_loaded == 1002 and stats.dead_lettered == 4
    assert total(db) == (1002, 1002) and drained(redis_client, prefix)

    letters = {(d.entry_id, d.line_no): d for d in list_dead_letters(db)}
    assert set(letters) == {(mixed, 2), (mixed, 4), (mixed, 5), (no_rows, 0)}
    huge = letters[(mixed, 2)]
    assert (huge.tenant_id, huge.event_id, huge.attempts) == ("acme", "huge", 1)
    assert huge.reason.startswith("22003 numeric field overflow")
    assert huge.payload == row("huge", value="1e19")  # the exact bytes from the stream
    assert "invalid input syntax for type json" in letters[(mixed, 4)].reason
    assert letters[(mixed, 4)].reason.endswith('(column dimensions: "{not json")')
    assert "out of range" in letters[(mixed, 5)].reason
    assert letters[(no_rows, 0)].reason == "stream entry has no 'rows' field (fields: junk, n)"

    # the next run is not stalled: new rows load, the letters stay put
    good_events(recorder, 250, "c")
    again = load_stream(redis_client, db, prefix=prefix)
    assert again.rows_loaded == 250 and again.dead_lettered == 0 and total(db)[0] == 1252

    # replay before the fix: still refused, one more attempt, same reason
    early = replay(db, [huge.dead_letter_id])
    assert early.loaded == 0 and [i for i, _ in early.still_failing] == [huge.dead_letter_id]
    [still] = list_dead_letters(db, [huge.dead_letter_id])
    assert still.attempts == 2 and still.reason == huge.reason

    # the fix; meanwhile the client re-sent the same event, and the loader took it
    wide_value_column()
    add_entry(redis_client, prefix, {"n": "1", "rows": row("huge", value="1e19")})
    assert load_stream(redis_client, db, prefix=prefix).rows_loaded == 1

    result = replay(db, [huge.dead_letter_id])
    assert (result.loaded, result.duplicates, result.still_failing) == (0, 1, [])
    assert events(db, "event_id = 'huge'") == [("huge", 1)]  # ON CONFLICT: counted once
    assert huge.dead_letter_id not in {d.dead_letter_id for d in list_dead_letters(db)}
    assert total(db) == (1253, 1253)


def test_replay_after_the_fix_loads_exactly_once_and_removes_the_letter(
    recorder, db, redis_client, prefix, wide_value_column
):
    good_events(recorder, 100, "a")
    add_entry(redis_client, prefix, {"n": "2", "rows": row("big1", "2e18") + row("big2", "3e18")})
    assert load_stream(redis_client, db, prefix=prefix).dead_lettered == 2
    wide_value_column()
    first = replay(db)  # --all
    assert (first.loaded, first.duplicates, first.still_failing) == (2, 0, [])
    assert list_dead_letters(db) == [] and replay(db).loaded == 0
    assert sorted(events(db, "event_id like 'big%'")) == [("big1", 1), ("big2", 1)]
    with db.connect() as conn:
        assert (
            conn.execute(
                text("select sum(value) from raw.usage_events where event_id like 'big%'")
            ).scalar()
            == 5 * 10**18
        )


@pytest.fixture
def cli(test_services):
    """The `meterline` app in process; the environment it exports is put back afterwards."""
    from meterline.cli.app import app

    saved = dict(os.environ)
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args))
    os.environ.clear()
    os.environ.update(saved)


def test_cli_lists_and_replays_dead_letters(recorder, db, redis_client, prefix, cli):
    assert "no dead letters" in cli("dead-letters", "list").output
    add_entry(redis_client, prefix, {"n": "1", "rows": row("oops", dims="{oops")})
    load_stream(redis_client, db, prefix=prefix)
    [letter] = list_dead_letters(db)

    listed = cli("dead-letters", "list")
    assert listed.exit_code == 0
    out = " ".join(listed.output.split())
    assert f"#{letter.dead_letter_id} acme/oops" in out and "attempts 1" in out
    assert "reason: 22P02 invalid input syntax for type json" in out
    assert "payload: acme\\toops\\tapi_calls\\t1" in out

    refused = cli("dead-letters", "replay")
    assert refused.exit_code != 0 and "give dead-letter IDs or --all" in str(refused.exception)
    failing = cli("dead-letters", "replay", str(letter.dead_letter_id))
    said = " ".join(failing.output.split())
    assert failing.exit_code != 0 and "1 still failing" in said
    assert (
        f'#{letter.dead_letter_id}: 22P02 invalid input syntax for type json: Token "oops" is invalid. (column dimensions: "{{oops")'
        in said
    )

    with db.begin() as conn:  # the operator corrects the row, then replays
        conn.execute(
            text("update raw.usage_dead_letters set payload = :p"), {"p": row("oops", dims="{}")}
        )
    fixed = cli("dead-letters", "replay", "--all")
    assert fixed.exit_code == 0, fixed.output
    assert "replay: 1 loaded, 0 already in raw.usage_events" in fixed.output
    assert events(db, "event_id = 'oops'") == [("oops", 1)]
    assert "no dead letters" in cli("dead-letters", "list").output
