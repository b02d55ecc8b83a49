"""Secrets kept under ``METERLINE_HOME``: the one place that creates and reads them.

A secret that is not configured is generated at random once and stored in a file of its own,
mode 0600, so every process of one installation (the CLI, ``meterline serve``, Dagster) agrees
on it without it ever being printed or put in a URL.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def stored_secret(home: Path, name: str, *, configured: str | None = None, nbytes: int = 32) -> str:
    """``configured`` when set, else the secret in ``<home>/<name>``, created on first use."""
    if configured:
        return configured
    path = Path(home) / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text().strip()
    value = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
