"""Small modules: no Python file over 400 lines and no function over 80 lines, unless its
docstring says why ("Long because: ...")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("meterline", "ingestion", "billing", "alerts", "portal", "orchestration")
MAX_FILE, MAX_FUNCTION = 400, 80
REASON = "Long because:"


def oversized(path: Path) -> list[str]:
    source = path.read_text()
    tree = ast.parse(source)
    found = []
    if len(source.splitlines()) > MAX_FILE and REASON not in (ast.get_docstring(tree) or ""):
        found.append(f"{path}: {len(source.splitlines())} lines")
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION and REASON not in (ast.get_docstring(node) or ""):
                found.append(f"{path}:{node.lineno} {node.name}() is {length} lines")
    return found


def test_no_module_or_function_is_longer_than_the_limit_without_a_reason():
    files = [p for top in PACKAGES for p in sorted((ROOT / top).rglob("*.py"))]
    assert len(files) > 50
    assert [problem for path in files for problem in oversized(path)] == []


def test_the_limit_catches_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION + 1))
    long_one = tmp_path / "long.py"
    long_one.write_text(f"def f():\n{body}\n")
    assert oversized(long_one) == [f"{long_one}:1 f() is {MAX_FUNCTION + 2} lines"]
    long_one.write_text(f'def f():\n    """{REASON} a test."""\n{body}\n')
    assert oversized(long_one) == []
