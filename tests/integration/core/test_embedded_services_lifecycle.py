"""`meterline services up|down|status` on the embedded PostgreSQL and Redis, as a user runs them."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
import redis

ROOT = Path(__file__).resolve().parents[3]


def meterline(home: Path, *args: str) -> subprocess.CompletedProcess:
    unset = ("DATABASE_URL", "REDIS_URL", "DAGSTER_HOME", "STRIPE_API_KEY", "STRIPE_API_BASE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["METERLINE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "meterline.cli.app", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip


def status(home: Path) -> dict[str, dict]:
    result = meterline(home, "services", "status", "--json")
    assert result.returncode == 0, result.stderr
    return {s["name"]: s for s in json.loads(result.stdout)}


def our_processes(home: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(home) in line and "ps -eo" not in line]


@pytest.fixture
def home():
    # Outside pytest's basetemp (see tests/conftest.py): PostgreSQL runs as another user.
    path = Path(tempfile.mkdtemp(prefix="meterline-svc-"))
    yield path / "home"
    shutil.rmtree(path, ignore_errors=True)


def test_up_reuses_down_stops_and_data_survives(home):
    first = meterline(home, "services", "up")
    assert first.returncode == 0, first.stderr
    running = status(home)
    assert running["postgres"]["state"] == running["redis"]["state"] == "running"
    assert running["stripe"]["state"] == "running"  # the emulator, since STRIPE_API_KEY is unset
    pg_url, redis_url = running["postgres"]["url"], running["redis"]["url"]
    assert pg_url.startswith("postgresql://postgres@127.0.0.1:")
    assert redis_url.startswith("redis://127.0.0.1:")

    # up twice reuses what runs (same processes)
    assert meterline(home, "services", "up").returncode == 0
    again = status(home)
    assert again["postgres"]["pid"] == running["postgres"]["pid"]
    assert again["redis"]["pid"] == running["redis"]["pid"]
    assert (home / "dagster" / "dagster.yaml").read_text().count("postgres_url") == 1

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("create table kept (v int)")
        conn.execute("insert into kept values (42)")
        dagster_db = conn.execute(
            "select 1 from pg_database where datname = 'meterline_dagster'"
        ).fetchone()
    assert dagster_db is not None
    redis.Redis.from_url(redis_url).set("kept", "yes")

    down = meterline(home, "services", "down")
    assert down.returncode == 0, down.stderr
    stopped = status(home)
    assert stopped["postgres"]["state"] == stopped["redis"]["state"] == "stopped"
    assert our_processes(home) == []

    assert meterline(home, "services", "up").returncode == 0
    try:
        with psycopg.connect(status(home)["postgres"]["url"]) as conn:
            assert conn.execute("select v from kept").fetchone() == (42,)
        assert redis.Redis.from_url(status(home)["redis"]["url"]).get("kept") == b"yes"
    finally:
        assert meterline(home, "services", "down").returncode == 0
    assert our_processes(home) == []


def test_external_services_are_reported_not_started(tmp_path):
    env_home = tmp_path / "ext"
    env = {k: v for k, v in os.environ.items()}
    env.update(METERLINE_HOME=str(env_home), DATABASE_URL="postgresql://u:secret@db.example:5432/m",
               REDIS_URL="redis://cache.example:6379/0")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "meterline.cli.app", "services", "status", "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    statuses = {s["name"]: s for s in json.loads(result.stdout)}
    assert statuses["postgres"]["state"] == "external"
    assert "secret" not in statuses["postgres"]["url"]
    assert statuses["redis"]["state"] == "external"
