"""`meterline serve --workers 2`: uvicorn runs the importable app factory
(`meterline.asgi:create_app`) in two worker processes, each answering the API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_with_two_workers_answers_and_stops(db, test_services, tmp_path):
    from meterline.core.tenants import create_tenant, issue_api_key

    create_tenant(db, "acme", "payg")
    key = issue_api_key(db, "acme")
    port = _free_port()
    env = {
        **os.environ,
        "METERLINE_HOME": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "METERLINE_ADMIN_KEY": "admin-key-for-the-workers-test",
    }
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("meterline")), "serve", "--port", str(port),
         "--workers", "2"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, Path(log.name).read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, Path(log.name).read_text()
            time.sleep(0.5)
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/readyz").status_code == 200
            recorded = http.post(
                "/v1/events",
                headers={"Authorization": f"Bearer {key}"},
                json={"id": "w1", "tenant_id": "acme", "meter": "api_calls", "value": 3},
            )
            assert recorded.status_code == 200, recorded.text
            assert recorded.json()["accepted"] == 1
            tenants = http.get(
                "/v1/admin/tenants",
                headers={"Authorization": "Bearer admin-key-for-the-workers-test"},
            )
            assert tenants.status_code == 200
            assert [t["tenant_id"] for t in tenants.json()["tenants"]] == ["acme"]
        output = Path(log.name).read_text()
        assert "2 worker processes" in " ".join(output.split())  # the banner (rich wraps it)
        assert output.count("Started server process") == 2, output
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
    assert server.returncode is not None
