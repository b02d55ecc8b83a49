"""Recording through ``POST /v1/events``: a real uvicorn on loopback (its own process) and
concurrent clients sending batches."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from sqlalchemy import Engine

from meterline.bench.recording import api_call_events, seconds_in_threads

_SERVER = """
import sys, redis, uvicorn
from meterline.core.db import get_engine
from ingestion.ratelimit import EventBudget
from meterline.server import create_app
db, rurl, prefix, port = sys.argv[1:5]
app = create_app(get_engine(db), redis.Redis.from_url(rurl), prefix=prefix, admin_key=None,
                 rate_limit_per_second=1e9, rate_limit_burst=1e9,
                 event_budget=EventBudget(1e9, 10**9))
uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _api_server(engine: Engine, redis_url: str, prefix: str) -> Iterator[str]:
    """The ingest API in its own process, unlimited rate; yields its base URL once healthy."""
    import httpx

    port = _free_port()
    database_url = engine.url.render_as_string(hide_password=False)
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, database_url, redis_url, prefix, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("bench HTTP server did not start")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def http_ingest(
    engine: Engine,
    redis_url: str,
    tenant: str,
    ts: str,
    *,
    prefix: str,
    events: int,
    clients: int,
    batch: int,
) -> dict[str, int]:
    """``http_events`` sent, ``http_accepted`` and ``http_events_per_s`` with ``clients``
    concurrent clients posting batches of ``batch`` events (the tenant's own API key)."""
    import httpx

    from meterline.core.tenants import issue_api_key

    key = issue_api_key(engine, tenant)
    with _api_server(engine, redis_url, prefix) as base:
        per_client = max(batch, events // clients)
        bodies = [
            [
                orjson.dumps(
                    [
                        {k: v for k, v in e.items() if k != "tenant_id"}
                        for e in api_call_events(tenant, f"h{c}-{b}-", batch, ts)
                    ]
                )
                for b in range(per_client // batch)
            ]
            for c in range(clients)
        ]
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        accepted = [0] * clients

        def worker(index: int, start: threading.Barrier) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                client.get("/healthz")
                start.wait()
                for body in bodies[index]:
                    response = client.post("/v1/events", content=body)
                    response.raise_for_status()
                    accepted[index] += orjson.loads(response.content)["accepted"]

        elapsed = seconds_in_threads(worker, clients)
    sent = sum(len(b) for b in bodies) * batch
    return {
        "http_events": sent,
        "http_accepted": sum(accepted),
        "http_events_per_s": round(sent / elapsed),
    }
