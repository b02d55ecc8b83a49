"""The dependency rule of DESIGN.md, checked on every import in the product's code.

    meterline.cli -> orchestration -> (portal, alerts) -> (ingestion, billing) -> meterline.core

Domain packages never import Dagster, dbt or Great Expectations; ``ingestion`` and ``billing``
never import each other; ``portal`` and ``alerts`` never import each other; nothing imports
``meterline.cli``. Imports inside functions count too (they are parsed, not grepped).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FRAMEWORKS = ("dagster", "dagster_dbt", "dagster_postgres", "dagster_webserver",
              "dagster_graphql", "great_expectations", "dbt")  # fmt: skip
DOMAIN = ("meterline.core", "ingestion", "billing", "alerts", "portal")

# package -> first-party packages it may import (besides itself)
ALLOWED = {
    "meterline.core": (),
    "ingestion": ("meterline.core",),
    "billing": ("meterline.core",),
    "alerts": ("ingestion", "billing", "meterline.core"),
    "portal": ("ingestion", "billing", "meterline.core"),
    "meterline.server": (
        "meterline.observability", "portal", "alerts", "ingestion", "billing", "meterline.core",
    ),
    "meterline.observability": ("portal", "alerts", "ingestion", "billing", "meterline.core"),
    "meterline.asgi": (
        "meterline.server", "meterline.observability", "portal", "alerts", "ingestion", "billing",
        "meterline.core",
    ),
    "meterline.bench": (
        "meterline.server", "meterline.observability", "alerts", "portal", "ingestion", "billing", "meterline.core",
    ),
    "orchestration": (
        "meterline.server", "meterline.observability", "portal", "alerts", "ingestion", "billing", "meterline.core",
    ),
    "meterline.cli": (
        "orchestration", "meterline.bench", "meterline.server", "meterline.asgi", "meterline.observability", "portal", "alerts", "ingestion",
        "billing", "meterline.core",
    ),
}  # fmt: skip
FIRST_PARTY = tuple(ALLOWED)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def package_of(module: str) -> str | None:
    """The most specific package of the rule that ``module`` belongs to."""
    matches = [p for p in FIRST_PARTY if _within(module, p)]
    return max(matches, key=len) if matches else None


def imports_of(source: str, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import in ``source`` (relative ones resolved)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def violations(sources: dict[str, str]) -> list[str]:
    """Every import in ``sources`` (module name -> code) that breaks the rule."""
    problems = []
    for module, source in sources.items():
        owner = package_of(module)
        if owner is None:
            continue
        for line, imported in imports_of(source, module):
            where = f"{module}:{line} imports {imported}"
            if owner in DOMAIN and any(_within(imported, f) for f in FRAMEWORKS):
                problems.append(f"{where} (domain code never imports a framework)")
                continue
            target = package_of(imported)
            if target is None or target == owner:
                continue
            if target == "meterline.cli":
                problems.append(f"{where} (nothing imports meterline.cli)")
            elif target not in ALLOWED[owner]:
                problems.append(f"{where} ({owner} may not depend on {target})")
    return problems


def _product_sources() -> dict[str, str]:
    sources = {}
    for top in ("meterline", "ingestion", "billing", "alerts", "portal", "orchestration"):
        for path in sorted((ROOT / top).rglob("*.py")) if (ROOT / top).exists() else []:
            parts = path.relative_to(ROOT).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            sources[module] = path.read_text()
    return sources


def test_the_product_follows_the_dependency_rule():
    sources = _product_sources()
    assert len(sources) > 50  # the walk found the code
    assert violations(sources) == []


def test_the_rule_catches_each_kind_of_breach():
    breaches = {
        "billing.costs": "import dagster_dbt\n",
        "ingestion.loader": "def f():\n    from great_expectations import core\n",
        "portal.pages": "from dbt.cli.main import dbtRunner\n",
        "ingestion.api": "from billing.rating import rate\n",
        "billing.invoicing": "import ingestion.keys\n",
        "alerts.delivery": "from portal import signing\n",
        "meterline.core.db": "from ingestion import keys\n",
        "orchestration.defs.jobs": "from meterline.cli.app import main\n",
        "portal.routes": "from . import pages\nfrom ..alerts import thresholds\n",
    }
    found = violations(breaches)
    assert len(found) == len(breaches), found
    fine = {
        "alerts.usage": "from ingestion import keys\nimport redis\n",
        "portal.routes": "from . import pages\nfrom billing.money import format_minor\n",
        "meterline.cli.app": "from orchestration.definitions import defs\n",
        "meterline.core.db": "from meterline.core import clock\nimport sqlalchemy\n",
    }
    assert violations(fine) == []
