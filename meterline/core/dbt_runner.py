"""How this project runs dbt: the one place that knows it.

Every dbt process of Meterline (the Dagster assets through dagster-dbt, the CLI, the bench, the
tests) gets what is defined here: the project and profiles directory (``dbt_project/``), the
executable next to this interpreter, and :func:`dbt_process_environment` (the connection and the
clock's instant from :func:`meterline.core.db.dbt_environment`, ``PGTZ``, ``PGOPTIONS``). A
failure is reported from dbt's structured results (``run_results.json``), naming the failing
nodes: :func:`failed_nodes` and :func:`failure_message`.

:func:`dbt_command` runs dbt in a subprocess: its global state, logging and thread pool stay out
of the caller's process. Nothing here imports dbt or Dagster.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from meterline.core.db import dbt_environment
from meterline.core.settings import Settings

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DBT_PROFILES_DIR = DBT_PROJECT_DIR
DBT_LOG = DBT_PROJECT_DIR / "logs" / "dbt.log"
# Session settings for every dbt connection (models and tests): no JIT (its compile time
# dominates these queries), enough work_mem for in-memory hash aggregates.
SESSION_OPTIONS = "-c jit=off -c work_mem=256MB"
FAILED_STATUSES = ("error", "fail", "runtime error")
MAX_NODES_IN_MESSAGE = 8
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TABLE_RULE = re.compile(r"^\|[\s|-]+\|$")
_CONTRACT_ADVICE = "Please ensure the name, data_type, and number of columns"


class DbtError(RuntimeError):
    """A dbt command failed; the message names the failing nodes and where the full log is."""


def dbt_executable() -> str:
    """The ``dbt`` installed next to this interpreter (no activated virtualenv needed)."""
    candidate = Path(sys.executable).with_name("dbt")
    if candidate.exists():
        return str(candidate)
    return "dbt"


def dbt_process_environment(database_url: str | None) -> dict[str, str]:
    """What a dbt process needs on top of the caller's environment, taken now.

    The connection (``profiles.yml`` reads it) and ``METERLINE_AS_OF`` (the clock's instant;
    omitted with the connection when ``database_url`` is None, for commands that never reach
    the database such as ``parse``), ``METERLINE_BI_ROLE`` (validated; the role the marts
    grant SELECT to), ``PGTZ=UTC``, ``PGOPTIONS`` (the caller's plus
    :data:`SESSION_OPTIONS`) and no anonymous usage statistics unless the caller chose.
    """
    env = dbt_environment(database_url) if database_url else {}
    env["METERLINE_BI_ROLE"] = Settings.from_env().bi_role  # validated; the marts' grants
    env["PGTZ"] = "UTC"
    env["PGOPTIONS"] = " ".join(filter(None, [os.environ.get("PGOPTIONS", ""), SESSION_OPTIONS]))
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = os.environ.get(
        "DBT_SEND_ANONYMOUS_USAGE_STATS", "false"
    )
    return env


def dbt_command(
    database_url: str | None,
    *args: str,
    vars: Mapping[str, Any] | None = None,
    target_path: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``dbt <args>`` for the Meterline project against ``database_url``.

    ``vars`` become ``--vars`` (JSON). ``target_path`` overrides ``dbt_project/target`` (use a
    private one when several processes build at once). ``database_url`` None: a command that
    does not connect (``parse``). Raises :class:`DbtError` on failure.
    """
    if not args:
        raise ValueError("dbt_command needs a dbt sub-command, e.g. 'build'")
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROFILES_DIR),
    ]
    if vars:
        command += ["--vars", json.dumps(dict(vars), default=str)]
    if target_path is not None:
        command += ["--target-path", str(target_path)]
    env = {**os.environ, **dbt_process_environment(database_url)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        results_dir = Path(target_path or DBT_PROJECT_DIR / "target")
        failures = failed_nodes(results_dir) or _error_lines(result.stdout)
        raise DbtError(failure_message(" ".join(args), result.returncode, failures, log=DBT_LOG))
    return result


def dbt_build(
    database_url: str,
    *args: str,
    vars: Mapping[str, Any] | None = None,
    target_path: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``dbt build [args]``: seeds, models and tests of the project (all, or ``--select ...``)."""
    return dbt_command(database_url, "build", *args, vars=vars, target_path=target_path)


def failed_nodes(target_path: str | os.PathLike[str]) -> list[str]:
    """``"<unique_id>: <message>"`` for each failed node in ``<target_path>/run_results.json``
    (dbt's structured results); empty when there is no such file (dbt failed before running)."""
    try:
        results = json.loads((Path(target_path) / "run_results.json").read_text())["results"]
    except (OSError, ValueError, KeyError):
        return []
    failures = []
    for item in results:
        if item.get("status") in FAILED_STATUSES:
            message = _essentials(item.get("message") or item["status"])
            failures.append(f"{item['unique_id']}: {message[:300]}")
    return failures


def _essentials(message: str) -> str:
    """A dbt error message on one line, without what repeats on every error of its kind: the
    macro call stack (``> called by ...``), the advice of a failed contract and its table's
    separator row, so that a contract failure still names the column within the limit."""
    kept = [
        line.strip()
        for line in message.splitlines()
        if not line.strip().startswith(">")
        and not _TABLE_RULE.match(line.strip())
        and not line.strip().startswith(_CONTRACT_ADVICE)
    ]
    return " ".join(" ".join(kept).split())


def logged_errors(log_path: str | os.PathLike[str]) -> list[str]:
    """The error-level messages of a JSON-format dbt log (``DBT_LOG_FORMAT=json``, as
    dagster-dbt runs it): what went wrong when dbt stopped before running any node."""
    errors: list[str] = []
    try:
        lines = Path(log_path).read_text().splitlines()
    except OSError:
        return errors
    for line in lines:
        try:
            info = json.loads(line)["info"]
        except (ValueError, KeyError, TypeError):
            continue
        if info.get("level") == "error" and info.get("msg"):
            errors.append(" ".join(_ANSI.sub("", info["msg"]).split())[:300])
    return errors[-5:]


def failure_message(command: str, returncode: int, failures: list[str], *, log: Path) -> str:
    """One line: the dbt command, its exit code, the failing nodes and where the full log is."""
    return (
        f"`dbt {command}` failed (exit {returncode}): "
        + "; ".join(failures[:MAX_NODES_IN_MESSAGE])
        + f" (full log: {log})"
    )


def _error_lines(stdout: str) -> list[str]:
    """Without run results (dbt stopped before running a node): its last error lines."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    return [line for line in lines if "error" in line.lower()][-5:] or lines[-5:]
