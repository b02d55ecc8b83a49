"""Ingest benchmark for ``meterline bench``: plain numbers, printed by the CLI.

Measures, on the services it is given (a throwaway tenant ``bench-<random>`` that is removed
afterwards, with its events and keys):

- ``sdk_events_per_s``: ``UsageRecorder.record`` with batches (``sdk_threads`` threads, each
  with its own connection, so Python validation overlaps the Lua script in Redis);
  ``sdk_events_per_s_1thread`` for a single caller;
- ``http_events_per_s``: ``POST /v1/events`` against a real uvicorn on loopback (its own
  process) with ``http_clients`` concurrent clients sending batches;
- ``quota_check_p50_ms`` / ``quota_check_p99_ms``: one-event ``record`` calls (the full path:
  validation, one EVALSHA with dedupe + quota check-and-increment + stream append);
- ``loader_rows_per_s``: ``load_stream`` draining everything above into Postgres.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time

import orjson
from sqlalchemy import Engine, text

from ingestion import keys
from ingestion.loader import load_stream
from ingestion.recorder import UsageRecorder
from meterline.core import clock


def redis_url_of(client) -> str:
    kw = client.connection_pool.connection_kwargs
    auth = ""
    if kw.get("password"):
        auth = f"{kw.get('username') or ''}:{kw['password']}@"
    if kw.get("path"):
        return f"unix://{auth}{kw['path']}?db={kw.get('db', 0)}"
    return f"redis://{auth}{kw.get('host', '127.0.0.1')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _bench_plan(engine: Engine) -> str:
    """A plan without hard limits, preferring the largest api_calls limit (no refusals)."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                """
                select p.plan_id from meterline.plans p
                where not exists (select 1 from meterline.plan_meters pm
                                  where pm.plan_id = p.plan_id and pm.hard_limit)
                order by (select limit_quantity from meterline.plan_meters pm
                          where pm.plan_id = p.plan_id and pm.meter = 'api_calls') desc nulls last
                limit 1
                """
            )
        ).first()
    if row is None:
        raise RuntimeError("no plan without hard limits: run `meterline catalog load` first")
    return row[0]


def _events(tenant: str, tag: str, n: int, ts: str) -> list[dict]:
    return [
        {
            "id": f"{tag}{i}",
            "tenant_id": tenant,
            "meter": "api_calls",
            "value": 1,
            "timestamp": ts,
            "dimensions": {"endpoint": "/v1/search", "region": "eu"},
        }
        for i in range(n)
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_SERVER = """
import sys, redis, uvicorn
from meterline.core.db import get_engine
from meterline.server import create_app
db, rurl, prefix, port = sys.argv[1:5]
app = create_app(get_engine(db), redis.Redis.from_url(rurl), prefix=prefix, admin_key=None,
                 rate_limit_per_second=1e9, rate_limit_burst=1e9)
uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False)
"""


def run_ingest_bench(
    redis,
    engine: Engine,
    *,
    prefix: str,
    events: int = 200_000,
    batch_size: int = 1000,
    sdk_threads: int = 2,
    http_events: int = 100_000,
    http_clients: int = 8,
    http_batch: int = 1000,
    latency_samples: int = 2000,
) -> dict:
    """Run the ingest benchmark; returns plain numbers (see the module docstring)."""
    import httpx

    from meterline.core.tenants import create_tenant, issue_api_key

    tenant = f"bench-{secrets.token_hex(4)}"
    create_tenant(engine, tenant, _bench_plan(engine))
    results: dict = {"events": events, "batch_size": batch_size, "cpus": os.cpu_count()}
    ts = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    url = redis_url_of(redis)
    try:
        # SDK, one caller ------------------------------------------------------------------
        recorder = UsageRecorder(redis, engine, prefix=prefix)
        recorder.record(_events(tenant, "warm", 10, ts))
        single = _events(tenant, "s1-", min(events, 50_000), ts)
        started = time.perf_counter()
        for i in range(0, len(single), batch_size):
            recorder.record(single[i : i + batch_size])
        results["sdk_events_per_s_1thread"] = round(len(single) / (time.perf_counter() - started))

        # SDK, several callers (as an app server with threads would) -----------------------
        per_thread = events // sdk_threads
        prepared = [_events(tenant, f"t{t}-", per_thread, ts) for t in range(sdk_threads)]
        recorders = [
            UsageRecorder(redis.__class__.from_url(url), engine, prefix=prefix)
            for _ in range(sdk_threads)
        ]
        for r in recorders:
            r.record(_events(tenant, f"w{id(r)}-", 1, ts))
        barrier = threading.Barrier(sdk_threads + 1)

        def sdk_worker(index: int) -> None:
            barrier.wait()
            batch_events = prepared[index]
            for i in range(0, len(batch_events), batch_size):
                recorders[index].record(batch_events[i : i + batch_size])

        threads = [threading.Thread(target=sdk_worker, args=(t,)) for t in range(sdk_threads)]
        for t in threads:
            t.start()
        barrier.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
        results["sdk_events_per_s"] = round(
            per_thread * sdk_threads / (time.perf_counter() - started)
        )

        # single-event quota check latency ---------------------------------------------------
        samples: list[float] = []
        for i in range(latency_samples):
            event = {"id": f"lat{i}", "tenant_id": tenant, "meter": "api_calls", "value": 1}
            t0 = time.perf_counter()
            recorder.record(event)
            samples.append((time.perf_counter() - t0) * 1000)
        results["quota_check_p50_ms"] = round(_percentile(samples, 0.50), 3)
        results["quota_check_p99_ms"] = round(_percentile(samples, 0.99), 3)

        # HTTP against a real uvicorn ---------------------------------------------------------
        if http_events > 0:
            key = issue_api_key(engine, tenant)
            port = _free_port()
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _SERVER,
                    engine.url.render_as_string(hide_password=False),
                    url,
                    prefix,
                    str(port),
                ],
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
                per_client = max(http_batch, http_events // http_clients)
                bodies = [
                    [
                        orjson.dumps(
                            [
                                {k: v for k, v in e.items() if k != "tenant_id"}
                                for e in _events(tenant, f"h{c}-{b}-", http_batch, ts)
                            ]
                        )
                        for b in range(per_client // http_batch)
                    ]
                    for c in range(http_clients)
                ]
                headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
                accepted = [0] * http_clients
                http_barrier = threading.Barrier(http_clients + 1)

                def http_worker(index: int) -> None:
                    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                        client.get("/healthz")
                        http_barrier.wait()
                        for body in bodies[index]:
                            response = client.post("/v1/events", content=body)
                            response.raise_for_status()
                            accepted[index] += orjson.loads(response.content)["accepted"]

                workers = [
                    threading.Thread(target=http_worker, args=(c,)) for c in range(http_clients)
                ]
                for w in workers:
                    w.start()
                http_barrier.wait()
                started = time.perf_counter()
                for w in workers:
                    w.join()
                elapsed = time.perf_counter() - started
                sent = sum(len(b) for b in bodies) * http_batch
                results["http_events"] = sent
                results["http_accepted"] = sum(accepted)
                results["http_events_per_s"] = round(sent / elapsed)
            finally:
                server.terminate()
                server.wait(timeout=30)

        # loader ------------------------------------------------------------------------------
        stats = load_stream(redis, engine, prefix=prefix, tenants=[tenant], consumer="bench")
        results["loader_rows"] = stats.rows_loaded
        results["loader_rows_per_s"] = round(stats.rows_loaded / stats.elapsed_seconds)
    finally:
        _cleanup(redis, engine, prefix=prefix, tenant=tenant)
    return results


def _cleanup(redis, engine: Engine, *, prefix: str, tenant: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("delete from raw.usage_events where tenant_id = :t"), {"t": tenant})
        conn.execute(text("delete from raw.counter_snapshots where tenant_id = :t"), {"t": tenant})
        conn.execute(text("delete from meterline.tenants where tenant_id = :t"), {"t": tenant})
    batch: list = []
    for key in redis.scan_iter(match=f"{keys.base(prefix, tenant)}*", count=10000):
        batch.append(key)
        if len(batch) >= 5000:
            redis.unlink(*batch)
            batch.clear()
    if batch:
        redis.unlink(*batch)
    redis.srem(keys.streams_registry(prefix), tenant)
