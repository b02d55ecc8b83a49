"""docker-compose.yml's Dagster services run the pipeline with exactly their environment.

The compose file is read with PyYAML and interpolated like `docker compose` does
(:mod:`tests.compose`) from a test environment that sets the required secrets to test values
and points ``STRIPE_API_KEY``/``STRIPE_API_BASE`` at this run's Stripe emulator (as an operator
sets them; the emulator is not a compose service). The environment of ``dagster-daemon`` (the
webserver's is the same) is then taken as it is, except for what only exists inside compose:

- ``DATABASE_URL`` and ``REDIS_URL`` name the hosts ``postgres`` and ``redis``: they become
  this machine's servers (the test's throwaway database, and ``METERLINE_REDIS_PREFIX`` set to
  the test's key prefix so the shared Redis stays isolated);
- ``/var/lib/meterline`` is the ``meterline-home`` volume: it becomes a temporary folder;
- ``PATH`` is the image's ``ENV PATH`` (this checkout's virtualenv first).

With that environment, ``meterline migrate`` runs as the ``migrate`` service does, then one
subprocess loads the code location (``orchestration.definitions``, as in workspace.yaml) and
materializes every asset in one run: ``raw/usage_events`` and ``raw/counter_snapshots``,
the whole dbt project (a subset of dbt models fails on a fresh database: dbt's eager indirect
selection runs relationship tests whose other parent was not built), then
``billing/stripe_invoices`` and ``billing/invoice_reconciliation`` for a closed month; then it
evaluates the quota-threshold sensor and runs the notification it requests, and the
run-failure sensor on a run that failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from meterline.core import clock, periods
from tests.compose import load_compose, service_environment

ROOT = Path(__file__).resolve().parents[3]
VOLUME = "/var/lib/meterline"
TEST_SECRETS = {
    "POSTGRES_PASSWORD": "pg-test-password",
    "METERLINE_ADMIN_KEY": "admin-test-key",
    "METERLINE_SECRET_KEY": "secret-test-key",
    "ALERT_WEBHOOK_SECRET": "whsec_dGVzdC13ZWJob29rLXNlY3JldA==",
}


def compose_environment(test_services, home: Path, **overrides: str) -> dict[str, str]:
    compose = load_compose(
        {
            **TEST_SECRETS,
            "STRIPE_API_KEY": "sk_test_meterline_tests",
            "STRIPE_API_BASE": test_services.stripe_api_base,
        }
    )
    env = service_environment(compose, "dagster-daemon")
    assert env == service_environment(compose, "dagster-webserver")
    assert "@postgres:5432/" in env["DATABASE_URL"] and env["REDIS_URL"].startswith(
        "redis://redis:"
    )
    env["DATABASE_URL"] = test_services.database_url
    env["REDIS_URL"] = test_services.redis_url
    env["METERLINE_REDIS_PREFIX"] = test_services.redis_prefix
    env = {k: v.replace(VOLUME, str(home)) for k, v in env.items()}
    metrics_dir = home / "prometheus"  # the services' tmpfs
    metrics_dir.mkdir(exist_ok=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    env.update(overrides)
    return env


def run(env: dict[str, str], *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def usage(db, redis_client, test_services):
    """A payg tenant with 110,000 API calls in a closed month ($95.00 to invoice) and a free
    tenant at 85 % of its 1,000 calls this month, recorded live (in the Redis stream)."""
    from ingestion.recorder import UsageRecorder
    from meterline.core.tenants import create_tenant

    month = periods.add_months(periods.month_start(clock.today()), -2)  # closed on any day
    create_tenant(db, "umbrella", "payg", at=month - timedelta(days=40))
    create_tenant(db, "tiny", "free", at=month - timedelta(days=40), email="ops@tiny.example")
    with db.begin() as conn:
        conn.execute(
            text(
                "insert into raw.usage_events "
                "(tenant_id, event_id, meter, value, occurred_at, received_at) "
                "values ('umbrella', 'old-1', 'api_calls', 110000, :at, :at)"
            ),
            {"at": datetime(month.year, month.month, 10, tzinfo=UTC)},
        )
    events = [{"id": f"live-{i}", "tenant_id": "tiny", "meter": "api_calls", "value": 1}
              for i in range(850)]  # fmt: skip
    UsageRecorder(redis_client, db, prefix=test_services.redis_prefix).record(events)
    return month


def test_the_dagster_services_run_the_pipeline_with_the_compose_environment(
    usage, db, test_services, tmp_path
):
    month = usage
    env = compose_environment(test_services, tmp_path)
    # no variable a resource needs is missing: the optional ones take their defaults
    assert "METERLINE_REPORTS_DIR" not in env and "SMTP_URL" in env and env["SMTP_URL"] == ""

    meterline = str(Path(sys.executable).with_name("meterline"))
    migrated = run(env, meterline, "migrate")  # the compose `migrate` service's command
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert (tmp_path / "dagster" / "dagster.yaml").exists()  # written by the migrate service

    done = run(env, sys.executable, "-m", "tests.integration.deploy.compose_location", str(month))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["success"], report["failures"]
    assert report["checks_failed"] == []
    materialized = set(report["materialized"])
    assert {
        "raw/usage_events", "raw/counter_snapshots", "analytics/fct_invoice_lines",
        "analytics/fct_invoices", "billing/stripe_invoices", "billing/invoice_reconciliation",
    } <= materialized  # fmt: skip
    assert {"quota_threshold_sensor", "admin_run_failure_sensor"} <= set(report["sensors"])
    assert report["run_keys"] == [f"quota:tiny:api_calls:80:{clock.today():%Y-%m}"]
    assert report["notified"] == [True]

    with db.connect() as conn:
        loaded = conn.execute(
            text("select count(*) from raw.usage_events where tenant_id = 'tiny'")
        ).scalar()
        invoices = conn.execute(
            text("select tenant_id, amount_due from meterline.invoices where period = :p"),
            {"p": month},
        ).all()
        reconciled = (
            conn.execute(
                text(
                    "select distinct category from meterline.invoice_reconciliation "
                    "where period = :p"
                ),
                {"p": month},
            )
            .scalars()
            .all()
        )
    assert loaded == 850  # drained from the stream with the compose prefix
    assert ("umbrella", 9500) in [tuple(r) for r in invoices]
    assert reconciled == ["matched"]
    # defaults of the unset variables, under the (remapped) volume
    assert (tmp_path / "reports" / f"{month:%Y-%m}" / "reconciliation.csv").exists()  # default dir
    mails = [p.read_text() for p in (tmp_path / "outbox").glob("*.eml")]  # no SMTP_URL: outbox
    assert any("ops@tiny.example" in m for m in mails), "the quota alert"
    admin = [m for m in mails if "admin@localhost" in m]  # METERLINE_ADMIN_EMAIL's default
    assert any("compose_failure_check" in m and report["failed_run"] in m for m in admin)


@pytest.mark.parametrize("variable", ["DATABASE_URL", "REDIS_URL"])
def test_the_code_location_refuses_to_load_without_a_required_variable(
    variable, migrated_db, test_services, tmp_path
):
    """Dropped from the service's environment, the variable is named in the load error."""
    env = compose_environment(test_services, tmp_path)
    del env[variable]
    failed = run(env, sys.executable, "-c", "from orchestration.definitions import defs; defs()")
    assert failed.returncode != 0
    last = failed.stderr.strip().splitlines()[-1]
    assert f"{variable} is not set" in last and "meterline services up" in last, last
