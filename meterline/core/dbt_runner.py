"""Run the project's dbt commands (``dbt_project/``) against a given database.

dbt runs in a subprocess (the ``dbt`` executable of this virtualenv): its global state, logging
and thread pool stay out of the caller's process, and ``profiles.yml`` reads the connection from
the environment built by :func:`meterline.core.db.dbt_environment`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from meterline.core.db import dbt_environment

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


class DbtError(RuntimeError):
    """A dbt command failed; the message names the failing nodes and where the full log is."""


def _dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    if candidate.exists():
        return str(candidate)
    return "dbt"


def dbt_command(
    database_url: str,
    *args: str,
    vars: Mapping[str, Any] | None = None,
    target_path: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``dbt <args>`` for the Meterline project against ``database_url``.

    ``vars`` become ``--vars`` (JSON). ``target_path`` overrides ``dbt_project/target`` (use a
    private one when several processes build at once). Raises :class:`DbtError` on failure.
    """
    if not args:
        raise ValueError("dbt_command needs a dbt sub-command, e.g. 'build'")
    command = [
        _dbt_executable(),
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    if vars:
        command += ["--vars", json.dumps(dict(vars), default=str)]
    if target_path is not None:
        command += ["--target-path", str(target_path)]
    env = {**os.environ, **dbt_environment(database_url), "PGTZ": "UTC"}
    # Session settings for every dbt connection (models and tests): UTC, no JIT (its compile
    # time dominates these queries), enough work_mem for in-memory hash aggregates.
    env["PGOPTIONS"] = " ".join(
        filter(None, [env.get("PGOPTIONS", ""), "-c jit=off -c work_mem=256MB"])
    )
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DbtError(_failure_message(args, result, target_path))
    return result


def dbt_build(
    database_url: str,
    *args: str,
    vars: Mapping[str, Any] | None = None,
    target_path: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``dbt build [args]``: seeds, models and tests of the project (all, or ``--select ...``)."""
    return dbt_command(database_url, "build", *args, vars=vars, target_path=target_path)


def _failure_message(
    args: tuple[str, ...],
    result: subprocess.CompletedProcess[str],
    target_path: str | os.PathLike[str] | None,
) -> str:
    results_file = Path(target_path or DBT_PROJECT_DIR / "target") / "run_results.json"
    failures: list[str] = []
    try:
        results = json.loads(results_file.read_text())["results"]
        for item in results:
            if item.get("status") in ("error", "fail", "runtime error"):
                message = " ".join((item.get("message") or item["status"]).split())
                failures.append(f"{item['unique_id']}: {message[:300]}")
    except (OSError, ValueError, KeyError):
        pass
    if not failures:
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        failures = [line.strip() for line in lines if "error" in line.lower()][-5:] or lines[-5:]
    return (
        f"`dbt {' '.join(args)}` failed (exit {result.returncode}): "
        + "; ".join(failures[:8])
        + f" (full log: {DBT_PROJECT_DIR / 'logs' / 'dbt.log'})"
    )
