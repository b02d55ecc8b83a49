"""The dbt project as Dagster sees it: one cached ``DbtProject`` and its CLI resource.

How dbt runs (directories, executable, environment, failures) is
:mod:`meterline.core.dbt_runner`; this module only hands that to dagster-dbt.
"""

from __future__ import annotations

import fcntl
from functools import cache

from dagster_dbt import DbtCliResource, DbtProject

from meterline.core.dbt_runner import DBT_PROFILES_DIR, DBT_PROJECT_DIR, dbt_command, dbt_executable


@cache
def meterline_dbt_project() -> DbtProject:
    """The project, with a manifest that matches the models on disk.

    Instead of ``prepare_if_dev()`` (which re-parses in every `dagster dev` process), parse only
    when a model, macro, seed or test changed since the last manifest, everywhere: the webserver,
    the daemon and the CLI then load in seconds and never run on an outdated manifest. The parse
    goes through the project's dbt runner (``dbt parse`` needs no database).
    """
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROFILES_DIR)
    if _manifest_is_stale(project):
        _parse_once(project)
    return project


def _parse_once(project: DbtProject) -> None:
    """``dbt parse`` under a file lock: the webserver, the daemon and the CLI may load at the
    same moment; one parses, the others wait and then find the manifest fresh."""
    target = project.manifest_path.parent
    target.mkdir(parents=True, exist_ok=True)
    with open(project.manifest_path.with_suffix(".concurrent-update-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _manifest_is_stale(project):
                dbt_command(None, "parse", "--quiet", target_path=target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
    """dagster-dbt's resource, with the project's dbt executable (found without PATH)."""
    return DbtCliResource(project_dir=meterline_dbt_project(), dbt_executable=dbt_executable())
