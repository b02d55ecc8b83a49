"""dbt through dagster-dbt, run the project's one way (:mod:`meterline.core.dbt_runner`).

dagster-dbt streams dbt's structured events into materializations and asset checks; the dbt
process itself gets the environment of :func:`~meterline.core.dbt_runner.dbt_process_environment`
and a failure is raised with the failing nodes read from that invocation's ``run_results.json``.

``DbtCliResource.cli`` (dagster-dbt 0.29) builds the dbt process's environment from
``os.environ`` and takes no environment of its own (an ``env=`` argument was declined upstream in
favour of a scoped environment). So the variables are present only while the process is spawned,
under a lock, and the previous values are back before :func:`start_dbt` returns: nothing of a
run (connection, clock instant) stays in the process environment afterwards.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliInvocation, DbtCliResource

from meterline.core.dbt_runner import (
    dbt_process_environment,
    failed_nodes,
    failure_message,
    logged_errors,
)

_SPAWN = threading.Lock()


def start_dbt(
    dbt: DbtCliResource, database_url: str, args: Sequence[str], **cli_options: Any
) -> DbtCliInvocation:
    """``dbt.cli(args, **cli_options)`` against ``database_url``. It does not raise on dbt's
    exit code: consume its events (``stream()`` or ``wait()``), then :func:`raise_if_failed`."""
    with _SPAWN, _spawn_environment(dbt_process_environment(database_url)):
        return dbt.cli(list(args), raise_on_error=False, **cli_options)


def stream_dbt(
    dbt: DbtCliResource, database_url: str, args: Sequence[str], **cli_options: Any
) -> Iterator[Any]:
    """The Dagster events of ``dbt <args>`` (materializations, asset checks), then
    :func:`raise_if_failed`."""
    invocation = start_dbt(dbt, database_url, args, **cli_options)
    yield from invocation.stream()
    raise_if_failed(invocation, args)


def raise_if_failed(invocation: DbtCliInvocation, args: Sequence[str]) -> None:
    """A ``dg.Failure`` whose one-line description names the failing models and tests, and
    whose metadata ``failed_nodes`` lists them (what ``meterline pipeline run`` prints)."""
    returncode = invocation.process.wait()
    if returncode == 0:
        return
    log = invocation.target_path / "dbt.log"
    failures = failed_nodes(invocation.target_path) or logged_errors(log)
    raise dg.Failure(
        description=failure_message(" ".join(args), returncode, failures, log=log),
        metadata={"failed_nodes": dg.MetadataValue.json(failures)},
    )


@contextmanager
def _spawn_environment(values: Mapping[str, str]) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
