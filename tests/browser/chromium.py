"""Where Chromium is and how the browser tests launch it."""

from __future__ import annotations

import os
import shutil

MISSING = (
    "the browser tests need Chromium: `make test` installs Debian's chromium when it runs as "
    "root or with passwordless sudo; otherwise run `sudo apt-get install chromium` "
    "(Debian/Ubuntu) or point METERLINE_CHROMIUM at a Chrome/Chromium binary"
)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    explicit = os.environ.get("METERLINE_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None
