"""Loading: ``load_stream`` draining a tenant's stream into Postgres, in rows/s."""

from __future__ import annotations

from sqlalchemy import Engine

from ingestion.loader import load_stream


def stream_load(redis, engine: Engine, tenant: str, *, prefix: str) -> dict[str, int]:
    """``loader_rows`` and ``loader_rows_per_s`` for everything recorded for ``tenant``."""
    stats = load_stream(redis, engine, prefix=prefix, tenants=[tenant], consumer="bench")
    return {
        "loader_rows": stats.rows_loaded,
        "loader_rows_per_s": round(stats.rows_loaded / stats.elapsed_seconds),
    }
