"""Headless Chromium for the browser tests: Debian's ``/usr/bin/chromium`` driven by
Playwright through ``executable_path`` (``playwright install`` is never needed). Without
Chromium the browser tests skip and say how to install it."""

from __future__ import annotations

import pytest

from tests.browser.chromium import CHROMIUM_ARGS, SKIP_REASON, chromium_path


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        pytest.skip(SKIP_REASON)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need the playwright package: run `uv sync` (dev dependencies)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
