"""`meterline serve`'s limits on a real uvicorn (the config `serve` builds): a client that
trickles its headers or its body is cut off, and other clients are served meanwhile."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn

from meterline.core.settings import Settings
from meterline.core.tenants import create_tenant, issue_api_key
from meterline.http_limits import uvicorn_config
from meterline.server import create_app

LIMITS = {
    "METERLINE_HTTP_HEADER_TIMEOUT": "1",
    "METERLINE_HTTP_BODY_TIMEOUT": "1",
    "METERLINE_HTTP_KEEPALIVE_TIMEOUT": "1",
    "METERLINE_HTTP_MAX_CONCURRENCY": "6",
}


@pytest.fixture
def server(db, redis_client, test_services):
    settings = Settings.from_env(LIMITS)
    app = create_app(
        db,
        redis_client,
        prefix=test_services.redis_prefix,
        admin_key=None,
        body_timeout=settings.http_body_timeout,
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn_config(app, host="127.0.0.1", port=port, settings=settings, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def trickle(port: int, head: bytes, drip: bytes, seconds: float) -> tuple[bytes, float]:
    """Send ``head``, then one ``drip`` every 0.2 s; return what the server sent and when
    it closed the connection (seconds after connecting)."""
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(0.2)
        sock.sendall(head)
        while time.monotonic() - started < seconds:
            try:
                sock.sendall(drip)
            except OSError:  # reset: the server is gone
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            received += chunk
    return received, time.monotonic() - started


def served_meanwhile(port: int, until: threading.Event) -> list[int]:
    statuses = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        while not until.is_set():
            statuses.append(http.get("/healthz").status_code)
            time.sleep(0.1)
    return statuses


def while_others_are_served(port, slow):
    done = threading.Event()
    statuses: list[int] = []
    other = threading.Thread(target=lambda: statuses.extend(served_meanwhile(port, done)))
    other.start()
    try:
        result = slow()
    finally:
        done.set()
        other.join()
    return result, statuses


def test_a_client_trickling_its_headers_is_disconnected_and_others_are_served(server):
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    (received, after), statuses = while_others_are_served(
        server, lambda: trickle(server, head, b"X-Slow: y\r\n", seconds=6)
    )
    assert received == b"" and after < 3  # cut at the 1 s header deadline, no response
    assert len(statuses) >= 5 and set(statuses) == {200}


def test_a_client_trickling_its_body_gets_408_and_is_disconnected(db, server):
    create_tenant(db, "slow", "payg")
    key = issue_api_key(db, "slow")
    head = (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: 100000\r\n\r\n["
    )
    (received, after), statuses = while_others_are_served(
        server, lambda: trickle(server, head, b" ", seconds=6)
    )
    assert received.startswith(b"HTTP/1.1 408 ") and b"connection: close" in received.lower()
    assert b"body: not received within 1 s" in received and after < 3
    assert len(statuses) >= 5 and set(statuses) == {200}


def test_connections_beyond_the_concurrency_limit_get_503(server):
    idle = [socket.create_connection(("127.0.0.1", server)) for _ in range(6)]
    try:
        time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{server}/healthz").status_code == 503
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.1)
    assert httpx.get(f"http://127.0.0.1:{server}/healthz").status_code == 200


def test_a_route_that_reads_a_body_late_still_gets_what_had_arrived():
    import asyncio

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from meterline.http_limits import SlowBodyGuard

    async def slow_route(request):
        await asyncio.sleep(0.3)  # busy past the body deadline before reading
        return JSONResponse({"size": len(await request.body())})

    app = SlowBodyGuard(
        Starlette(routes=[Route("/", slow_route, methods=["POST"])]), body_timeout=0.1
    )
    response = TestClient(app).post("/", content=b"x" * 1000)
    assert response.status_code == 200 and response.json() == {"size": 1000}
