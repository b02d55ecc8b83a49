"""dbt source freshness as asset checks on the sources' assets (``raw/usage_events``, ...).

The dbt project configures freshness on its sources (``_raw__sources.yml``: warn after 2 hours,
error after 24 for the events). This multi-asset check runs ``dbt source freshness`` for the
selected sources and turns dbt's ``sources.json`` into one ``dbt_source_freshness`` check result
per source: passed, or failed with severity WARN (past ``warn_after``) or ERROR (past
``error_after``, or dbt could not measure it), with the newest load time, the age and the
thresholds as metadata. The age is measured at Meterline's clock: dbt gets the clock's instant
as ``METERLINE_AS_OF`` and the project's ``postgres__collect_freshness`` compares with it, not
with the database's ``now()``.

The check is part of ``meterline_pipeline`` (it targets the ingestion assets that job
materializes, so it runs right after they load) and of ``dbt_hourly``.
"""

import json
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.defs.dbt.invocation import raise_if_failed, start_dbt
from orchestration.defs.dbt.project import meterline_dbt_project
from orchestration.resources import PostgresResource

CHECK_NAME = "dbt_source_freshness"
SEVERITIES = {"warn": dg.AssetCheckSeverity.WARN}  # anything else that is not a pass: ERROR


def fresh_sources(manifest: dict[str, Any]) -> dict[str, tuple[str, dg.AssetKey]]:
    """dbt unique_id -> (``source:<source>.<table>`` selector, asset key) of every source with
    a freshness rule and a Dagster asset key (``meta.dagster.asset_key``)."""
    found = {}
    for unique_id, source in manifest["sources"].items():
        rule = source.get("freshness") or {}
        if not any((rule.get(k) or {}).get("count") for k in ("warn_after", "error_after")):
            continue
        key = (source.get("meta") or {}).get("dagster", {}).get("asset_key")
        if key:
            selector = f"source:{source['source_name']}.{source['name']}"
            found[unique_id] = (selector, dg.AssetKey(key))
    return found


def _manifest() -> dict[str, Any]:
    return json.loads(meterline_dbt_project().manifest_path.read_text())


SOURCES = fresh_sources(_manifest())


def check_result(key: dg.AssetKey, result: dict[str, Any]) -> dg.AssetCheckResult:
    """One source's entry of dbt's ``sources.json`` as an asset check result."""
    status = result.get("status", "runtime error")
    criteria = result.get("criteria") or {}
    metadata: dict[str, Any] = {"status": status}
    age = result.get("max_loaded_at_time_ago_in_s")
    if result.get("max_loaded_at", "").startswith("0001-01-01"):
        metadata["max_loaded_at"] = "never (no rows loaded by then)"
    elif result.get("max_loaded_at"):
        metadata["max_loaded_at"] = result["max_loaded_at"]
        if age is not None:
            metadata["age_hours"] = dg.MetadataValue.float(round(age / 3600, 2))
    if result.get("snapshotted_at"):
        metadata["measured_at"] = result["snapshotted_at"]  # Meterline's clock (as_of)
    for name in ("warn_after", "error_after"):
        rule = criteria.get(name) or {}
        if rule.get("count"):
            metadata[name] = f"{rule['count']} {rule['period']}"
    problem = result.get("error") or result.get("message")
    if problem and status not in ("pass", "warn", "error"):
        metadata["error"] = " ".join(str(problem).split())[:500]
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=CHECK_NAME,
        passed=status == "pass",
        severity=SEVERITIES.get(status, dg.AssetCheckSeverity.ERROR),
        metadata=metadata,
        description=_describe(status, metadata),
    )


def _describe(status: str, metadata: dict[str, Any]) -> str:
    if status == "pass":
        return "fresh"
    if status in ("warn", "error"):
        newest = metadata.get("max_loaded_at", "unknown")
        limit = metadata.get("error_after" if status == "error" else "warn_after")
        return f"stale: newest row loaded {newest}, older than {limit} at {metadata.get('measured_at')}"
    return f"dbt could not measure freshness: {metadata.get('error', status)}"


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=key,
            description=f"dbt source freshness of {selector[len('source:') :]} "
            "(warn/error after the source's freshness rule, measured at Meterline's clock).",
        )
        for selector, key in SOURCES.values()
    ],
    can_subset=True,
    name="dbt_source_freshness",
)
def dbt_source_freshness(
    context: dg.AssetCheckExecutionContext, dbt: DbtCliResource, postgres: PostgresResource
):
    selected = {check.asset_key for check in context.selected_asset_check_keys}
    wanted = {uid: (sel, key) for uid, (sel, key) in SOURCES.items() if key in selected}
    # one --select value (dagster-dbt takes only the token after --select as the selection)
    args = ["source", "freshness", "--select", " ".join(sorted(s for s, _ in wanted.values()))]
    invocation = start_dbt(
        dbt, postgres.url, args, manifest=meterline_dbt_project().manifest_path
    ).wait()
    results = _results(invocation.target_path)
    if results is None:  # dbt stopped before measuring anything: say why
        raise_if_failed(invocation, args)
        raise dg.Failure(f"`dbt {' '.join(args)}` wrote no sources.json")
    for unique_id, (_, key) in wanted.items():
        if unique_id in results:
            yield check_result(key, results[unique_id])
        else:
            yield check_result(key, {"status": "runtime error", "message": "not measured"})


def _results(target_path: Path) -> dict[str, dict[str, Any]] | None:
    try:
        data = json.loads((Path(target_path) / "sources.json").read_text())
    except (OSError, ValueError):
        return None
    return {item["unique_id"]: item for item in data.get("results", [])}
