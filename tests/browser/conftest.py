"""Headless Chromium for the browser tests: Debian's ``/usr/bin/chromium`` driven by
Playwright through ``executable_path`` (``playwright install`` is never needed). Without
Chromium the browser tests fail and say how to install it (a missing prerequisite is a
failure, never a silent skip)."""

from __future__ import annotations

import pytest

from tests.browser.chromium import CHROMIUM_ARGS, MISSING, chromium_path


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        pytest.fail(MISSING, pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the browser tests need the playwright package: run `make install`", pytrace=False
        )
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
