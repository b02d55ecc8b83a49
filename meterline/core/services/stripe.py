"""The embedded Stripe: the built-in emulator (``python -m billing.stripe_emulator``) run as a
service like the other two, its state under ``<home>/stripe``."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

from meterline.core.services.process import (
    START_TIMEOUT_S,
    PidfileService,
    ServiceError,
    choose_port,
)

DEFAULT_STRIPE_PORT = 12111
REPO_ROOT = Path(__file__).resolve().parents[3]


class EmbeddedStripe(PidfileService):
    """The built-in Stripe emulator (``python -m billing.stripe_emulator``), state under
    ``<home>/stripe``. Used whenever ``STRIPE_API_KEY`` is unset; never talks to Stripe."""

    name = "stripe"
    label = "Stripe emulator"
    detail = "built-in Stripe emulator (set STRIPE_API_KEY to use Stripe)"
    api_key = "sk_test_meterline_emulator"

    def __init__(self, home: Path):
        super().__init__(home / "stripe", "emulator.pid", "emulator.log")

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port()}"

    def start(self) -> None:
        if self.pid() is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        port = choose_port(self.port_file, DEFAULT_STRIPE_PORT)
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "billing.stripe_emulator", "--host", "127.0.0.1",
                 "--port", str(port), "--state-dir", str(self.root / "state")],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=REPO_ROOT,
                start_new_session=True,
            )  # fmt: skip
        self.pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise ServiceError(
                    f"the Stripe emulator exited at start (log: {self.log}); "
                    "set STRIPE_API_KEY to use Stripe itself"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=0.5),
            ):
                return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"the Stripe emulator did not answer within 60 s (log: {self.log})"
                )
            time.sleep(0.05)
