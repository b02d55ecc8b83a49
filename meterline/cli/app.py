"""The ``meterline`` command. Heavy libraries are imported inside commands so --help is instant."""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Meterline: usage metering, quotas and usage-based billing for multi-tenant SaaS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
services_app = typer.Typer(
    help="Embedded local services (PostgreSQL, Redis).", no_args_is_help=True
)
catalog_app = typer.Typer(help="The price catalog.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants and their plans.", no_args_is_help=True)
costs_app = typer.Typer(help="Infrastructure costs for cost allocation.", no_args_is_help=True)
pipeline_app = typer.Typer(help="Ingest and transform.", no_args_is_help=True)
app.add_typer(services_app, name="services")
app.add_typer(catalog_app, name="catalog")
app.add_typer(tenants_app, name="tenants")
app.add_typer(costs_app, name="costs")
app.add_typer(pipeline_app, name="pipeline")

console = Console()


def _parse_day(value: str | None, option: str = "--at") -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date: use YYYY-MM-DD", param_hint=option
        ) from None


def _parse_month(value: str) -> date:
    try:
        parsed = datetime.strptime(value, "%Y-%m")
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a month: use YYYY-MM", param_hint="--month"
        ) from None
    return parsed.date().replace(day=1)


# --- services --------------------------------------------------------------------------------
@services_app.command("up")
def services_up() -> None:
    """Start the embedded services that are not configured (reuses running ones)."""
    from meterline.core.services import ensure_services, service_statuses
    from meterline.core.settings import Settings

    settings = Settings.from_env()
    ensure_services(settings)
    _print_statuses(service_statuses(settings))


@services_app.command("down")
def services_down() -> None:
    """Stop the embedded services (data stays under METERLINE_HOME)."""
    from meterline.core.services import service_statuses, stop_services
    from meterline.core.settings import Settings

    settings = Settings.from_env()
    stop_services(settings)
    _print_statuses(service_statuses(settings))


@services_app.command("status")
def services_status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show each service's URL and state."""
    from meterline.core.services import service_statuses
    from meterline.core.settings import Settings

    statuses = service_statuses(Settings.from_env())
    if as_json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        _print_statuses(statuses)


def _print_statuses(statuses) -> None:
    table = Table(title="Meterline services")
    for column in ("service", "state", "url", "pid"):
        table.add_column(column)
    colours = {"running": "green", "stopped": "yellow", "external": "cyan"}
    for s in statuses:
        table.add_row(
            s.name,
            f"[{colours.get(s.state, 'white')}]{s.state}[/]",
            s.url or "-",
            str(s.pid or "-"),
        )
    console.print(table)


# --- schema and catalog ----------------------------------------------------------------------
@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (idempotent)."""
    from meterline.core.db import current_revision

    rt = _runtime()
    console.print(f"schema at revision [bold]{current_revision(rt.database_url)}[/]")


@catalog_app.command("load")
def catalog_load(
    path: Path = typer.Argument(None, help="Catalog YAML (default: billing/catalog.yaml)."),
) -> None:
    """Validate the catalog and load it into Postgres."""
    from billing.catalog import load_catalog
    from billing.catalog_store import save_catalog

    catalog = load_catalog(path)  # validate before touching any service
    rt = _runtime()
    counts = save_catalog(rt.engine, catalog)
    _refresh_plan_caches(rt)
    console.print(
        f"catalog loaded: {counts['meters']} meters, {counts['plans']} plans, {counts['tiers']} price tiers"
    )


def _refresh_plan_caches(rt, tenant_id: str | None = None) -> None:
    """Plan limits are cached in Redis; drop the cache so a change takes effect at once."""
    from ingestion.plans import invalidate_plan_cache

    invalidate_plan_cache(rt.redis, prefix=rt.prefix, tenant_id=tenant_id)


# --- tenants ---------------------------------------------------------------------------------
@tenants_app.command("create")
def tenants_create(
    tenant_id: str = typer.Argument(..., help="Tenant id (letters, digits, _ - .)."),
    plan: str = typer.Option(..., "--plan", help="Plan id from the catalog."),
    at: str = typer.Option(None, "--at", help="Start date YYYY-MM-DD (default: now)."),
    name: str = typer.Option(None, "--name"),
    email: str = typer.Option(None, "--email"),
    currency: str = typer.Option(None, "--currency"),
) -> None:
    """Create a tenant on a plan."""
    from meterline.core.tenants import create_tenant

    when = _parse_day(at)
    rt = _runtime()
    create_tenant(rt.engine, tenant_id, plan, name=name, email=email, currency=currency, at=when)
    console.print(f"tenant [bold]{tenant_id}[/] created on plan [bold]{plan}[/]")


@tenants_app.command("set-plan")
def tenants_set_plan(
    tenant_id: str,
    plan: str,
    at: str = typer.Option(None, "--at", help="Change date YYYY-MM-DD (default: now)."),
) -> None:
    """Move a tenant to another plan (takes effect at once for quotas)."""
    from meterline.core.tenants import set_plan

    when = _parse_day(at)
    rt = _runtime()
    previous = set_plan(rt.engine, tenant_id, plan, at=when)
    _refresh_plan_caches(rt, tenant_id)
    console.print(f"tenant [bold]{tenant_id}[/]: {previous or 'no plan'} -> [bold]{plan}[/]")


@tenants_app.command("cancel")
def tenants_cancel(
    tenant_id: str, at: str = typer.Option(None, "--at", help="Cancel date YYYY-MM-DD.")
) -> None:
    """Cancel a tenant's subscription."""
    from meterline.core.tenants import cancel_tenant

    when = _parse_day(at)
    rt = _runtime()
    cancel_tenant(rt.engine, tenant_id, at=when)
    _refresh_plan_caches(rt, tenant_id)
    console.print(f"tenant [bold]{tenant_id}[/] canceled")


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants with their current plan."""
    from meterline.core.tenants import list_tenants

    rt = _runtime()
    table = Table(title="Tenants")
    for column in ("tenant", "name", "plan", "since", "status", "email"):
        table.add_column(column)
    for t in list_tenants(rt.engine):
        since = f"{t.plan_since:%Y-%m-%d}" if t.plan_since else "-"
        table.add_row(t.tenant_id, t.name, t.plan_id or "-", since, t.status, t.email or "-")
    console.print(table)


@tenants_app.command("issue-key")
def tenants_issue_key(tenant_id: str) -> None:
    """Issue an API key for a tenant (shown once; only its hash is stored)."""
    from meterline.core.tenants import issue_api_key

    rt = _runtime()
    key = issue_api_key(rt.engine, tenant_id)
    console.print(f"API key for [bold]{tenant_id}[/] (store it now, it is not shown again):")
    print(key)


# --- data in ---------------------------------------------------------------------------------
@app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="JSON Lines (.jsonl/.json) or CSV file of events."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Load the valid rows, write rejects to a file."
    ),
    rejects: Path = typer.Option(
        None, "--rejects", help="Where to write rejected rows (with --skip-invalid)."
    ),
) -> None:
    """Bulk-load historical events (same schema and dedupe as live events)."""
    if not file.exists():
        raise FileNotFoundError(2, "no such file", str(file))
    from ingestion.importer import import_events

    rt = _runtime()
    rejects_path = rejects or file.with_suffix(file.suffix + ".rejects.jsonl")
    with _progress(f"importing {file.name}", total=_count_lines(file)) as advance:
        stats = import_events(
            file, rt.redis, rt.engine, prefix=rt.prefix, skip_invalid=skip_invalid,
            rejects_path=rejects_path if skip_invalid else None, on_progress=advance,
        )  # fmt: skip
    console.print(
        f"import: {stats.lines:,} lines, {stats.accepted:,} new events "
        f"({stats.live_events:,} live through Redis, {stats.historical_events:,} straight to Postgres), "
        f"{stats.duplicates:,} duplicates skipped in {stats.elapsed_seconds:.1f} s"
    )
    if skip_invalid and stats.rejected:
        console.print(f"[yellow]{stats.rejected} rejected rows written to {rejects_path}[/]")


@costs_app.command("import")
def costs_import(
    file: Path = typer.Argument(..., help="CSV: month,cost_pool,driver_meter,amount"),
) -> None:
    """Import monthly infrastructure costs (replaces the same month and pool)."""
    from billing.costs import import_costs

    rows = import_costs(_runtime().engine, file)
    console.print(f"{rows} cost rows imported from {file}")


# --- pipeline --------------------------------------------------------------------------------
@pipeline_app.command("run")
def pipeline_run() -> None:
    """Load the stream and counters into Postgres and build every dbt model, now (in process)."""
    from meterline.cli.pipeline import run_pipeline

    rt = _runtime()
    run_pipeline(rt, console)


@app.command()
def invoice(month: str = typer.Option(..., "--month", help="Billing month YYYY-MM.")) -> None:
    """Create the month's Stripe invoices (materializes that billing partition)."""
    from meterline.cli.billing import run_invoice

    period = _parse_month(month)
    run_invoice(_runtime(), console, period)


@app.command()
def reconcile(month: str = typer.Option(..., "--month", help="Billing month YYYY-MM.")) -> None:
    """Reconcile Stripe against the expected amounts and write the finance report."""
    from meterline.cli.billing import run_reconcile

    period = _parse_month(month)
    run_reconcile(_runtime(), console, period)


@app.command()
def demo(
    tenants: int = typer.Option(20, help="How many demo tenants."),
    scale: float = typer.Option(1.0, help="Multiply the generated usage volume."),
) -> None:
    """Run the whole product end to end on generated data, then print where to look."""
    from meterline.cli.demo import run_demo

    run_demo(console, tenants=tenants, scale=scale)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port."),
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json)."""
    import uvicorn

    from meterline.server import catalog_cost_estimator, create_app

    rt = _runtime()
    application = create_app(
        rt.engine, rt.redis, prefix=rt.prefix, admin_key=rt.settings.admin_key,
        cost_estimator=catalog_cost_estimator(rt.engine),
    )  # fmt: skip
    base = f"http://{host}:{port}"
    console.print(f"Meterline API on {base}  (docs: {base}/docs)")
    console.print(f"  tenant dashboard  {base}/dashboard?key=<tenant API key>")
    console.print(
        f"  admin overview    {base}/admin?key=<METERLINE_ADMIN_KEY>"
        if rt.settings.admin_key
        else "  admin overview    set METERLINE_ADMIN_KEY and restart to enable /admin"
    )
    uvicorn.run(application, host=host, port=port, log_level="info")


@app.command()
def ui(port: int = typer.Option(3000, help="Dagster webserver port.")) -> None:
    """Start the Dagster UI (`dagster dev`) on the same services the CLI uses."""
    rt = _runtime()
    root = Path(__file__).resolve().parents[2]
    console.print(
        f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={rt.settings.resolved_dagster_home})"
    )
    dagster = Path(sys.executable).with_name("dagster")
    os.execv(
        str(dagster),
        [
            str(dagster),
            "dev",
            "-w",
            str(root / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
    )


@app.command()
def bench(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    events: int = typer.Option(200_000, help="Events for the ingest benchmarks."),
    transform_events: int = typer.Option(
        10_000_000, help="Events for the dbt benchmark (0 skips it)."
    ),
) -> None:
    """Measure throughput and latency against the real services and print the numbers."""
    from meterline.cli.bench import bench_command

    bench_command(
        _runtime(), console, as_json=as_json, events=events, transform_events=transform_events
    )


# --- helpers ---------------------------------------------------------------------------------
def _runtime():
    from meterline.cli.runtime import open_runtime

    return open_runtime()


def _count_lines(path: Path) -> int | None:
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None


class _progress:
    """A rich progress bar as a context manager that yields an ``advance(n)`` callback."""

    def __init__(self, description: str, total: int | None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=console, transient=False,
        )  # fmt: skip
        self._task = self._progress.add_task(description, total=total)

    def __enter__(self):
        self._progress.start()
        return lambda n=1: self._progress.advance(self._task, n)

    def __exit__(self, *exc):
        self._progress.stop()


def main() -> None:
    """Entry point: run the app; any failure becomes one line on stderr and a non-zero exit."""
    from meterline.cli.errors import describe
    from meterline.core.settings import debug_requested

    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/]")
        sys.exit(130)
    except Exception as exc:
        if debug_requested():
            raise
        message, user_error = describe(exc)
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        err.print(f"[red]error:[/] {message}")
        details = getattr(exc, "errors", None)  # e.g. every invalid line of an import
        if isinstance(details, list):
            for detail in details:
                err.print(f"  {detail}", markup=False)
        if not user_error:
            err.print(
                "[dim]this looks like a bug: rerun with METERLINE_DEBUG=1 for the traceback[/]"
            )
        sys.exit(1)


if __name__ == "__main__":
    main()
