"""Regenerate the pictures in docs/img/ that show Meterline's own pages:

- ``dagster-asset-graph.png``: the Dagster UI's global asset lineage (by asset group), from a
  ``dagster-webserver`` started on a free loopback port against a throwaway ``DAGSTER_HOME``
  (the code location loads; no database, Redis or run is needed);
- ``finance-report.png``: the reconciliation report finance opens
  (``METERLINE_HOME/reports/YYYY-MM/reconciliation.html``), rendered by
  ``billing.reconciliation.reports`` from a sample month with one row of each kind.

Both are taken in headless Chromium (Debian's ``/usr/bin/chromium`` through Playwright's
``executable_path``; nothing is downloaded)::

    .venv/bin/python scripts/screenshots.py                 # both, into docs/img/
    .venv/bin/python scripts/screenshots.py --only finance  # seconds, no webserver
    .venv/bin/python scripts/screenshots.py --out /tmp/img

Each picture is checked before it is written (the page shows what it should) and the script
exits non-zero otherwise. ``tests/integration/docs/test_screenshots.py`` runs it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
ASSET_QUERY = "{ assetNodes { assetKey { path } } }"
SAMPLE_MONTH = date(2026, 10, 1)
GROUPS = ("catalog", "ingestion", "usage", "transform", "billing", "finance")
SAMPLE_GENERATED = datetime(2026, 11, 4, 6, 0, tzinfo=UTC)


class ScreenshotError(RuntimeError):
    pass


def chromium() -> str:
    for name in (os.environ.get("METERLINE_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome"):  # fmt: skip
        found = name and (shutil.which(name) or (Path(name).is_file() and name))
        if found:
            return str(found)
    raise ScreenshotError("no Chromium: apt-get install chromium, or set METERLINE_CHROMIUM")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the finance report ----------------------------------------------------------------------
def sample_reconciliation():
    """A month with one row of each kind finance meets: matched, explained, needing action."""
    from billing.reconciliation.result import ReconciliationResult, ReconciliationRow

    rows = [  # the explanations are the texts billing/reconciliation/compare.py writes
        ReconciliationRow("acme", "matched", "USD", 5321, 5321, "in_1Q2acme", "paid"),
        ReconciliationRow("globex", "matched", "USD", 12900, 12900, "in_1Q2globex", "open"),
        ReconciliationRow("hooli", "adjustment_explained", "USD", 4210, 4000, "in_1Q2hooli", "paid",
                          "-2.10 USD of usage loaded after this invoice was finalized was billed "
                          "as a prior-period adjustment on the 2026-11 invoice in_1Q3hooli"),
        ReconciliationRow("initech", "replaced", "USD", 0, 0, "in_1Q2initech_old", "void",
                          "voided (29.00 USD) and replaced by in_1Q2initech"),
        ReconciliationRow("initech", "matched", "USD", 2900, 2900, "in_1Q2initech", "paid"),
        ReconciliationRow("umbrella", "status_issue", "USD", 49900, 49900, "in_1Q2umbrella",
                          "uncollectible", "marked uncollectible in Stripe"),
    ]  # fmt: skip
    return ReconciliationResult(SAMPLE_MONTH, rows)


def finance_report(out: Path, browser, workdir: Path) -> Path:
    from billing.reconciliation.reports import write_reports
    from meterline.core import clock

    result = sample_reconciliation()
    with clock.frozen(SAMPLE_GENERATED):
        write_reports(result, workdir / "reports")
    page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    page.goto(result.html_path.as_uri())
    heading = page.locator("h1").inner_text()
    if f"{SAMPLE_MONTH:%Y-%m}" not in heading or page.locator("tr.bad").count() < 1:
        raise ScreenshotError(f"the finance report did not render as expected: {heading!r}")
    target = out / "finance-report.png"
    page.screenshot(path=str(target), full_page=True)
    page.close()
    return target


# --- the Dagster asset graph -----------------------------------------------------------------
@contextmanager
def dagster_webserver(home: Path, timeout: float = 240) -> Iterator[str]:
    """``dagster-webserver`` on a free loopback port with ``home`` as DAGSTER_HOME; yields its
    URL once the code location has loaded its assets."""
    import httpx

    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    log_path = home / "webserver.log"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port),
             "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = httpx.post(f"{url}/graphql", json={"query": ASSET_QUERY}, timeout=30)
                if reply.status_code == 200 and (reply.json().get("data") or {}).get("assetNodes"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text()[-3000:]
                raise ScreenshotError(f"dagster-webserver did not serve the assets:\n{tail}")
            time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def dagster_asset_graph(out: Path, browser, workdir: Path) -> Path:
    home = workdir / "dagster"
    home.mkdir()
    with dagster_webserver(home) as url:
        page = browser.new_page(viewport={"width": 1800, "height": 1100}, device_scale_factor=1)
        # no "join the community" dialog over the graph
        page.add_init_script("localStorage.setItem('communityNux', '\"1\"');")
        page.goto(f"{url}/asset-groups", wait_until="networkidle", timeout=120_000)
        page.get_by_text("Global asset lineage").first.wait_for(timeout=120_000)
        # One box per asset group with its asset count, the edges between groups (expanded,
        # the 60-odd dbt nodes are too small to read); every group must be drawn.
        for group in GROUPS:
            page.get_by_text(group, exact=True).last.wait_for(timeout=120_000)
        page.get_by_text("Hide navigation", exact=True).click(timeout=30_000)
        page.wait_for_timeout(3000)  # let the fit-to-screen animation settle
        target = out / "dagster-asset-graph.png"
        page.screenshot(path=str(target))
        page.close()
    return target


SHOTS = {"finance": finance_report, "dagster": dagster_asset_graph}


def take(out: Path, only: list[str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    taken = []
    with (
        tempfile.TemporaryDirectory(prefix="meterline-screenshots-") as tmp,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            for name in only:
                workdir = Path(tmp) / name
                workdir.mkdir()
                taken.append(SHOTS[name](out, browser, workdir))
        finally:
            browser.close()
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--only", choices=sorted(SHOTS), action="append")
    args = parser.parse_args(argv)
    try:
        for path in take(args.out, args.only or list(SHOTS)):
            print(f"wrote {path}")
    except ScreenshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
