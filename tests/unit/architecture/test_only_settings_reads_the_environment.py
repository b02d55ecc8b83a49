"""One typed settings object knows every environment variable: no other module reads one."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
READS = re.compile(r"\bos\.environ\b|\bgetenv\(|^from os import .*\b(environ|getenv)\b")

# Each exception says why. ``meterline/cli/runtime.py`` writes the resolved settings into the
# environment for Dagster resources (dg.EnvVar) and dbt; it reads nothing from it.
ALLOWED = {
    "meterline/core/settings.py": "the settings object itself",
    "meterline/cli/runtime.py": "exports Settings.as_environment() for Dagster and dbt",
    # dbt runs as a child process that inherits the environment (PATH, locale, PG* options).
    "meterline/core/dbt_runner.py": "passes the process environment on to the dbt subprocess",
    "orchestration/defs/dbt/invocation.py": (
        "dagster-dbt takes no env: set around dbt's start under a lock and restored"
    ),
}


def _product_files():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for package in pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_no_module_but_settings_reads_the_environment():
    offenders = []
    for path in _product_files():
        relative = str(path.relative_to(ROOT))
        if relative in ALLOWED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if READS.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert not offenders, (
        "read the environment through meterline.core.settings.Settings instead:\n"
        + "\n".join(offenders)
    )
