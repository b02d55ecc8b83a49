"""`meterline stripe check`: can the configured Stripe key do what Meterline needs?"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from meterline.cli.context import console

stripe_app = typer.Typer(help="Stripe: check the configured key.", no_args_is_help=True)

MARKS = {
    "ok": "[green]✔[/]",
    "warn": "[yellow]![/]",
    "fail": "[red]✘[/]",
    "skipped": "[dim]-[/]",
}


@stripe_app.command("check")
def stripe_check(
    live: bool = typer.Option(
        False, "--live", help="Allow a live key (creates and deletes a customer, never charges)."
    ),
) -> None:
    """Check that the configured Stripe key can do what Meterline needs, charging no one.

    STRIPE_API_KEY / STRIPE_API_BASE: key mode, account, lists, search, a customer and a
    draft invoice created and deleted, the webhook endpoint, the API version. Exits 1 when a
    required check fails."""
    from billing.stripe_check import check_stripe
    from billing.stripe_client import make_stripe_client
    from meterline.core.settings import Settings

    settings = Settings.from_env()
    if settings.stripe_api_key:
        api_key, api_base = settings.stripe_api_key, settings.stripe_api_base
    else:
        from meterline.core.services import EmbeddedStripe

        emulator = EmbeddedStripe(settings.home)
        emulator.start()
        api_key, api_base = EmbeddedStripe.api_key, emulator.url()
        console.print(
            f"[yellow]STRIPE_API_KEY is unset: checking the built-in emulator at {api_base} "
            "(set STRIPE_API_KEY to check your Stripe account)[/]"
        )
    client = make_stripe_client(api_key, api_base, timeout=20)
    with console.status("checking Stripe..."):
        report = check_stripe(client, api_key, api_base, allow_live=live)
    table = Table(title=f"Stripe at {report.api_base} with key {report.key}", title_justify="left")
    for column in ("", "check", "result", "what to do"):
        table.add_column(column, overflow="fold")
    for check in report.checks:
        name = check.name if check.required else f"{check.name} [dim](optional)[/]"
        table.add_row(MARKS[check.status], name, escape(check.detail), escape(check.fix or "-"))
    console.print(table)
    if not report.ok:
        names = ", ".join(c.name for c in report.failures)
        console.print(f"[red]✘ {len(report.failures)} required check(s) failed:[/] {names}")
        raise typer.Exit(1)
    console.print("[green]✔ this key can do everything Meterline needs[/]")
