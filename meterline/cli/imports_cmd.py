"""`meterline import` and `meterline costs import`: bulk data in."""

from __future__ import annotations

from pathlib import Path

import typer

from meterline.cli.context import console, runtime

costs_app = typer.Typer(help="Infrastructure costs for cost allocation.", no_args_is_help=True)


def import_cmd(
    file: Path = typer.Argument(..., help="JSON Lines (.jsonl/.json) or CSV file of events."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Load the valid rows, write rejects to a file."
    ),
    rejects: Path = typer.Option(
        None, "--rejects", help="Where to write rejected rows (with --skip-invalid)."
    ),
) -> None:
    """Bulk-load historical events (same schema and dedupe as live events)."""
    if not file.exists():
        raise FileNotFoundError(2, "no such file", str(file))
    from ingestion.importer import import_events

    rt = runtime()
    rejects_path = rejects or file.with_suffix(file.suffix + ".rejects.jsonl")
    with _progress(f"importing {file.name}", total=_count_lines(file)) as advance:
        stats = import_events(
            file, rt.redis, rt.engine, prefix=rt.prefix, skip_invalid=skip_invalid,
            rejects_path=rejects_path if skip_invalid else None, on_progress=advance,
        )  # fmt: skip
    console.print(
        f"import: {stats.lines:,} lines, {stats.accepted:,} new events "
        f"({stats.live_events:,} live through Redis, {stats.historical_events:,} straight to Postgres), "
        f"{stats.duplicates:,} duplicates skipped in {stats.elapsed_seconds:.1f} s"
    )
    if skip_invalid and stats.rejected:
        console.print(f"[yellow]{stats.rejected} rejected rows written to {rejects_path}[/]")


@costs_app.command("import")
def costs_import(
    file: Path = typer.Argument(..., help="CSV: month,cost_pool,driver_meter,amount"),
) -> None:
    """Import monthly infrastructure costs (replaces the same month and pool)."""
    from billing.costs import import_costs

    rows = import_costs(runtime().engine, file)
    console.print(f"{rows} cost rows imported from {file}")


def _count_lines(path: Path) -> int | None:
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None


class _progress:
    """A rich progress bar as a context manager that yields an ``advance(n)`` callback."""

    def __init__(self, description: str, total: int | None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=console, transient=False,
        )  # fmt: skip
        self._task = self._progress.add_task(description, total=total)

    def __enter__(self):
        self._progress.start()
        return lambda n=1: self._progress.advance(self._task, n)

    def __exit__(self, *exc):
        self._progress.stop()
