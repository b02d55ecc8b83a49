"""The dbt exposures say exactly which marts each part of Meterline reads.

Each exposure names the code that reads the marts for it (``meta.reads_from``: folders or
files); this test finds every mart those modules name in their SQL (string literals and
f-strings, docstrings left out, module-level constants imported from another module followed)
and compares with the exposure's ``depends_on``. A module of the product packages that reads a
mart and belongs to no exposure fails too: a new reader needs its exposure.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import yaml

from meterline.core.dbt_runner import DBT_PROJECT_DIR

ROOT = DBT_PROJECT_DIR.parent
EXPOSURES = DBT_PROJECT_DIR / "models" / "_exposures.yml"
# Where the marts' readers live. meterline/cli (the demo prints what portal.usage_report and
# billing.finance_report return, with mart names in its titles) and meterline/bench (it times
# the build) are tools, not readers.
PRODUCT = ("portal", "alerts", "billing", "ingestion", "meterline/core", "meterline/server.py")
REF = re.compile(r"ref\('(\w+)'\)")


def mart_names() -> set[str]:
    return {p.stem for p in (DBT_PROJECT_DIR / "models" / "marts").rglob("*.sql")}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


@cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _strings(tree: ast.AST) -> list[str]:
    skip = _docstrings(tree)
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
    ]


def _marts_in(texts: list[str]) -> set[str]:
    marts = mart_names()
    pattern = re.compile(r"\banalytics\.(\w+)|\b(fct_\w+)\b")
    found = set()
    for text in texts:
        for match in pattern.finditer(text):
            name = match.group(1) or match.group(2)
            if name in marts:
                found.add(name)
    return found


def _module_path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _constants(path: Path) -> dict[str, str]:
    """Module-level ``NAME = "string"`` assignments."""
    out = {}
    for node in _parsed(path).body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)):
            continue
        if isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node.value.value
    return out


def marts_read_by(path: Path) -> set[str]:
    """Marts a module names in its SQL, including string constants it imports by name."""
    tree = _parsed(path)
    texts = _strings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            source = _module_path(node.module)
            if source is not None:
                constants = _constants(source)
                texts += [constants[a.name] for a in node.names if a.name in constants]
    return _marts_in(texts)


def python_files(location: str) -> list[Path]:
    path = ROOT / location
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def exposures() -> list[dict]:
    return yaml.safe_load(EXPOSURES.read_text())["exposures"]


def test_every_exposure_lists_exactly_the_marts_its_code_reads():
    for exposure in exposures():
        locations = exposure.get("meta", {}).get("reads_from")
        assert locations, f"exposure {exposure['name']} has no meta.reads_from (its code)"
        read = set()
        for location in locations:
            files = python_files(location)
            assert files, f"exposure {exposure['name']}: {location} does not exist"
            for path in files:
                read |= marts_read_by(path)
        declared = {REF.fullmatch(d).group(1) for d in exposure["depends_on"]}
        assert declared == read, (
            f"exposure {exposure['name']} lists {sorted(declared)} but {', '.join(locations)} "
            f"read {sorted(read)}: update dbt_project/models/_exposures.yml"
        )


def test_every_module_that_reads_a_mart_belongs_to_an_exposure():
    covered = {
        path
        for exposure in exposures()
        for location in exposure.get("meta", {}).get("reads_from", [])
        for path in python_files(location)
    }
    readers = {
        path.relative_to(ROOT).as_posix(): sorted(marts_read_by(path))
        for location in PRODUCT
        for path in python_files(location)
        if marts_read_by(path)
    }
    orphans = {name: marts for name, marts in readers.items() if ROOT / name not in covered}
    assert not orphans, f"modules read marts but no exposure names them: {orphans}"
    assert readers, "the scan found no reader at all: the pattern is broken"


def test_the_scan_sees_sql_and_imported_table_names_but_not_docstrings(tmp_path):
    module = tmp_path / "reader.py"
    module.write_text(
        '"""Reads analytics.fct_mrr (a docstring: not a read)."""\n'
        "from billing.invoicing.expected import LINES_TABLE\n"
        "Q = f\"select * from analytics.fct_invoices where month = '{1}'\"\n"
        "def f():\n"
        '    """fct_usage_daily in a docstring."""\n'
        "    return LINES_TABLE\n"
    )
    assert marts_read_by(module) == {"fct_invoices", "fct_invoice_lines"}
