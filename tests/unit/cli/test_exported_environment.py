"""The CLI exports its resolved settings to the processes it starts (dbt, Dagster, uvicorn
workers); a variable a library reads by its presence must stay absent when unset."""

from __future__ import annotations

import os
import subprocess
import sys

from meterline.cli.runtime import export_environment
from meterline.core.services import ServiceUrls
from meterline.core.settings import READ_BY_LIBRARIES, Settings


def _export(monkeypatch, **variables) -> None:
    for name in READ_BY_LIBRARIES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    urls = ServiceUrls(
        database_url="postgresql://u@127.0.0.1:5432/meterline",
        redis_url="redis://127.0.0.1:6379/0",
        dagster_database_url="postgresql://u@127.0.0.1:5432/dagster",
        stripe_api_key="sk_test_unit",
        stripe_api_base=None,
        stripe_emulated=True,
    )
    # monkeypatch restores os.environ afterwards: register every variable it may write
    for name in settings.as_environment():
        monkeypatch.setenv(name, os.environ.get(name, ""))
    export_environment(settings, urls)


def test_unset_library_variables_are_not_exported_empty(monkeypatch, tmp_path):
    _export(monkeypatch)
    assert not any(name in os.environ for name in READ_BY_LIBRARIES)
    # the symptom: a child process counting a metric left counter_<pid>.db in its directory
    subprocess.run(
        [sys.executable, "-c", "from ingestion import metrics; metrics.EVENTS_ACCEPTED.inc()"],
        cwd=tmp_path, check=True, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_set_library_variables_are_exported(monkeypatch, tmp_path):
    _export(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
