"""The Meterline code location: every domain folder under ``defs/`` plus shared resources."""

from pathlib import Path

import dagster as dg

from orchestration.resources import default_resources


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources=default_resources()),
    )
