"""`meterline demo`: the whole product, end to end, on generated data.

Services up -> schema -> catalog -> tenants with plan history -> costs -> two closed months
imported as history -> this month recorded live through the SDK (quotas enforced) -> the
Dagster pipeline (load + dbt) -> a per-tenant summary and where to look next.
Safe to run again: every step is idempotent and events are deduplicated by id.
"""

from __future__ import annotations

import csv
import json
import time
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import text

from meterline.cli import demo_data as data
from meterline.core import clock, periods

HISTORY_MONTHS = 2
LIVE_BATCH = 1000


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TimeElapsedColumn(), console=console,
    )  # fmt: skip


def run_demo(console: Console, *, tenants: int = 20, scale: float = 1.0) -> None:
    from billing.catalog import load_catalog
    from billing.catalog_store import save_catalog
    from meterline.cli.billing import run_invoice, run_reconcile
    from meterline.cli.pipeline import run_pipeline
    from meterline.cli.runtime import open_runtime
    from meterline.core.costs import import_costs
    from meterline.core.services import service_statuses

    started = time.monotonic()
    console.rule("[bold]Meterline demo")
    with console.status("starting services and migrating the schema..."):
        rt = open_runtime()
    for status in service_statuses(rt.settings):
        origin = "embedded" if status.state != "external" else "from the environment"
        console.print(f"  {status.name:<9} {status.url}  [dim]({origin})[/]")

    save_catalog(rt.engine, load_catalog())
    console.print("  catalog   billing/catalog.yaml loaded")

    now = clock.now()
    today = now.date()
    this_month = periods.month_start(today)
    people = data.demo_tenants(tenants, today)
    created = _ensure_tenants(rt, people)
    console.print(f"  tenants   {len(people)} ({created} new)")

    costs_file = rt.settings.home / "demo" / "costs.csv"
    costs_file.parent.mkdir(parents=True, exist_ok=True)
    with costs_file.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["month", "cost_pool", "driver_meter", "amount"])
        writer.writeheader()
        for back in range(HISTORY_MONTHS, 0, -1):
            writer.writerows(data.cost_rows(periods.add_months(this_month, -back)))
    console.print(f"  costs     {import_costs(rt.engine, costs_file)} cost pools imported")

    _import_history(console, rt, people, this_month, scale)
    live = _record_live(console, rt, people, this_month, now, scale)

    console.print()
    run_pipeline(rt, console)
    _print_usage(console, rt, this_month, live)
    _notify_quotas(console, rt, now)
    _print_finance(console, rt, periods.add_months(this_month, -1))

    billed = periods.last_billable_month(now, rt.settings.billing_grace_hours)
    console.rule(f"[bold]Billing {billed:%B %Y}")
    run_invoice(rt, console, billed)
    run_reconcile(rt, console, billed)
    _where_to_look(console, rt, billed, time.monotonic() - started)


def _notify_quotas(console: Console, rt, now: datetime) -> None:
    """One evaluation of the quota sensor, its notification runs, and where each alert went."""
    from ingestion.alerts import list_alerts
    from meterline.cli.pipeline import run_job
    from orchestration.defs.alerts.sensors import evaluate_quota_tick

    tick = evaluate_quota_tick(rt.engine, rt.redis, prefix=rt.prefix, cursor=None, now=now)
    with console.status(f"quota sensor: {len(tick.run_requests)} thresholds crossed, notifying..."):
        for request in tick.run_requests:
            run_job("quota_notification_job", run_config=request.run_config, tags=request.tags)
    alerts = list_alerts(rt.engine, f"{now:%Y-%m}")
    table = Table(title=f"Quota alerts {now:%B %Y} (meterline.alerts, quota_threshold_sensor)")
    for column in ("tenant", "meter", "threshold", "channel", "status", "delivered to"):
        table.add_column(column)
    colours = {"sent": "green", "skipped": "dim", "failed": "red", "pending": "yellow"}
    outbox = f"{rt.settings.outbox_dir}/" if not rt.settings.smtp_url else "SMTP"
    for alert in alerts:
        if not alert.notified:
            continue
        where = {
            "email": outbox,
            "admin_email": outbox,
            "webhook": rt.settings.alert_webhook_url or "(ALERT_WEBHOOK_URL not set)",
            "redis": f"redis list {rt.prefix}:notifications",
        }.get(alert.channel, alert.channel)
        status = colours.get(alert.delivery_status, "white")
        table.add_row(
            alert.tenant_id, alert.meter, f"{alert.threshold} %", alert.channel,
            f"[{status}]{alert.delivery_status}[/]", where,
        )  # fmt: skip
    console.print(table)


def _ensure_tenants(rt, people: list[data.DemoTenant]) -> int:
    from meterline.core import tenants as tenant_store

    existing = {t.tenant_id for t in tenant_store.list_tenants(rt.engine)}
    created = 0
    for person in people:
        if person.tenant_id in existing:
            continue
        tenant_store.create_tenant(
            rt.engine, person.tenant_id, person.plan, name=person.name, email=person.email,
            at=person.created,
        )  # fmt: skip
        for when, change in person.history:
            if change == "cancel":
                tenant_store.cancel_tenant(rt.engine, person.tenant_id, at=when)
            else:
                tenant_store.set_plan(rt.engine, person.tenant_id, change, at=when)
        created += 1
    return created


def _import_history(console: Console, rt, people, this_month, scale: float) -> None:
    from ingestion.importer import import_events

    for back in range(HISTORY_MONTHS, 0, -1):
        month = periods.add_months(this_month, -back)
        end = periods.add_months(month, 1)
        path = rt.settings.home / "demo" / f"events-{month:%Y-%m}.jsonl"
        start_dt = datetime(month.year, month.month, 1, tzinfo=UTC)
        end_dt = datetime(end.year, end.month, 1, tzinfo=UTC)
        lines = 0
        with path.open("w") as handle:
            for person in people:
                for event in data.usage_events(person, start_dt, end_dt, scale=scale):
                    handle.write(json.dumps(event, separators=(",", ":")) + "\n")
                    lines += 1
        with _progress(console) as progress:
            task = progress.add_task(f"history {month:%Y-%m} (meterline import)", total=lines)
            stats = import_events(
                path, rt.redis, rt.engine, prefix=rt.prefix,
                on_progress=lambda n, task=task: progress.advance(task, n),
            )  # fmt: skip
        console.print(f"  imported  {month:%Y-%m}: {_describe(stats)}")


def _record_live(console: Console, rt, people, this_month, now: datetime, scale: float) -> dict:
    from ingestion.recorder import UsageRecorder

    recorder = UsageRecorder(rt.redis, rt.engine, prefix=rt.prefix)
    start = datetime(this_month.year, this_month.month, 1, tzinfo=UTC)
    # Live events must be at most 35 days old; the month start always is.
    end = now.replace(minute=0, second=0, microsecond=0)
    events = [e for p in people for e in data.usage_events(p, start, end, scale=scale)]
    events.sort(key=lambda e: e["timestamp"])
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    rejected_by_tenant: dict[str, int] = {}
    with _progress(console) as progress:
        task = progress.add_task(f"live {this_month:%Y-%m} (SDK -> Redis)", total=len(events))
        for i in range(0, len(events), LIVE_BATCH):
            batch = events[i : i + LIVE_BATCH]
            result = recorder.record(batch, now=now)
            totals["accepted"] += result.accepted
            totals["duplicates"] += result.duplicates
            totals["rejected"] += result.rejected
            for event, outcome in zip(batch, result.outcomes, strict=True):
                if outcome.status == "rejected":
                    tid = event["tenant_id"]
                    rejected_by_tenant[tid] = rejected_by_tenant.get(tid, 0) + 1
            progress.advance(task, len(batch))
    console.print(
        f"  live      {totals['accepted']:,} accepted, {totals['duplicates']:,} duplicates "
        f"(already recorded), {totals['rejected']:,} refused by hard quotas"
    )
    return rejected_by_tenant


def _describe(stats) -> str:
    parts = []
    for name in ("accepted", "inserted", "loaded", "duplicates", "rejected"):
        value = getattr(stats, name, None)
        if isinstance(value, int):
            parts.append(f"{value:,} {name}")
    return ", ".join(parts) or str(stats)


METERS = ("api_calls", "storage_gb", "compute_seconds", "bandwidth_gb", "active_users")


def _print_usage(console: Console, rt, month, rejected: dict[str, int]) -> None:
    with rt.engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                select t.tenant_id, coalesce(s.plan_id, 'canceled') as plan_id, u.meter, u.quantity
                from meterline.tenants t
                left join meterline.subscriptions s
                  on s.tenant_id = t.tenant_id and s.effective_to is null
                left join analytics.fct_usage_monthly u
                  on u.tenant_id = t.tenant_id and u.month = :month
                order by t.tenant_id
                """
            ),
            {"month": month},
        ).all()
    usage: dict[str, dict[str, float]] = {}
    plans: dict[str, str] = {}
    for tenant_id, plan_id, meter, quantity in rows:
        plans[tenant_id] = plan_id
        if meter:
            usage.setdefault(tenant_id, {})[meter] = quantity
    table = Table(title=f"Usage per tenant, {month:%B %Y} (analytics.fct_usage_monthly)")
    table.add_column("tenant")
    table.add_column("plan")
    for meter in METERS:
        table.add_column(meter, justify="right")
    table.add_column("refused", justify="right")
    for tenant_id in sorted(plans, key=lambda t: -float(usage.get(t, {}).get("api_calls", 0))):
        cells = [_fmt(usage.get(tenant_id, {}).get(m)) for m in METERS]
        refused = rejected.get(tenant_id, 0)
        table.add_row(
            tenant_id, plans[tenant_id], *cells, f"[red]{refused:,}[/]" if refused else ""
        )
    console.print(table)


def _fmt(value) -> str:
    if value is None:
        return "-"
    number = float(value)
    return f"{number:,.0f}" if number >= 100 or number == int(number) else f"{number:,.2f}"


def _print_finance(console: Console, rt, month) -> None:
    """Tenant overview, cost allocation (who subsidises whom) and the MRR bridge, from the marts."""
    from billing.money import format_minor

    with rt.engine.connect() as conn:
        overview = conn.execute(
            text(
                """
                select tenant_id, plan_id, top_meter, top_percent, estimated_cost, projected_cost, currency
                from analytics.fct_tenant_overview
                order by top_percent desc nulls last limit 8
                """
            )
        ).all()
        margins = conn.execute(
            text(
                """
                select tenant_id, sum(revenue) as revenue, sum(allocated_cost) as cost,
                       sum(revenue) - sum(allocated_cost) as margin, min(currency) as currency
                from analytics.fct_cost_allocation where month = :month
                group by tenant_id order by margin asc limit 8
                """
            ),
            {"month": month},
        ).all()
        bridge = conn.execute(
            text("select * from analytics.fct_mrr_summary order by month desc limit 4")
        ).all()
    table = Table(title="Closest to a limit (analytics.fct_tenant_overview)")
    for column in ("tenant", "plan", "top meter", "% of limit", "cost so far", "projected"):
        table.add_column(
            column, justify="right" if column[0] in "%cp" and column != "plan" else "left"
        )
    for r in overview:
        pct = f"{float(r.top_percent):.0f} %" if r.top_percent is not None else "-"
        table.add_row(
            r.tenant_id, r.plan_id or "-", r.top_meter or "-", pct,
            format_minor(int(r.estimated_cost or 0), r.currency.strip()),
            format_minor(int(r.projected_cost or 0), r.currency.strip()),
        )  # fmt: skip
    console.print(table)
    table = Table(
        title=f"Lowest margins {month:%B %Y}: who is subsidised (analytics.fct_cost_allocation)"
    )
    for column in ("tenant", "revenue", "allocated cost", "margin"):
        table.add_column(column, justify="left" if column == "tenant" else "right")
    for r in margins:
        cur = (r.currency or "USD").strip()
        colour = "red" if (r.margin or 0) < 0 else "green"
        table.add_row(
            r.tenant_id, format_minor(int(r.revenue or 0), cur), format_minor(int(r.cost or 0), cur),
            f"[{colour}]{format_minor(int(r.margin or 0), cur)}[/]",
        )  # fmt: skip
    console.print(table)
    table = Table(title="MRR bridge (analytics.fct_mrr_summary)")
    columns = (
        "month",
        "starting",
        "new",
        "expansion",
        "contraction",
        "churn",
        "reactivation",
        "ending",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "month" else "right")
    for r in reversed(bridge):
        values = r._mapping
        cur = str(values.get("currency") or "USD").strip()
        table.add_row(
            f"{values['month']:%Y-%m}",
            *[format_minor(int(values[c] or 0), cur) for c in columns[1:]],
        )
    console.print(table)


def _where_to_look(console: Console, rt, billed, seconds: float) -> None:
    from ingestion.dashboard import mint_dashboard_link, resolve_secret
    from meterline.core.db import libpq_url

    console.rule(f"[bold green]demo complete in {seconds:.0f} s")
    report = rt.settings.reports_dir / f"{billed:%Y-%m}" / "reconciliation.html"
    with rt.engine.connect() as conn:
        busiest = conn.execute(
            text(
                "select tenant_id from analytics.fct_tenant_overview "
                "order by top_percent desc nulls last limit 1"
            )
        ).scalar()
    api = "http://127.0.0.1:8000"
    link = mint_dashboard_link(
        busiest or "acme", secret=resolve_secret(rt.settings.admin_key), ttl=86400, base_url=api
    )
    console.print(
        "\n".join(
            [
                "Where to look next:",
                "  Dagster UI ............ make ui            (then http://127.0.0.1:3000)",
                f"  finance report ........ {report}",
                f"  BI / SQL (analytics) .. psql {libpq_url(rt.database_url)}",
                "  HTTP API .............. .venv/bin/meterline serve   (docs at http://127.0.0.1:8000/docs)",
                f"  tenant dashboard ...... {link}   (valid 24 h, while `meterline serve` runs)",
                f"  admin overview ........ {api}/admin?key={rt.settings.admin_key}",
                "  tenants ............... .venv/bin/meterline tenants list",
                "  stop services ......... .venv/bin/meterline services down",
                f"  generated data ........ {rt.settings.home / 'demo'}",
            ]
        )
    )
