"""`meterline tenants ...`: tenants, their plans and their API keys."""

from __future__ import annotations

import typer
from rich.table import Table

from meterline.cli.arguments import parse_day
from meterline.cli.catalog_cmd import refresh_plan_caches
from meterline.cli.context import console, runtime

tenants_app = typer.Typer(help="Tenants, their plans and their API keys.", no_args_is_help=True)


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

    when = parse_day(at)
    rt = runtime()
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

    when = parse_day(at)
    rt = runtime()
    previous = set_plan(rt.engine, tenant_id, plan, at=when)
    refresh_plan_caches(rt, tenant_id)
    console.print(f"tenant [bold]{tenant_id}[/]: {previous or 'no plan'} -> [bold]{plan}[/]")


@tenants_app.command("cancel")
def tenants_cancel(
    tenant_id: str, at: str = typer.Option(None, "--at", help="Cancel date YYYY-MM-DD.")
) -> None:
    """Cancel a tenant's subscription."""
    from meterline.core.tenants import cancel_tenant

    when = parse_day(at)
    rt = runtime()
    cancel_tenant(rt.engine, tenant_id, at=when)
    refresh_plan_caches(rt, tenant_id)
    console.print(f"tenant [bold]{tenant_id}[/] canceled")


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants with their current plan."""
    from meterline.core.tenants import list_tenants

    rt = runtime()
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
    from meterline.core.api_keys import issue_key

    issued = issue_key(runtime().engine, tenant_id)
    console.print(
        f"API key [bold]{issued.info.key_id}[/] for [bold]{tenant_id}[/] "
        "(store it now, it is not shown again):"
    )
    print(issued.key)


@tenants_app.command("keys")
def tenants_keys(tenant_id: str) -> None:
    """List a tenant's API keys by id and prefix (never the keys themselves)."""
    from meterline.core.api_keys import list_keys

    table = Table(title=f"API keys of {tenant_id}")
    for column in ("key id", "prefix", "status", "created", "revoked"):
        table.add_column(column)
    for k in list_keys(runtime().engine, tenant_id):
        revoked = f"{k.revoked_at:%Y-%m-%d %H:%M:%S}" if k.revoked_at else "-"
        table.add_row(
            k.key_id, k.prefix + "...", k.status, f"{k.created_at:%Y-%m-%d %H:%M:%S}", revoked
        )
    console.print(table)


@tenants_app.command("revoke-key")
def tenants_revoke_key(key_id: str) -> None:
    """Revoke an API key by id: API calls and portal sessions made with it stop within
    METERLINE_KEY_CACHE_TTL seconds."""
    from meterline.core.api_keys import revoke_key

    revoked = revoke_key(runtime().engine, key_id)
    console.print(
        f"key [bold]{revoked.key_id}[/] of [bold]{revoked.tenant_id}[/] revoked "
        f"(at {revoked.revoked_at:%Y-%m-%d %H:%M:%S} UTC)"
    )


@tenants_app.command("rotate-key")
def tenants_rotate_key(key_id: str) -> None:
    """Replace an API key: revoke KEY_ID and issue a new key for the same tenant."""
    from meterline.core.api_keys import rotate_key

    issued = rotate_key(runtime().engine, key_id)
    console.print(
        f"key [bold]{key_id}[/] revoked; new key [bold]{issued.info.key_id}[/] for "
        f"[bold]{issued.info.tenant_id}[/] (store it now, it is not shown again):"
    )
    print(issued.key)
