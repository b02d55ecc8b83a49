"""What every command shares: the console it prints to and the runtime it opens lazily."""

from __future__ import annotations

from rich.console import Console

console = Console()


def runtime(*, migrate: bool = False):
    """Services up, environment exported, schema checked, or upgraded with ``migrate`` (only
    `meterline migrate`); imported late so --help is instant."""
    from meterline.cli.runtime import open_runtime

    return open_runtime(migrate=migrate)
