"""Run Dagster jobs in process against the instance in DAGSTER_HOME (so runs show in the UI)."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from functools import cache

from rich.console import Console
from rich.table import Table


@dataclass
class JobReport:
    run_id: str
    success: bool
    seconds: float
    materialized: list[tuple[str, dict]] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    blocked_by: list[str] = field(default_factory=list)  # failed blocking checks


class PipelineError(RuntimeError):
    pass


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

    with warnings.catch_warnings():  # beta/preview notices are for developers, not CLI users
        warnings.simplefilter("ignore")
        definitions = load_definitions()
        job = definitions.resolve_job_def(job_name)
    started = time.monotonic()
    # Step events stay in the run's event log (the UI shows them); failures are summarised below.
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            run_config={**(run_config or {}), **quiet}, instance=instance, raise_on_error=False,
            partition_key=partition_key, tags=tags,
        )  # fmt: skip
    report = JobReport(result.run_id, result.success, time.monotonic() - started)
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        report.materialized.append((mat.asset_key.to_user_string(), meta))
    for event in result.get_asset_check_evaluations():
        if not event.passed:
            name = f"{event.asset_key.to_user_string()}:{event.check_name}"
            report.failed_checks.append(name)
            if event.blocking:
                report.blocked_by.append(name)
    if not result.success:
        failure = next((e for e in result.all_events if e.event_type_value == "STEP_FAILURE"), None)
        detail = ""
        if failure is not None:
            message = (
                failure.event_specific_data.error.message
                if failure.event_specific_data.error
                else ""
            )
            # dbt failures: name the failing models/tests rather than the wrapper exception.
            failing = [
                line.split("[")[0].strip()
                for line in message.splitlines()
                if " FAIL " in line
                or " ERROR " in line
                or line.strip().startswith("Database Error")
            ]
            first = message.strip().splitlines()[0] if message.strip() else "no error message"
            detail = f" at step {failure.step_key}: " + ("; ".join(dict.fromkeys(failing)) or first)
        raise PipelineError(
            f"Dagster job {job_name} failed{detail} (run {result.run_id}; open `make ui` for the logs)"
        )
    return report


MAX_METADATA_IN_TABLE = 4


def run_pipeline(rt, console: Console) -> JobReport:
    with console.status(
        "loading events and building the marts (Dagster job meterline_pipeline)..."
    ):
        report = run_job("meterline_pipeline")
    table = Table(
        title=f"meterline_pipeline: {len(report.materialized)} assets in {report.seconds:.1f} s"
    )
    table.add_column("asset")
    table.add_column("result")
    for key, meta in report.materialized:
        shown = {
            k: v for k, v in meta.items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
        summary = ", ".join(f"{k}={v:,}" for k, v in list(shown.items())[:MAX_METADATA_IN_TABLE])
        table.add_row(key, summary)
    console.print(table)
    if report.failed_checks:
        console.print(f"[yellow]failed checks: {', '.join(report.failed_checks)}[/]")
    if report.blocked_by:
        raise PipelineError(
            f"blocking check {', '.join(report.blocked_by)} failed, so the assets downstream of it "
            f"were not rebuilt; see its metadata in the UI (`make ui`, run {report.run_id})"
        )
    return report
