"""`meterline plans ...`: plan versions and moving tenants between them."""

from __future__ import annotations

from datetime import datetime

import typer

from meterline.cli.catalog_cmd import refresh_plan_caches
from meterline.cli.context import console, runtime

plans_app = typer.Typer(help="Plan versions and migrating tenants to them.", no_args_is_help=True)


def parse_instant(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)", param_hint="--at"
        ) from None


def _money(value) -> str:
    return "-" if value is None else f"{value.normalize():f}"


@plans_app.command("migrate")
def plans_migrate(
    plan: str = typer.Argument(..., help="Plan id from the catalog."),
    to_version: int = typer.Option(..., "--to-version", help="The plan version to move to."),
    at: str = typer.Option(..., "--at", help="When: YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)."),
    tenant: list[str] = typer.Option(
        None, "--tenant", help="Only this tenant (repeatable; default: every tenant of PLAN)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the effect, change nothing."),
) -> None:
    """Move the tenants on another version of PLAN to --to-version from --at."""
    from billing.plan_migration import migrate_plan

    when = parse_instant(at)
    rt = runtime()
    moved = migrate_plan(rt.engine, plan, to_version, when, tenants=tenant or None, dry_run=dry_run)
    head = "would move" if dry_run else "moved"
    console.print(
        f"plan {plan} -> version {to_version} from {when:%Y-%m-%d %H:%M} UTC", markup=False
    )
    for m in moved:
        console.print(
            f"  {m.tenant_id} {head}: version {m.from_version} -> {m.to_version}, "
            f"base fee {_money(m.base_fee_old)} -> {_money(m.base_fee_new)} {m.currency}/month, "
            f"usage this month {_money(m.usage_old)} -> {_money(m.usage_new)} {m.currency}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    if dry_run:
        console.print(f"dry run: {len(moved)} tenant(s) would move; nothing changed")
        return
    for m in moved:
        refresh_plan_caches(rt, m.tenant_id)
    console.print(f"{len(moved)} tenant(s) moved to {plan} version {to_version}")
