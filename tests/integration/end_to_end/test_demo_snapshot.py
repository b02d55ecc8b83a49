"""The demo's output and every mart, on the same data, match a recorded snapshot.

Refactoring must not change what Meterline computes or prints. The demo runs with the clock
frozen at a fixed instant (its data is generated from stable seeds, so the same instant gives
the same events, and projections to the month end see the same "now");
every table in schema ``analytics`` is fingerprinted (row count and a digest of its sorted rows,
load timestamps left out) and the terminal output is compared after masking what differs
between runs by nature (Stripe ids, ports, signatures, durations, temporary paths).

To record a new snapshot after an intended change: ``METERLINE_RECORD_SNAPSHOT=1 pytest
tests/integration/end_to_end/test_demo_snapshot.py`` and review the diff of ``tests/snapshots/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[3]
INSTANT = datetime(2027, 3, 10, 12, 5, tzinfo=UTC)
SNAPSHOT = ROOT / "tests" / "snapshots" / "demo-2027-03-10.json"
VOLATILE_COLUMNS = {"max_loaded_at", "loaded_at", "generated_at", "checked_at", "synced_at"}
MASKS = [
    (re.compile(r"\b(in|cus|ii|il|cn)_[A-Za-z0-9]{8,}"), r"\1_<id>"),
    (re.compile(r"(exp=)\d+(&code=)[A-Za-z0-9_-]+(&sig=)[0-9a-f]+"), r"\1<exp>\2<code>\3<sig>"),
    (re.compile(r"\b127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"\bin \d+(\.\d+)? ?s\b"), "in <n> s"),
    (re.compile(r"\d+:\d\d:\d\d"), "<h:mm:ss>"),
    (re.compile(r"─{3,}"), "───"),  # rules are as wide as their (masked) titles leave
    (re.compile(r"/tmp/[^\s)]+"), "<tmp>"),
    (re.compile(r"meterline_test_[0-9a-f]+"), "<db>"),
    (re.compile(r"mltest_[0-9a-f]+"), "<prefix>"),
    (re.compile(r"((?:lag|oldest_pending)_seconds=)[0-9.]+"), r"\1<s>"),
    (re.compile(r"run [0-9a-f-]{8,}"), "run <id>"),
    (re.compile(r"(revision )\d{4}_[a-z0-9_]+"), r"\1<head>"),  # moves with each migration
]


def _mask(output: str) -> list[str]:
    lines = []
    for line in output.splitlines():
        for pattern, replacement in MASKS:
            line = pattern.sub(replacement, line)
        lines.append(line.rstrip())
    return lines


def _squash(lines: list[str]) -> list[str]:
    """Tables are as wide as their widest (masked) cell was: compare content, not padding."""
    return [re.sub(r"([━─ ])\1+", r"\1", line) for line in lines]


def _fingerprints(db) -> dict[str, list]:
    prints = {}
    with db.connect() as conn:
        tables = conn.execute(
            text(
                "select table_name from information_schema.tables "
                "where table_schema = 'analytics' and table_type = 'BASE TABLE' order by 1"
            )
        ).scalars()
        for table in list(tables):
            columns = [
                c
                for c in conn.execute(
                    text(
                        "select column_name from information_schema.columns "
                        "where table_schema = 'analytics' and table_name = :t order by 1"
                    ),
                    {"t": table},
                ).scalars()
                if c not in VOLATILE_COLUMNS
            ]
            select = ", ".join(f'"{c}"::text' for c in columns)
            rows = sorted(
                "\t".join("" if v is None else v for v in row)
                for row in conn.execute(text(f"select {select} from analytics.{table}"))
            )
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
            prints[table] = [len(rows), digest]
    return prints


def test_demo_output_and_every_mart_match_the_recorded_snapshot(db):
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "shifted_clock.py"), "--frozen", INSTANT.isoformat(),
         "demo", "--tenants", "6", "--scale", "0.05"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "160"},
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    got = {"marts": _fingerprints(db), "output": _mask(run.stdout)}
    if os.environ.get("METERLINE_RECORD_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    recorded = json.loads(SNAPSHOT.read_text())
    assert got["marts"] == recorded["marts"]
    assert _squash(got["output"]) == _squash(recorded["output"])
