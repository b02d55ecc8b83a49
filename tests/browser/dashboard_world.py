"""Fixture data for the dashboard tests: tenants on every plan, 90 days of usage recorded
through the real recorder (Redis) and loader (Postgres), alerts, invoices, infrastructure
costs, the dbt marts built, and the API served by uvicorn on a free loopback port.

Current-month quantities are fixed (see ``CURRENT``) so tests can state what the quota bars
must show; the marts are then the source of truth the pages are compared with.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from sqlalchemy import Engine, text

from tests.database import reset_database

ADMIN_KEY = "admin-key-for-dashboard-tests"
SECRET_KEY = "dashboard-test-secret-key"  # signs sessions and links, independent of ADMIN_KEY

# tenant -> (plan, name)
TENANTS = {
    "acme": ("starter", "Acme Corp"),
    "globex": ("pro", "Globex"),
    "initech": ("free", "Initech"),
    "hooli": ("payg", "Hooli"),
    "umbrella": ("enterprise", "Umbrella"),  # canceled last month
}
# current month usage: tenant -> meter -> quantity (active_users: distinct users)
CURRENT = {
    "acme": {"api_calls": 46000, "storage_gb": "4.1", "bandwidth_gb": "9.6", "active_users": 3},
    "globex": {"api_calls": 120000, "storage_gb": 20, "bandwidth_gb": 40, "active_users": 12},
    "initech": {"api_calls": 1000, "active_users": 1},
    "hooli": {"api_calls": 25000, "storage_gb": 8, "compute_seconds": 5000},
}
# daily api_calls before this month (last 89 days), for the trend charts
HISTORY = {"acme": 1500, "globex": 4000, "hooli": 800, "umbrella": 2000}


@dataclass
class World:
    now: datetime
    month: date
    last_month: date
    keys: dict[str, str]
    engine: Engine
    redis: object
    prefix: str


def month_start(moment: date, back: int = 0) -> date:
    year, month = moment.year, moment.month - back
    while month < 1:
        year, month = year - 1, month + 12
    return date(year, month, 1)


def _split(total: Decimal, parts: int) -> list[Decimal]:
    step = Decimal("0.1") if total != total.to_integral_value() else Decimal(1)
    base = (total / parts).quantize(step, rounding=ROUND_DOWN)
    return [base] * (parts - 1) + [total - base * (parts - 1)]


def build_world(engine: Engine, redis, *, prefix: str, database_url: str, dbt_target: Path):
    from billing.catalog import load_catalog
    from billing.catalog_store import save_catalog
    from ingestion.loader import load_stream
    from ingestion.recorder import UsageRecorder
    from meterline.core.dbt_runner import dbt_build
    from meterline.core.tenants import cancel_tenant, create_tenant, issue_api_key

    now = datetime.now(UTC).replace(microsecond=0)
    this_month = month_start(now.date())
    last_month = month_start(now.date(), 1)
    reset_database(engine)
    save_catalog(engine, load_catalog())
    stale = list(redis.scan_iter(match=f"{prefix}:*", count=1000))
    if stale:
        redis.delete(*stale)

    since = datetime.combine(now.date() - timedelta(days=120), datetime.min.time(), UTC)
    keys = {}
    for tenant, (plan, name) in TENANTS.items():
        create_tenant(engine, tenant, plan, name=name, email=f"ops@{tenant}.test", at=since)
        keys[tenant] = issue_api_key(engine, tenant)
    cancel_tenant(
        engine,
        "umbrella",
        at=datetime.combine(last_month, datetime.min.time(), UTC) + timedelta(days=3),
    )

    recorder = UsageRecorder(redis, engine, prefix=prefix)
    first_day = datetime.combine(this_month, datetime.min.time(), UTC)
    history: list[dict] = []
    for tenant, per_day in HISTORY.items():
        for back in range(1, 90):
            day = now.date() - timedelta(days=back)
            at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=9)
            if at >= first_day or (tenant == "umbrella" and day >= last_month + timedelta(days=3)):
                continue
            value = per_day + (back % 7) * 100
            history.append(_event(tenant, f"h-{tenant}-{back}", "api_calls", value, at))
            history.append(_event(tenant, f"hs-{tenant}-{back}", "storage_gb", 2, at))
    for i in range(0, len(history), 1000):
        recorder.record(history[i : i + 1000], now=now, historical=True, enforce_limits=False)

    days = (now - first_day).days + 1
    current: list[dict] = []
    for tenant, meters in CURRENT.items():
        for meter, quantity in meters.items():
            quantity = Decimal(str(quantity))
            for d in range(days):
                at = min(first_day + timedelta(days=d, hours=12), now - timedelta(minutes=1))
                if meter == "active_users":
                    continue
                if meter == "storage_gb":
                    value = (
                        quantity
                        if d == days - 1
                        else (quantity * (d + 1) / days).quantize(
                            Decimal("0.1"), rounding=ROUND_DOWN
                        )
                    )
                else:
                    value = _split(quantity, days)[d]
                current.append(_event(tenant, f"c-{tenant}-{meter}-{d}", meter, value, at))
            if meter == "active_users":
                at = max(first_day, now - timedelta(minutes=5))
                for u in range(int(quantity)):
                    current.append(
                        _event(tenant, f"u-{tenant}-{u}", meter, 1, at, {"user_id": f"user{u}"})
                    )
    result = recorder.record(current, now=now, historical=True, enforce_limits=True)
    assert result.accepted == len(current), [o for o in result.outcomes if o.status != "accepted"]
    # one refused attempt above initech's hard limit
    refused = recorder.record(
        [_event("initech", "over-1", "api_calls", 5, now - timedelta(minutes=1))], now=now
    )
    assert refused.rejected == 1
    load_stream(redis, engine, prefix=prefix)

    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into meterline.alerts (tenant_id, meter, period_start, threshold, "
                "usage_percent, quantity, limit_quantity, channel, delivery_status, attempts, "
                "fired_at) values "
                "('acme', 'api_calls', :m, 80, 81.2, 40600, 50000, 'email', 'sent', 1, :t1),"
                "('acme', 'api_calls', :m, 90, 92, 46000, 50000, 'webhook', 'failed', 3, :t2),"
                "('acme', 'bandwidth_gb', :m, 95, 96, 9.6, 10, 'email', 'sent', 1, :t2),"
                "('initech', 'api_calls', :m, 100, 100, 1000, 1000, 'email', 'sent', 1, :t2)"
            ),
            {"m": this_month, "t1": now - timedelta(days=2), "t2": now - timedelta(hours=3)},
        )
        invoices = [
            ("acme", month_start(now.date(), 2), "in_acme_2", "paid", 4150),
            ("acme", last_month, "in_acme_1", "open", 5321),
            ("globex", last_month, "in_globex_1", "paid", 12900),
            ("umbrella", month_start(now.date(), 2), "in_umbrella_2", "uncollectible", 49900),
        ]
        for tenant, period, stripe_id, status, amount in invoices:
            conn.execute(
                text(
                    "insert into meterline.invoices (tenant_id, period, stripe_invoice_id, "
                    "stripe_customer_id, status, currency, amount_due, finalized_at) values "
                    "(:t, :p, :s, :c, :st, 'USD', :a, now())"
                ),
                {
                    "t": tenant,
                    "p": period,
                    "s": stripe_id,
                    "c": f"cus_{tenant}",
                    "st": status,
                    "a": amount,
                },
            )
        conn.execute(
            text(
                "insert into raw.infra_costs (month, cost_pool, driver_meter, amount) values "
                "(:m, 'compute', 'api_calls', 180.00), (:m, 'support', null, 45.50)"
            ),
            {"m": last_month},
        )
    dbt_build(
        database_url,
        "--resource-type", "seed", "--resource-type", "model",
        target_path=dbt_target,
    )  # fmt: skip
    return World(now, this_month, last_month, keys, engine, redis, prefix)


def _event(tenant, event_id, meter, value, at, dimensions=None) -> dict:
    event = {
        "id": event_id,
        "tenant_id": tenant,
        "meter": meter,
        "value": float(value) if isinstance(value, Decimal) and value % 1 else int(value),
        "timestamp": at.isoformat().replace("+00:00", "Z"),
    }
    if dimensions:
        event["dimensions"] = dimensions
    return event


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(world: World, **kwargs) -> Iterator[str]:
    """The real API app (with the dashboard) on uvicorn in a thread; yields the base URL."""
    import uvicorn

    from meterline.server import create_app

    kwargs.setdefault("secret_key", SECRET_KEY)
    # configured, so fuzzing reaches the Stripe webhook's signature check (unset: always 503)
    kwargs.setdefault("stripe_webhook_secret", "whsec_dashboard_world_stripe_endpoint")
    app = create_app(world.engine, world.redis, prefix=world.prefix, admin_key=ADMIN_KEY, **kwargs)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("dashboard test server did not start within 20 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
