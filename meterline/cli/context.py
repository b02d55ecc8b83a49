"""What every command shares: the console it prints to and the runtime it opens lazily."""

from __future__ import annotations

from rich.console import Console

console = Console()


def runtime():
    """Services up, environment exported, schema migrated (imported late so --help is instant)."""
    from meterline.cli.runtime import open_runtime

    return open_runtime()
