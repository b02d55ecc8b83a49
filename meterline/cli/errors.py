"""Turn any failure into one line that says what was wrong and what to do."""

from __future__ import annotations


def describe(exc: BaseException) -> tuple[str, bool]:
    """Return (one-line message, is_user_error)."""
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith("sqlalchemy") or module.startswith("psycopg"):
        text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if "OperationalError" in name or "connection" in text.lower():
            return (
                f"cannot reach PostgreSQL: {text}. Check DATABASE_URL, or unset it to use the "
                "embedded PostgreSQL (`meterline services up`)",
                True,
            )
        return f"database error: {text}", False
    if module.startswith("redis"):
        return (
            f"cannot use Redis: {exc}. Check REDIS_URL, or unset it to use the embedded Redis "
            "(`meterline services up`)",
            True,
        )
    if isinstance(exc, FileNotFoundError):
        return f"file not found: {exc.filename}", True
    if isinstance(exc, ValueError | LookupError | RuntimeError | PermissionError):
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else name
        return message, True
    return f"unexpected {name}: {exc}", False
