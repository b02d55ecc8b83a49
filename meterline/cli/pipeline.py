"""Run Dagster jobs in process against the instance in DAGSTER_HOME (so runs show in the UI).

The terminal belongs to the CLI: what a run prints (dbt's per-node lines, which dagster-dbt
echoes to ``sys.stdout``) is appended to ``<METERLINE_HOME>/logs/dbt.log`` instead, and
Dagster's console logger stays silent; a failed run becomes one :class:`PipelineError` line
that names the failing step and where the full output is. Every step event stays in the run's
event log, so the Dagster UI shows the whole run.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from rich.console import Console
from rich.table import Table

from meterline.core import clock


@dataclass
class JobReport:
    run_id: str
    success: bool
    seconds: float
    materialized: list[tuple[str, dict]] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    blocked_by: list[str] = field(default_factory=list)  # failed blocking checks
    passed_checks: int = 0
    log_path: Path | None = None


class PipelineError(RuntimeError):
    pass


def run_log_path() -> Path:
    """Where in-process runs write what they print (dbt's log lines): under METERLINE_HOME."""
    from meterline.core.settings import Settings

    return Settings.from_env().home / "logs" / "dbt.log"


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _ThreadOutput:
    """A ``sys.stdout`` that sends one thread's writes to a log file and every other thread's
    to the stream it replaced, so a rich spinner (its own thread) keeps drawing on the terminal
    while the run's output (the calling thread) goes to the file. Rich finds the terminal
    through ``rich_proxied_file``."""

    def __init__(self, path: Path, fallback, header: str):
        self._path, self._fallback, self._header = path, fallback, header
        self._owner = threading.get_ident()
        self._file = None

    def _sink(self):
        if self._file is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._path.open("a", encoding="utf-8")
            self._file.write(self._header)
        return self._file

    def write(self, text: str) -> int:
        if threading.get_ident() != self._owner:
            return self._fallback.write(text)
        self._sink().write(_ANSI.sub("", text))
        return len(text)

    def flush(self) -> None:
        if threading.get_ident() != self._owner:
            self._fallback.flush()
        elif self._file is not None:
            self._file.flush()

    def isatty(self) -> bool:
        return False if threading.get_ident() == self._owner else self._fallback.isatty()

    @property
    def rich_proxied_file(self):
        return getattr(self._fallback, "rich_proxied_file", self._fallback)

    def __getattr__(self, name: str):
        return getattr(self._fallback, name)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@contextmanager
def output_to_log(path: Path, header: str) -> Iterator[Path]:
    """Send what this thread prints to ``path`` (appended; ``header`` before the first line)."""
    previous = sys.stdout
    routed = _ThreadOutput(path, previous, header)
    sys.stdout = routed
    try:
        yield path
    finally:
        sys.stdout = previous
        routed.close()


@cache
def load_definitions():
    """Load the code location once per process (the demo runs several jobs)."""
    from orchestration.definitions import defs

    return defs()


def run_job(
    job_name: str,
    *,
    partition_key: str | None = None,
    tags: dict | None = None,
    run_config: dict | None = None,
) -> JobReport:
    import dagster as dg

    run_id = str(uuid.uuid4())
    log_path = run_log_path()
    header = f"\n== {clock.iso()} Dagster job {job_name} (run {run_id}) ==\n"
    # dbt (and anything else the run prints) goes to the log file, not the terminal; a stale
    # manifest is re-parsed while the definitions load, so that is routed too.
    with output_to_log(log_path, header):
        with warnings.catch_warnings():  # beta/preview notices are for developers, not CLI users
            warnings.simplefilter("ignore")
            definitions = load_definitions()
            job = definitions.resolve_job_def(job_name)
        started = time.monotonic()
        # Dagster's console logger stays quiet: step events stay in the run's event log (the
        # UI shows them) and a failure is summarised in one line below.
        quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
        with dg.DagsterInstance.get() as instance:
            result = job.execute_in_process(
                run_config={**(run_config or {}), **quiet}, instance=instance,
                raise_on_error=False, partition_key=partition_key, tags=tags, run_id=run_id,
            )  # fmt: skip
    report = JobReport(result.run_id, result.success, time.monotonic() - started)
    report.log_path = log_path
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        report.materialized.append((mat.asset_key.to_user_string(), meta))
    for event in result.get_asset_check_evaluations():
        if event.passed:
            report.passed_checks += 1
            continue
        name = f"{event.asset_key.to_user_string()}:{event.check_name}"
        report.failed_checks.append(name)
        if event.blocking:
            report.blocked_by.append(name)
    if not result.success:
        failure = next((e for e in result.all_events if e.event_type_value == "STEP_FAILURE"), None)
        detail = f" at step {failure.step_key}: {_failure_reason(failure)}" if failure else ""
        output = f"; dbt output in {log_path}" if log_path.exists() else ""
        raise PipelineError(
            f"Dagster job {job_name} failed{detail} (run {result.run_id}{output}; "
            "open `make ui` for the logs)"
        )
    return report


def _failure_reason(failure) -> str:
    """What failed, in one line: the failing dbt models and tests from the step's structured
    failure (``failed_nodes``, read from dbt's run_results.json by the dbt step), else the first
    line of the step's error."""
    data = failure.event_specific_data
    user_failure = data.user_failure_data
    nodes = user_failure.metadata.get("failed_nodes") if user_failure else None
    if nodes is not None and nodes.value:
        return "; ".join(nodes.value)
    message = (data.error.message if data.error else "").strip()
    return message.splitlines()[0] if message else "no error message"


MAX_METADATA_IN_TABLE = 4


def _is_dbt(meta: dict) -> bool:
    return "unique_id" in meta  # dagster-dbt's materializations name their dbt node


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def run_pipeline(rt, console: Console, *, show_log: bool = True) -> JobReport:
    """Ingest and transform now; print one row per ingestion asset and one for all of dbt.

    ``show_log`` prints where dbt's output went (the demo lists it with its other paths)."""
    with console.status(
        "loading events and building the marts (Dagster job meterline_pipeline)..."
    ):
        report = run_job("meterline_pipeline")
    checks = f"{report.passed_checks} checks passed" + (
        f", [yellow]{len(report.failed_checks)} failed[/]" if report.failed_checks else ""
    )
    table = Table(
        title=f"meterline_pipeline: {len(report.materialized)} assets, {checks}, "
        f"in {report.seconds:.1f} s"
    )
    table.add_column("asset")
    table.add_column("result")
    models = 0
    for key, meta in report.materialized:
        if _is_dbt(meta):
            models += 1
            continue
        shown = {
            k: v for k, v in meta.items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
        items = list(shown.items())[:MAX_METADATA_IN_TABLE]
        table.add_row(key, ", ".join(f"{k}={_number(v)}" for k, v in items))
    if models:
        table.add_row("dbt models and seeds", f"{models} built and tested (dbt build)")
    console.print(table)
    if show_log and report.log_path is not None:
        console.print(f"dbt output: {report.log_path}", soft_wrap=True)
    if report.failed_checks:
        console.print(f"[yellow]failed checks: {', '.join(report.failed_checks)}[/]")
    if report.blocked_by:
        raise PipelineError(
            f"blocking check {', '.join(report.blocked_by)} failed, so the assets downstream of it "
            f"were not rebuilt; see its metadata in the UI (`make ui`, run {report.run_id})"
        )
    return report
