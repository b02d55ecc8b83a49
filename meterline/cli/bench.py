"""`meterline bench`: run :func:`meterline.bench.run.run_bench`, print a table or JSON."""

from __future__ import annotations

import json

from rich.console import Console


def bench_command(
    rt, console: Console, *, as_json: bool, events: int, transform_events: int
) -> dict:
    from meterline.bench.report import other_numbers, results_table
    from meterline.bench.run import run_bench

    results = run_bench(
        rt.database_url, rt.redis,
        redis_prefix=rt.prefix, events=events, transform_events=transform_events,
        stage=lambda description: console.status(description, spinner="dots"),
    )  # fmt: skip
    if as_json:
        print(json.dumps(results, indent=2, default=str))
    else:
        console.print(results_table(results))
        extra = other_numbers(results)
        if extra:
            console.print(extra)
    return results
