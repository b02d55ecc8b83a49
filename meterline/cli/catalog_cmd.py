"""`meterline migrate` and `meterline catalog ...`: the schema and the price catalog."""

from __future__ import annotations

from pathlib import Path

import typer

from meterline.cli.context import console, runtime

catalog_app = typer.Typer(help="The price catalog.", no_args_is_help=True)


def migrate(
    check: bool = typer.Option(
        False, "--check", help="Change nothing: exit 1 unless the schema is at the code's revision."
    ),
) -> None:
    """Create or upgrade the database schema (idempotent). The only command that migrates:
    every other one (and the API and Dagster) stops while the schema is behind the code."""
    from meterline.core.db import current_revision

    rt = runtime(migrate=not check)  # without migrating, a schema behind the code fails here
    state = " (current)" if check else ""
    console.print(f"schema at revision [bold]{current_revision(rt.database_url)}[/]{state}")


@catalog_app.command("load")
def catalog_load(
    path: Path = typer.Argument(None, help="Catalog YAML (default: billing/catalog.yaml)."),
) -> None:
    """Validate the catalog and load it into Postgres: a changed plan gets a new version."""
    from billing.catalog import load_catalog
    from billing.catalog_store import save_catalog

    catalog = load_catalog(path)  # validate before touching any service
    rt = runtime()
    loaded = save_catalog(rt.engine, catalog)
    refresh_plan_caches(rt)
    console.print(
        f"catalog loaded: {loaded.meters} meters, {loaded.plans} plans, {loaded.tiers} price tiers"
    )
    if not loaded.new_versions:
        console.print("no plan changed: no new plan version written")
        return
    for change in loaded.changes:
        console.print(f"  {change}", markup=False, highlight=False)
    for plan_id, version in loaded.new_versions.items():
        console.print(f"plan {plan_id}: version {version} written", markup=False, highlight=False)
    if any(v > 1 for v in loaded.new_versions.values()):
        console.print(
            "subscribed tenants keep paying their version; move them with "
            "`meterline plans migrate PLAN --to-version N --at YYYY-MM-DD`",
            markup=False, highlight=False,
        )  # fmt: skip


def refresh_plan_caches(rt, tenant_id: str | None = None) -> None:
    """Plan limits are cached in Redis; drop the cache so a change takes effect at once."""
    from ingestion.plans import invalidate_plan_cache

    invalidate_plan_cache(rt.redis, prefix=rt.prefix, tenant_id=tenant_id)
