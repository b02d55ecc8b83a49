"""Dagster resources read the settings' variables, and every deployment sets them.

A resource configured with ``dg.EnvVar`` fails its run when the variable is missing, so each
name must be a variable of :class:`~meterline.core.settings.Settings` (which the CLI exports,
all of them) and must be set for the Dagster services of docker-compose.yml.
"""

import re
from pathlib import Path

import yaml

from meterline.core.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
ENV_VAR = re.compile(r"EnvVar(?:\.int)?\(\s*\"([A-Za-z0-9_]+)\"")


def _resource_variables() -> dict[str, str]:
    found = {}
    for path in sorted((ROOT / "orchestration").rglob("*.py")):
        for name in ENV_VAR.findall(path.read_text()):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_resources_read_variables_the_settings_know():
    variables = _resource_variables()
    assert {"DATABASE_URL", "REDIS_URL", "SMTP_URL"} <= set(variables)
    unknown = {name: where for name, where in variables.items() if name not in Settings.variables()}
    assert not unknown, f"dg.EnvVar names a variable Settings does not know: {unknown}"


def test_the_cli_exports_every_variable_a_resource_reads():
    exported = Settings.from_env({}).as_environment()
    assert set(_resource_variables()) <= set(exported)


def test_docker_compose_sets_every_variable_the_dagster_services_read():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for service in ("dagster-webserver", "dagster-daemon"):
        environment = compose["services"][service]["environment"]
        missing = set(_resource_variables()) - set(environment)
        assert not missing, f"{service} lacks {sorted(missing)}"
