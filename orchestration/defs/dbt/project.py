"""The dbt project as Dagster sees it: one cached ``DbtProject`` and its CLI resource."""

from __future__ import annotations

import os
import shutil
import sys
from functools import cache
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"


def _dbt_on_path() -> None:
    """dbt is installed next to this interpreter; make it findable without an activated venv."""
    bin_dir = str(Path(sys.executable).parent)
    if shutil.which("dbt") is None and (Path(bin_dir) / "dbt").exists():
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


@cache
def meterline_dbt_project() -> DbtProject:
    """The project, with a manifest that matches the models on disk.

    Instead of ``prepare_if_dev()`` (which re-parses in every `dagster dev` process), parse only
    when a model, macro, seed or test changed since the last manifest, everywhere: the webserver,
    the daemon and the CLI then load in seconds and never run on an outdated manifest.
    """
    _dbt_on_path()
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    if _manifest_is_stale(project):
        project.preparer.prepare(project)
    return project


def _manifest_is_stale(project: DbtProject) -> bool:
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    watched = [DBT_PROJECT_DIR / "dbt_project.yml"]
    for folder in ("models", "macros", "seeds", "tests", "snapshots", "analyses"):
        root = DBT_PROJECT_DIR / folder
        if root.exists():
            watched.extend(p for p in root.rglob("*") if p.is_file())
    return any(p.stat().st_mtime > built for p in watched)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=meterline_dbt_project())
