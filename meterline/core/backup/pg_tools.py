"""Finding ``pg_dump``/``pg_restore`` for a server, and handing them a connection without a
password on their command line.

A dump needs a ``pg_dump`` at least as new as the server; a custom-format archive needs a
``pg_restore`` at least as new as the ``pg_dump`` that wrote it. Candidates, in order: the
binaries on ``PATH``, the embedded PostgreSQL's (the ``pgserver`` wheel) and Debian's
``/usr/lib/postgresql/<major>/bin``. The one whose major version equals the server's wins,
else the oldest newer one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class PgTool:
    path: Path
    major: int
    version: str  # e.g. "15.20"


def _candidate_dirs() -> list[Path]:
    dirs = []
    on_path = shutil.which("pg_dump")
    if on_path:
        dirs.append(Path(on_path).resolve().parent)
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH

        dirs.append(Path(POSTGRES_BIN_PATH))
    except ImportError:  # pragma: no cover - pgserver is a dependency; only a trimmed install
        pass
    dirs += sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _version_of(binary: Path) -> tuple[int, str] | None:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except OSError:
        return None
    match = re.search(r"(\d+)(?:\.(\d+))?", out)
    if not match:
        return None
    return int(match.group(1)), match.group(0)


def find_tool(name: str, server_major: int) -> PgTool:
    """The ``name`` binary (``pg_dump`` or ``pg_restore``) that suits a server of
    ``server_major``; a :class:`BackupError` naming what was found otherwise."""
    found: list[PgTool] = []
    for directory in _candidate_dirs():
        binary = directory / name
        if binary.is_file():
            version = _version_of(binary)
            if version:
                found.append(PgTool(binary, *version))
    usable = sorted((t for t in found if t.major >= server_major), key=lambda t: t.major)
    if not usable:
        seen = ", ".join(f"{t.version} at {t.path}" for t in found) or "none"
        raise BackupError(
            f"no {name} for PostgreSQL {server_major} (found: {seen}); install the PostgreSQL "
            f"{server_major} client tools (e.g. apt-get install postgresql-client-{server_major}) "
            "and put them on PATH"
        )
    return usable[0]


@contextmanager
def libpq_dbname(database_url: str) -> Iterator[str]:
    """A ``--dbname`` value for a libpq tool: the URL without its password, which goes into a
    temporary ``passfile`` (mode 0600, deleted afterwards) so it never shows in ``ps``, in
    the environment or in an error."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    bare = url._replace(drivername="postgresql", password=None)  # .set() ignores None
    if not url.password:
        yield bare.render_as_string(hide_password=False)
        return
    escaped = url.password.replace("\\", "\\\\").replace(":", "\\:")
    with tempfile.TemporaryDirectory(prefix="meterline-pgpass-") as folder:
        passfile = Path(folder) / "pgpass"
        passfile.touch(mode=0o600)
        passfile.write_text(f"*:*:*:*:{escaped}\n")
        with_passfile = bare.update_query_dict({"passfile": str(passfile)})
        yield with_passfile.render_as_string(hide_password=False)


def server_major(conn) -> int:
    """The major version of the server ``conn`` (a SQLAlchemy connection) is talking to."""
    from sqlalchemy import text

    return int(conn.execute(text("show server_version_num")).scalar_one()) // 10000
