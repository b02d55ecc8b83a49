"""Billing months: calendar months in UTC, the one partitions definition billing uses."""

import dagster as dg

billing_months = dg.MonthlyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")
