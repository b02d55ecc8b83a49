"""User errors end in one line on stderr and a non-zero exit, never a traceback.

These cases fail before any service is needed, so they run without Postgres or Redis.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MESSAGES = {
    "bad_catalog": "plans.pro.meters.api_calls.pricing must be one of",
    "missing_catalog": "cannot read catalog file",
    "bad_db_url": "DATABASE_URL must be a PostgreSQL URL",
    "bad_date": "is not a date: use YYYY-MM-DD",
    "missing_import": "file not found",
}


def run_cli(
    *args: str, env: dict | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "meterline.cli.app", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=120,
    )  # fmt: skip


@pytest.fixture
def bad_catalog(tmp_path):
    text = (ROOT / "billing" / "catalog.yaml").read_text()
    path = tmp_path / "catalog.yaml"
    path.write_text(text.replace("api_calls:    {limit: 500000, included: 500000, pricing: graduated",
                                 "api_calls:    {limit: 500000, included: 500000, pricing: banana", 1))  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("case", "args", "env"),
    [
        ("bad_catalog", ["catalog", "load", "{bad_catalog}"], {}),
        ("missing_catalog", ["catalog", "load", "/nonexistent/catalog.yaml"], {}),
        ("bad_db_url", ["migrate"], {"DATABASE_URL": "mysql://root@localhost/x"}),
        ("bad_date", ["tenants", "create", "acme", "--plan", "pro", "--at", "yesterday"], {}),
        ("missing_import", ["import", "/nonexistent/events.jsonl"], {}),
    ],
)
def test_user_errors_are_one_line(case, args, env, bad_catalog):
    args = [a.replace("{bad_catalog}", str(bad_catalog)) for a in args]
    result = run_cli(*args, env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert MESSAGES[case] in " ".join((result.stderr + result.stdout).split())


def test_help_is_fast_and_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in (
        "services",
        "migrate",
        "catalog",
        "tenants",
        "import",
        "pipeline",
        "demo",
        "bench",
        "serve",
    ):
        assert command in result.stdout
