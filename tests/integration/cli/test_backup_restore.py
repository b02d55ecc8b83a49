"""`meterline backup` / `meterline restore` round trip on real Postgres, Redis, dbt, Dagster
and the Stripe emulator: a small world is recorded live, loaded, built, invoiced and
reconciled; more events wait in the stream; backup; both stores wiped; restore. Afterwards
the marts are identical row for row, the invoice run creates nothing new in Stripe, replayed
events are duplicates and the live counters are what they were."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import psycopg
import stripe
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from ingestion.loader import load_stream
from ingestion.recorder import UsageRecorder
from meterline.cli.app import app
from meterline.core import clock
from meterline.core.db import get_engine
from meterline.core.installation import install_id
from meterline.core.periods import add_months
from meterline.core.tenants import create_tenant
from tests.conftest import flush_redis


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def event(tenant, event_id, meter, value, at) -> dict:
    return {"id": event_id, "tenant_id": tenant, "meter": meter, "value": value,
            "timestamp": at.isoformat().replace("+00:00", "Z")}  # fmt: skip


def marts(engine) -> dict[str, list]:
    """Every relation dbt built in schema analytics, row for row (sorted)."""
    with engine.connect() as conn:
        names = conn.execute(
            text(
                "select table_name from information_schema.tables "
                "where table_schema = 'analytics' order by 1"
            )
        ).scalars()
        return {
            name: sorted(
                (tuple(r) for r in conn.execute(text(f'select * from analytics."{name}"'))),
                key=repr,
            )
            for name in list(names)
        }


def rows(engine, query: str) -> list:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(query))]


def counters(redis, prefix: str) -> dict:
    """The live month and hour counters and the unique-user sketches' counts."""
    found = {}
    for raw in redis.scan_iter(match=f"{prefix}:*", count=1000):
        key = raw.decode()
        rest = key.split("}:", 1)[-1]  # global keys (the streams registry) have no tag
        if rest.startswith(("m:", "h:")):
            found[key] = redis.hgetall(key)
        elif rest.startswith(("u:", "hu:")):
            found[key] = redis.pfcount(key)
    return found


def recreate_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        name = sql.Identifier(url.database)
        conn.execute(sql.SQL("drop database {} with (force)").format(name))
        conn.execute(sql.SQL("create database {}").format(name))
    get_engine(database_url).dispose()


def test_backup_wipe_restore_gives_back_the_same_installation(
    db, redis_client, test_services, tmp_path
):
    from meterline.cli.pipeline import run_job

    prefix = test_services.redis_prefix
    now = clock.now()
    month = add_months(now.date().replace(day=1), -2)  # closed and past the grace period
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    for tenant, plan in (("acme", "starter"), ("hooli", "payg")):
        create_tenant(db, tenant, plan, at=start - timedelta(days=40))
    recorder = UsageRecorder(redis_client, db, prefix=prefix)
    past = [event("hooli", f"h{d}", "api_calls", 5_000, start + timedelta(days=d, hours=9))
            for d in range(10)]  # fmt: skip
    past += [event("acme", f"a{d}", "api_calls", 1_000, start + timedelta(days=d, hours=10))
             for d in range(10)]  # fmt: skip
    past.append(event("hooli", "s1", "storage_gb", 12, start + timedelta(days=3)))
    assert recorder.record(past, historical=True, enforce_limits=False).accepted == len(past)
    live = [event("acme", f"live{i}", "api_calls", 7, now - timedelta(minutes=2)) for i in range(3)]
    assert recorder.record(live).accepted == 3
    assert load_stream(redis_client, db, prefix=prefix).rows_loaded == len(past) + 3
    assert run_job("dbt_hourly").success
    ok("invoice", "--month", f"{month:%Y-%m}")
    ok("reconcile", "--month", f"{month:%Y-%m}")
    waiting = [
        event("hooli", f"w{i}", "api_calls", 2, now - timedelta(minutes=1)) for i in range(2)
    ]
    assert recorder.record(waiting).accepted == 2  # in the stream, not yet in Postgres

    client = stripe.StripeClient(
        "sk_test_meterline_tests", base_addresses={"api": test_services.stripe_api_base}
    )
    install = install_id(db)

    def our_stripe_invoices() -> list[str]:
        listed = client.v1.invoices.list(params={"limit": 100}).auto_paging_iter()
        return sorted(
            i.id for i in listed if i.metadata.to_dict().get("meterline_install") == install
        )

    invoices_query = "select * from meterline.invoices order by tenant_id, period"
    before = {
        "marts": marts(db),
        "invoices": rows(db, invoices_query),
        "lines": rows(db, "select * from meterline.invoice_lines order by 1, 2, 3"),
        "counters": counters(redis_client, prefix),
        "stripe": our_stripe_invoices(),
    }
    assert len(before["stripe"]) == 2 and before["marts"]["fct_invoices"]
    assert any(before["counters"].values())

    backup_dir = tmp_path / "backup"
    output = ok("backup", str(backup_dir))
    manifest_text = (backup_dir / "manifest.json").read_text()
    manifest = json.loads(manifest_text)
    assert manifest["drained"]["rows_loaded"] == 2  # the waiting events, loaded first
    assert manifest["alembic_revision"] and manifest["redis"]["keys"] > 0
    for secret in ("127.0.0.1", "postgresql://", "redis://", "sk_test_meterline_tests"):
        assert secret not in manifest_text and secret not in output
    loaded = rows(db, "select tenant_id, event_id from raw.usage_events order by 1, 2")
    assert len(loaded) == len(past) + 5

    recreate_database(test_services.database_url)
    flush_redis(test_services)
    assert not list(redis_client.scan_iter(match=f"{prefix}:*"))

    ok("restore", str(backup_dir))

    assert marts(db) == before["marts"]
    assert rows(db, invoices_query) == before["invoices"]
    assert rows(db, "select * from meterline.invoice_lines order by 1, 2, 3") == before["lines"]
    assert rows(db, "select tenant_id, event_id from raw.usage_events order by 1, 2") == loaded
    assert counters(redis_client, prefix) == before["counters"]

    # Replaying every event is a duplicate: nothing counted twice, nothing new to load.
    replay = UsageRecorder(redis_client, db, prefix=prefix)
    again = replay.record(past, historical=True, enforce_limits=False)
    assert (again.accepted, again.duplicates) == (0, len(past))
    again = replay.record(live + waiting)
    assert (again.accepted, again.duplicates) == (0, 5)
    assert load_stream(redis_client, db, prefix=prefix).rows_loaded == 0
    assert counters(redis_client, prefix) == before["counters"]

    # The next invoice run finds the restored invoices: the same ones in Stripe, none new.
    ok("invoice", "--month", f"{month:%Y-%m}")
    assert our_stripe_invoices() == before["stripe"]
    assert rows(db, invoices_query) == before["invoices"]
    ok("reconcile", "--month", f"{month:%Y-%m}")

    # A restore never lands on data, and a changed file is caught before anything is touched.
    refused = cli("restore", str(backup_dir))
    assert refused.exit_code != 0 and "restore needs empty targets" in str(refused.exception)
    tampered = tmp_path / "tampered"
    shutil.copytree(backup_dir, tampered)
    with (tampered / "redis.jsonl").open("a") as extra:
        extra.write("\n")
    refused = cli("restore", str(tampered))
    assert refused.exit_code != 0 and "does not match its checksum" in str(refused.exception)
