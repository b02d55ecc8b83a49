"""Resetting the test database between tests: no rows, no dbt relations, a new installation."""

from __future__ import annotations

from sqlalchemy import Engine, text

TABLES = (
    "raw.usage_events, raw.usage_dead_letters, raw.counter_snapshots, raw.infra_costs, meterline.invoice_reconciliation, "
    "meterline.invoice_lines, meterline.invoice_events, meterline.stripe_webhook_events, meterline.invoices, meterline.stripe_customers, meterline.alerts, "
    "meterline.api_keys, meterline.subscriptions, meterline.tenants, meterline.price_tiers, "
    "meterline.installation, meterline.plan_meters, meterline.plans, meterline.meters, "
    "meterline.rating_rules"
)
DBT_SCHEMAS = ("analytics", "analytics_staging", "analytics_intermediate")


def reset_database(engine: Engine) -> None:
    """Empty every table and drop dbt's schemas: incremental marts would otherwise keep the
    previous test's rows and load watermark (a test at another instant leaves one behind)."""
    with engine.begin() as conn:
        conn.execute(text(f"truncate {TABLES} restart identity cascade"))
        for schema in DBT_SCHEMAS:
            conn.execute(text(f"drop schema if exists {schema} cascade"))
