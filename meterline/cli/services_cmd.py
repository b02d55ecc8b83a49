"""`meterline services ...`: the embedded PostgreSQL and Redis."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from meterline.cli.context import console

services_app = typer.Typer(
    help="Embedded local services (PostgreSQL, Redis).", no_args_is_help=True
)


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
