"""``GET /metrics``: Prometheus text exposition of the process's metrics (or, with
``PROMETHEUS_MULTIPROC_DIR``, every worker's, summed by prometheus_client's multiprocess
collector) plus :class:`~meterline.observability.collector.BacklogCollector`'s figures read
at scrape time. No label carries a tenant id, a key or a raw path. Turned off with
``METERLINE_METRICS_ENABLED=0`` (then 404); bind it privately (docs/security.md)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from meterline.observability.collector import BacklogCollector


class _ProcessMetrics(Collector):
    """This process's metrics (the default registry), without registering anything twice."""

    def collect(self):
        return REGISTRY.collect()


def scrape(backlog: Collector | None, multiprocess_dir: Path | None = None) -> bytes:
    """The exposition text: process (or all workers') metrics plus the backlog figures."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir is not None:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir))
    else:
        registry.register(_ProcessMetrics())
    if backlog is not None:
        registry.register(backlog)
    return generate_latest(registry)


def metrics_router(engine, redis, *, prefix: str, multiprocess_dir: Path | None = None):
    router = APIRouter()
    backlog = BacklogCollector(engine, redis, prefix=prefix)

    @router.get("/metrics", include_in_schema=False)
    async def metrics():
        body = await run_in_threadpool(scrape, backlog, multiprocess_dir)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
