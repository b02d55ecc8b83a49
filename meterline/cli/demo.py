"""`meterline demo`: the whole product, end to end, on generated data.

Services up -> schema -> catalog -> tenants with plan history -> costs -> two closed months
imported as history -> this month recorded live through the SDK (quotas enforced) -> the
Dagster pipeline (load + dbt) -> a per-tenant summary and where to look next.
Safe to run again: every step is idempotent and events are deduplicated by id.

The output is written for someone seeing Meterline for the first time: four numbered parts,
a spinner or progress bar while a step runs and one line (or one short table) when it is
done, about two screens in all. dbt's per-node lines go to ``<METERLINE_HOME>/logs/dbt.log``
(see :mod:`meterline.cli.pipeline`); nothing printed carries a key, a secret or a password
(the admin page gets a signed, expiring link like the tenant page).
"""

from __future__ import annotations

import csv
import json
import time
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from meterline.cli import demo_data as data
from meterline.core import clock, periods
from meterline.core.redaction import url_origin, without_password

HISTORY_MONTHS = 2
LIVE_BATCH = 1000
LINK_TTL = 24 * 3600
API = "http://127.0.0.1:8000"
# Rows per table, so the whole demo fits in about two screens with the default 20 tenants.
MAX_ROWS = 8
MAX_FINANCE_ROWS = 5
PARTS = 4


def _progress(console: Console) -> Progress:
    """A bar while a step runs; it disappears when done and the step prints one line."""
    return Progress(
        TextColumn("  [progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True,
        disable=not console.is_terminal,  # in a file or a pipe, the line after it is enough
    )  # fmt: skip


def _part(console: Console, number: int, title: str) -> None:
    console.rule(f"[bold]{number}/{PARTS}  {title}", align="left")


def _table(title: str, caption: str | None = None) -> Table:
    """A table whose title stays on one line (rich wraps titles to the table's width)."""
    return Table(title=title, caption=caption, min_width=len(title) + 2)


def _more(shown: int, total: int, where: str) -> str | None:
    return f"and {total - shown} more in {where}" if total > shown else None


def run_demo(console: Console, *, tenants: int = 20, scale: float = 1.0) -> None:
    from billing.catalog import load_catalog
    from billing.catalog_store import save_catalog
    from billing.costs import import_costs
    from meterline.cli.billing import run_invoice, run_reconcile
    from meterline.cli.pipeline import run_pipeline
    from meterline.cli.runtime import open_runtime
    from meterline.core.services import service_statuses

    started = time.monotonic()
    console.rule("[bold]Meterline demo")
    console.print(
        "[dim]Generated tenants and usage go through the whole product: Redis -> Postgres -> "
        "dbt marts (Dagster) -> Stripe invoices. Safe to run again.[/]"
    )
    _part(console, 1, "Services, catalog, tenants and usage")
    with console.status("starting services and migrating the schema..."):
        rt = open_runtime(migrate=True)
    for status in service_statuses(rt.settings):
        origin = "embedded" if status.state != "external" else "from the environment"
        url = without_password(status.url) if status.url else "-"
        console.print(f"  {status.name:<9} {url}  [dim]({origin})[/]")
    from meterline.core.db import current_revision

    console.print(
        f"  schema    migrated to revision {current_revision(rt.database_url)}  "
        "[dim](the demo migrates its database itself; otherwise run `meterline migrate`)[/]"
    )

    with console.status("loading the price catalog..."):
        save_catalog(rt.engine, load_catalog())
    console.print("  catalog   billing/catalog.yaml loaded")

    now = clock.now()
    today = now.date()
    this_month = periods.month_start(today)
    people = data.demo_tenants(tenants, today)
    with console.status("creating tenants with their plan history..."):
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

    _part(console, 2, "Pipeline: Redis stream -> raw tables -> dbt marts (Dagster, in process)")
    pipeline = run_pipeline(rt, console, show_log=False)

    _part(console, 3, "What the marts say (schema analytics)")
    _print_usage(console, rt, this_month, live)
    _notify_quotas(console, rt, now)
    _print_finance(console, rt, periods.add_months(this_month, -1))

    billed = periods.last_billable_month(now, rt.settings.billing_grace_hours)
    _part(console, 4, f"Billing {billed:%B %Y}: Stripe invoices and reconciliation")
    run_invoice(rt, console, billed, limit=MAX_ROWS)
    run_reconcile(rt, console, billed, announce=False)
    _where_to_look(console, rt, billed, pipeline.log_path, time.monotonic() - started)


def _notify_quotas(console: Console, rt, now: datetime) -> None:
    """One evaluation of the quota sensor, its notification runs, and where each alert went."""
    from alerts.store import list_alerts
    from meterline.cli.pipeline import run_job
    from orchestration.defs.alerts.sensors import evaluate_quota_tick

    with console.status("quota sensor: comparing live usage with plan limits..."):
        tick = evaluate_quota_tick(rt.engine, rt.redis, prefix=rt.prefix, cursor=None, now=now)
    with console.status(f"quota sensor: {len(tick.run_requests)} thresholds crossed, notifying..."):
        for request in tick.run_requests:
            run_job("quota_notification_job", run_config=request.run_config, tags=request.tags)
    alerts = [a for a in list_alerts(rt.engine, f"{now:%Y-%m}") if a.notified]
    if not alerts:
        console.print(
            f"  quota alerts {now:%B %Y}: no tenant has crossed an alert threshold of a limit "
            "yet (quota_threshold_sensor)"
        )
        return
    # One row per crossed threshold, its channels side by side.
    crossed: dict[tuple[str, str, int], list] = {}
    for alert in alerts:
        crossed.setdefault((alert.tenant_id, alert.meter, alert.threshold), []).append(alert)
    shown = list(crossed.items())[:MAX_ROWS]
    table = _table(
        f"Quota alerts {now:%B %Y} (meterline.alerts, quota_threshold_sensor)",
        _more(len(shown), len(crossed), "meterline.alerts"),
    )
    for column in ("tenant", "meter", "threshold", "notifications"):
        table.add_column(column, justify="right" if column == "threshold" else "left")
    colours = {"sent": "green", "skipped": "dim", "failed": "red", "pending": "yellow"}
    for (tenant_id, meter, threshold), sent in shown:
        notes = ", ".join(
            f"[{colours.get(a.delivery_status, 'white')}]{a.channel} {a.delivery_status}[/]"
            for a in sent
        )
        table.add_row(tenant_id, meter, f"{threshold} %", notes)
    console.print(table)
    outbox = f"{rt.settings.outbox_dir}/" if not rt.settings.smtp_url else "SMTP"
    webhook = (
        url_origin(rt.settings.alert_webhook_url)
        if rt.settings.alert_webhook_url
        else "ALERT_WEBHOOK_URL not set"
    )
    console.print(
        f"  delivered to: email -> {outbox}, redis -> list {rt.prefix}:notifications, "
        f"webhook -> {webhook}",
        soft_wrap=True,
    )


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
            task = progress.add_task(f"importing {month:%Y-%m} (meterline import)", total=lines)
            stats = import_events(
                path, rt.redis, rt.engine, prefix=rt.prefix,
                on_progress=lambda n, task=task: progress.advance(task, n),
            )  # fmt: skip
        console.print(f"  imported  {month:%Y-%m}: {_describe(stats)}")


def _record_live(console: Console, rt, people, this_month, now: datetime, scale: float) -> dict:
    from ingestion.recorder import UsageRecorder

    start = datetime(this_month.year, this_month.month, 1, tzinfo=UTC)
    end = now.replace(minute=0, second=0, microsecond=0)
    # The demo replays this month's traffic as if it had arrived live, hour by hour, so its
    # recorder accepts events back to the month's start; a real client's live events may be at
    # most BILLING_GRACE_HOURS late (older usage goes through `meterline import`).
    recorder = UsageRecorder(
        rt.redis, rt.engine, prefix=rt.prefix, max_lateness=now - start + timedelta(hours=1)
    )
    events = [e for p in people for e in data.usage_events(p, start, end, scale=scale)]
    events.sort(key=lambda e: e["timestamp"])
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    rejected_by_tenant: dict[str, int] = {}
    with _progress(console) as progress:
        task = progress.add_task(
            f"recording {this_month:%Y-%m} live (SDK -> Redis)", total=len(events)
        )
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
    from portal.usage_report import monthly_usage_by_tenant

    tenants = {t.tenant_id: t for t in monthly_usage_by_tenant(rt.engine, month)}
    usage = {tenant_id: t.quantities for tenant_id, t in tenants.items()}
    plans = {tenant_id: t.plan_id for tenant_id, t in tenants.items()}
    ranked = sorted(plans, key=lambda t: -float(usage.get(t, {}).get("api_calls", 0)))
    shown = ranked[:MAX_ROWS]
    table = _table(
        f"Usage per tenant, {month:%B %Y} (analytics.fct_usage_monthly)",
        _more(len(shown), len(ranked), "analytics.fct_usage_monthly"),
    )
    table.add_column("tenant")
    table.add_column("plan")
    for meter in METERS:
        table.add_column(meter, justify="right")
    table.add_column("refused", justify="right")
    for tenant_id in shown:
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
    from billing.finance_report import lowest_margins, mrr_bridge
    from billing.money import format_minor
    from portal.usage_report import closest_to_limit

    overview = closest_to_limit(rt.engine, MAX_FINANCE_ROWS)
    margins = lowest_margins(rt.engine, month, MAX_FINANCE_ROWS)
    bridge = mrr_bridge(rt.engine, 4)
    table = _table("Closest to a limit (analytics.fct_tenant_overview)")
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
    table = _table(
        f"Lowest margins {month:%B %Y}: who is subsidised (analytics.fct_cost_allocation)"
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
    table = _table("MRR bridge (analytics.fct_mrr_summary)")
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
    for values in bridge:
        cur = str(values.get("currency") or "USD").strip()
        table.add_row(
            f"{values['month']:%Y-%m}",
            *[format_minor(int(values[c] or 0), cur) for c in columns[1:]],
        )
    console.print(table)


def _where_to_look(console: Console, rt, billed, dbt_log, seconds: float) -> None:
    """Paths, commands and signed links; never a key, a secret or a password."""
    from meterline.core.db import libpq_url
    from meterline.core.secrets import secret_key
    from portal.signing import mint_admin_link, mint_dashboard_link
    from portal.usage_report import busiest_tenant

    console.rule(f"[bold green]demo complete in {seconds:.0f} s")
    report = rt.settings.reports_dir / f"{billed:%Y-%m}" / "reconciliation.html"
    busiest = busiest_tenant(rt.engine)
    # The secret key `meterline serve` uses, so it accepts these links; they carry no key
    # and no reusable secret: each opens once (then it is a session cookie).
    secret = secret_key(rt.settings)
    tenant_link = mint_dashboard_link(busiest or "acme", secret=secret, ttl=LINK_TTL, base_url=API)
    admin_link = mint_admin_link(secret=secret, ttl=LINK_TTL, base_url=API)
    lines = [
        f"Where to look next (each link opens once, within {LINK_TTL // 3600} h, while "
        "`.venv/bin/meterline serve` runs):",
        "  Dagster UI ............ make ui   (then http://127.0.0.1:3000: runs, assets, lineage)",
        f"  finance report ........ {report}",
        f"  BI / SQL (analytics) .. psql {without_password(libpq_url(rt.database_url))}",
        f"  HTTP API .............. .venv/bin/meterline serve   (docs at {API}/docs)",
        f"  tenant dashboard ...... {tenant_link}",
        f"  admin overview ........ {admin_link}",
        "  tenants ............... .venv/bin/meterline tenants list",
        f"  dbt log ............... {dbt_log}",
        f"  generated data ........ {rt.settings.home / 'demo'}",
        "  stop services ......... .venv/bin/meterline services down",
    ]
    console.print("\n".join(lines), soft_wrap=True)
