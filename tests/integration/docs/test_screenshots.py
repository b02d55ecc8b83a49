"""scripts/screenshots.py keeps the pictures in docs/img/ current: run as a user would (a
subprocess), it starts a real dagster-webserver and headless Chromium and writes both PNGs.
Without Chromium it fails saying how to install it (never a silent skip)."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_the_script_writes_the_dagster_graph_and_the_finance_report(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "screenshots.py"), "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    graph, report = tmp_path / "dagster-asset-graph.png", tmp_path / "finance-report.png"
    assert f"wrote {graph}" in done.stdout and f"wrote {report}" in done.stdout
    assert png_size(graph) == (1800, 1100)
    width, height = png_size(report)
    assert width == 1280 and height > 900  # the whole page, not only the first screen
    # a blank page compresses to a few KB; a drawn graph and a filled report do not
    assert graph.stat().st_size > 30_000 and report.stat().st_size > 60_000


def test_the_docs_embed_the_pictures_the_script_writes():
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    billing = (ROOT / "docs" / "billing.md").read_text()
    assert "![" in architecture and "img/dagster-asset-graph.png" in architecture
    assert "![" in billing and "img/finance-report.png" in billing
    for name in ("dagster-asset-graph.png", "finance-report.png"):
        assert png_size(ROOT / "docs" / "img" / name)[0] > 1000
