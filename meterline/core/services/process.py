"""What every embedded service shares: detached processes found by pid, ports remembered in a
file, a lock so two commands never start the same service twice, and the status record."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

START_TIMEOUT_S = 60.0


class ServiceError(RuntimeError):
    """An embedded service could not be started or stopped; the message says what to look at."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # running | stopped | external
    url: str | None
    pid: int | None = None
    data_dir: str | None = None
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose_port(saved: Path, preferred: int) -> int:
    """The port saved in ``saved`` if free, else ``preferred`` if free, else any; saved."""
    if saved.exists():
        port = int(saved.read_text().strip())
        if port_is_free(port):
            return port
    if port_is_free(preferred):
        port = preferred
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    saved.write_text(str(port))
    return port


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        if state == "Z":
            return False
    return True


def wait_gone(pid: int, what: str, timeout: float = 30.0) -> None:
    """Wait for ``pid`` to exit; SIGKILL it after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            if pid_alive(pid):
                raise ServiceError(f"{what} (pid {pid}) did not stop; kill it by hand")
            return
        time.sleep(0.05)


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
    """Hold ``<home>/.services.lock`` (one command starts or stops services at a time)."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".services.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class PidfileService:
    """A detached server that writes a pidfile and listens on a port remembered in a file."""

    name = ""
    label = ""
    detail = ""

    def __init__(self, root: Path, pidfile: str, log: str):
        self.root = root
        self.pidfile = root / pidfile
        self.log = root / log
        self.port_file = root / "port"

    def url(self) -> str:
        raise NotImplementedError

    def pid(self) -> int | None:
        if not self.pidfile.exists():
            return None
        with contextlib.suppress(ValueError, OSError):
            pid = int(self.pidfile.read_text().strip())
            if pid_alive(pid):
                return pid
        return None

    def port(self) -> int | None:
        return int(self.port_file.read_text()) if self.port_file.exists() else None

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)  # both servers shut down cleanly on SIGTERM
        wait_gone(pid, self.label)
        self.pidfile.unlink(missing_ok=True)

    def status(self) -> ServiceStatus:
        pid = self.pid()
        return ServiceStatus(
            name=self.name,
            state="running" if pid else "stopped",
            url=self.url() if self.port() else None,
            pid=pid,
            data_dir=str(self.root),
            detail=self.detail,
        )
