"""The ``meterline`` command. Heavy libraries are imported inside commands so --help is instant.

Each noun's commands live in their own module; this one only registers them (in the order
``--help`` lists them) and turns any failure into one line on stderr.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from meterline.cli import backup_cmd, billing_cmd, catalog_cmd, imports_cmd, serve_cmd
from meterline.cli.dead_letters_cmd import dead_letters_app
from meterline.cli.plans_cmd import plans_app
from meterline.cli.services_cmd import services_app
from meterline.cli.stripe_cmd import stripe_app
from meterline.cli.tenants_cmd import tenants_app

app = typer.Typer(
    help="Meterline: usage metering, quotas and usage-based billing for multi-tenant SaaS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(services_app, name="services")
app.add_typer(catalog_cmd.catalog_app, name="catalog")
app.add_typer(tenants_app, name="tenants")
app.add_typer(plans_app, name="plans")
app.add_typer(imports_cmd.costs_app, name="costs")
app.add_typer(billing_cmd.pipeline_app, name="pipeline")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(stripe_app, name="stripe")
app.command()(catalog_cmd.migrate)
app.command("import")(imports_cmd.import_cmd)
app.command()(billing_cmd.invoice)
app.command()(billing_cmd.reconcile)
app.command()(backup_cmd.backup)
app.command()(backup_cmd.restore)
app.command()(serve_cmd.demo)
app.command()(serve_cmd.serve)
app.command()(serve_cmd.ui)
app.command()(serve_cmd.bench)


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
