"""How bench results are shown: each measure with its target and whether it is met."""

from __future__ import annotations

import os
import platform

from rich.table import Table

TARGETS = {
    "sdk_events_per_s": (">=", 100_000, "record via the SDK, batched (events/s)"),
    "http_events_per_s": (">=", 25_000, "POST /v1/events with batches (events/s)"),
    "quota_check_p50_ms": (None, None, "single-event quota check p50 (ms)"),
    "quota_check_p99_ms": ("<=", 2.0, "single-event quota check p99 (ms)"),
    "loader_rows_per_s": (">=", 100_000, "stream -> Postgres load (rows/s)"),
    "dbt_full_build_s": ("<=", 60.0, "dbt build of all marts (s)"),
    "dbt_incremental_hourly_s": ("<=", 5.0, "incremental hourly dbt run (s)"),
}


def machine() -> str:
    """The machine the numbers were measured on, for the report's title."""
    return f"{platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}"


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def results_table(results: dict) -> Table:
    """One row per measure that has a target (measure, result, target, ok)."""
    table = Table(title=f"meterline bench ({results['machine']})")
    for column in ("measure", "result", "target", "ok"):
        table.add_column(column)
    for key, (op, target, label) in TARGETS.items():
        if key not in results:
            continue
        value = results[key]
        if op is None:
            table.add_row(
                label, f"{value:,.3f}" if isinstance(value, float) else f"{value:,}", "", ""
            )
            continue
        ok = value >= target if op == ">=" else value <= target
        shown = f"{value:,.0f}" if value >= 100 else f"{value:,.3f}"
        table.add_row(label, shown, f"{op} {target:,}", "[green]yes[/]" if ok else "[red]no[/]")
    return table


def other_numbers(results: dict) -> str | None:
    """Every other number, ``key=value`` on one dim line (None when there are none)."""
    extra = {k: v for k, v in results.items() if k not in TARGETS and k != "machine"}
    if not extra:
        return None
    return "[dim]" + ", ".join(f"{k}={v}" for k, v in extra.items()) + "[/]"
