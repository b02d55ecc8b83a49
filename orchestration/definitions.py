"""The Meterline code location: every domain folder under ``defs/`` plus the resources, built
from the settings when it loads (``orchestration/resources.py``). Spans of the loader go to
``OTEL_EXPORTER_OTLP_ENDPOINT`` when it is set."""

from pathlib import Path

import dagster as dg

from meterline.core.settings import Settings
from meterline.core.telemetry.tracing import configure_tracing
from orchestration.resources import default_resources


@dg.definitions
def defs() -> dg.Definitions:
    configure_tracing(Settings.from_env().otlp_endpoint)
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources=default_resources()),
    )
