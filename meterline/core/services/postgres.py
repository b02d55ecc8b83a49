"""The embedded PostgreSQL: a PostgreSQL 16 cluster under ``<home>/postgres``, run with the
binaries of the ``pgserver`` wheel, on loopback; and creating a database on any server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import warnings
from pathlib import Path

from meterline.core.services.process import (
    START_TIMEOUT_S,
    ServiceError,
    ServiceStatus,
    choose_port,
    pid_alive,
    wait_gone,
)

PG_USER = "postgres"
PG_DATABASE = "meterline"
DEFAULT_PG_PORT = 54329


class EmbeddedPostgres:
    """A PostgreSQL 16 cluster under ``<home>/postgres``, run with pgserver's binaries."""

    name = "postgres"

    def __init__(self, home: Path):
        self.root = home / "postgres"
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port_file = self.root / "port"

    @property
    def _bin(self) -> Path:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH

        return POSTGRES_BIN_PATH

    def _system_user(self) -> str | None:
        """PostgreSQL refuses to run as root; as root we run it as the unprivileged 'pgserver'."""
        self._bin  # noqa: B018 - imports pgserver quietly before its utils
        if os.geteuid() != 0:
            return None
        from pgserver.utils import ensure_user_exists

        ensure_user_exists("pgserver")
        return "pgserver"

    def _run(self, *args: str, user: str | None) -> None:
        cmd = [str(self._bin / args[0]), *args[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, user=user, timeout=120)
        if proc.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise ServiceError(
                f"embedded PostgreSQL: `{' '.join(args[:1])}` failed: "
                f"{(proc.stderr or proc.stdout).strip()[-500:]} {tail[-500:]} "
                f"(log: {self.log}; set DATABASE_URL to use your own PostgreSQL instead)"
            )

    def _prepare_permissions(self, user: str) -> None:
        import pwd

        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

        entry = pwd.getpwnam(user)
        ensure_prefix_permissions(self.data)
        ensure_prefix_permissions(self._bin)
        ensure_folder_permissions(self._bin, 0o055)
        ensure_folder_permissions(self._bin.parent / "lib", 0o044)
        for path in (self.root, self.data):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if self.log.exists():
            os.chown(self.log, entry.pw_uid, entry.pw_gid)

    def pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return None
        with contextlib.suppress(ValueError, IndexError, OSError):
            pid = int(pidfile.read_text().splitlines()[0])
            if pid_alive(pid):
                return pid
        return None

    def port(self) -> int | None:
        return int(self.port_file.read_text()) if self.port_file.exists() else None

    def url(self, database: str = PG_DATABASE) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port()}/{database}"

    def start(self) -> None:
        if self.pid() is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(exist_ok=True)
        user = self._system_user()
        if user:
            self._prepare_permissions(user)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust",
                "--encoding=UTF8", "--locale=C", user=user,
            )  # fmt: skip
        port = choose_port(self.port_file, DEFAULT_PG_PORT)
        options = (
            f"-h 127.0.0.1 -p {port} -k '' -c max_connections=200 "
            "-c shared_buffers=256MB -c work_mem=32MB -c maintenance_work_mem=256MB "
            "-c max_wal_size=2GB -c synchronous_commit=off -c timezone=UTC"
        )
        stale = self.data / "postmaster.pid"
        if stale.exists():
            stale.unlink()
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
            "-t", str(int(START_TIMEOUT_S)), "start", user=user,
        )  # fmt: skip
        self._ensure_database(PG_DATABASE)

    def _ensure_database(self, name: str) -> None:
        ensure_database(self.url("postgres"), name)

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        user = self._system_user()
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", user=user)
        except ServiceError:
            os.kill(pid, signal.SIGTERM)
        wait_gone(pid, "PostgreSQL")

    def status(self) -> ServiceStatus:
        pid = self.pid()
        return ServiceStatus(
            name=self.name,
            state="running" if pid else "stopped",
            url=self.url() if self.port() else None,
            pid=pid,
            data_dir=str(self.data),
        )


def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` on the server of ``admin_url`` if it does not exist."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            from psycopg import sql

            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
