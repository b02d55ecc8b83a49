"""No secret in a URL or a log line, through a real `meterline serve` stack (uvicorn with its
access log configured as `meterline serve` does): keys are typed into a form, never read
from a URL; links open once; the access log redacts whatever a URL still carries; bad
signatures are 4xx, never 500; every portal response carries the security headers."""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from meterline.cli.access_log import serve_log_config
from meterline.core.secrets import new_webhook_secret
from meterline.core.tenants import create_tenant, issue_api_key
from meterline.server import create_app
from portal.mount import PORTAL_PREFIXES
from portal.signing import ADMIN, mint_admin_link, mint_dashboard_link, session_token

ADMIN_KEY = "admin-key-never-in-a-log"
SECRET_KEY = "secret-key-signing-sessions"
HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@contextmanager
def serving(app):
    """uvicorn in a thread with `meterline serve`'s options and logging (forwarded headers
    are Meterline's to judge, not uvicorn's); yields (base URL, log lines)."""
    import uvicorn

    from meterline.core.settings import Settings
    from meterline.http_limits import uvicorn_config

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn_config(
        app, host="127.0.0.1", port=port, settings=Settings.from_env(),
        log_config=serve_log_config(),
    )  # fmt: skip
    server = uvicorn.Server(config)
    lines = Lines()
    watched = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error", "meterline.api")]
    for logger in watched:
        logger.addHandler(lines)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", lines.lines
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        for logger in watched:
            logger.removeHandler(lines)


@pytest.fixture
def stack(db, redis_client, test_services):
    with _serve(db, redis_client, test_services) as served:
        yield served


@contextmanager
def _serve(db, redis_client, test_services, trusted_proxies: str | None = None):
    create_tenant(db, "acme", "free")
    key = issue_api_key(db, "acme")
    app = create_app(
        db, redis_client, prefix=test_services.redis_prefix, admin_key=ADMIN_KEY,
        secret_key=SECRET_KEY, trusted_proxies=trusted_proxies,
    )  # fmt: skip
    with serving(app) as (base, lines):
        yield base, lines, key


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_the_access_log_carries_no_key_link_code_or_token(stack):
    base, lines, key = stack
    admin_link = mint_admin_link(secret=SECRET_KEY, ttl=600)
    tenant_link = mint_dashboard_link("acme", secret=SECRET_KEY, ttl=600)
    secrets = [key, ADMIN_KEY, *_query(admin_link).values(), *_query(tenant_link).values()]
    secrets = [s for s in secrets if s not in ("acme",) and not s.isdigit()]
    with httpx.Client(base_url=base) as http:
        http.get(f"/dashboard?key={key}")
        http.get(f"/admin?key={ADMIN_KEY}")
        http.get(admin_link)
        http.get(tenant_link)
        http.get("/v1/usage?token=tok-in-a-url", headers={"Authorization": f"Bearer {key}"})
        http.post("/admin/sign-in", data={"key": ADMIN_KEY})
    time.sleep(0.2)  # the access log line is written after the response
    secrets.append("tok-in-a-url")
    logged = "\n".join(lines)
    assert "/dashboard?key=[redacted]" in logged and "code=[redacted]" in logged, logged
    assert [s for s in secrets if s in logged] == [], logged


def test_a_key_in_the_url_gets_the_sign_in_form_and_is_never_echoed(stack):
    base, _, key = stack
    with httpx.Client(base_url=base) as http:
        for path, given in (("/dashboard", key), ("/admin", ADMIN_KEY)):
            page = http.get(path, params={"key": given})
            assert page.status_code == 401 and "set-cookie" not in page.headers, path
            assert given not in page.text and 'method="post"' in page.text, path
            assert page.headers["cache-control"] == "no-store"
        assert http.get("/v1/admin/overview").status_code == 401  # no session came of it


def test_sign_in_forms_set_strict_httponly_cookies_secure_over_https(
    db, redis_client, test_services
):
    served = _serve(db, redis_client, test_services, trusted_proxies="127.0.0.1")
    with served as (base, _, key), httpx.Client(base_url=base) as http:
        wrong = http.post("/admin/sign-in", data={"key": "not-it"})
        assert wrong.status_code == 401 and "not-it" not in wrong.text
        assert "set-cookie" not in wrong.headers
        tenant = http.post("/dashboard/sign-in", data={"key": key}, follow_redirects=False)
        assert tenant.status_code == 303 and tenant.headers["location"] == "/dashboard"
        assert http.get("/v1/dashboard/summary").json()["tenant_id"] == "acme"
        admin = http.post(
            "/admin/sign-in", data={"key": ADMIN_KEY}, follow_redirects=False,
            headers={"X-Forwarded-Proto": "https"},
        )  # fmt: skip
    cookie = admin.headers["set-cookie"]
    assert admin.status_code == 303 and ADMIN_KEY not in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie
    assert "Secure" not in tenant.headers["set-cookie"]  # plain http (local): not Secure


def test_x_forwarded_proto_counts_only_from_a_trusted_proxy(stack):
    base, _, _ = stack  # METERLINE_TRUSTED_PROXIES unset: nobody's forwarded headers count
    with httpx.Client(base_url=base) as http:
        admin = http.post(
            "/admin/sign-in", data={"key": ADMIN_KEY}, follow_redirects=False,
            headers={"X-Forwarded-Proto": "https"},
        )  # fmt: skip
    assert admin.status_code == 303 and "Secure" not in admin.headers["set-cookie"]


def test_links_open_once(stack):
    base, _, _ = stack
    link = mint_dashboard_link("acme", secret=SECRET_KEY, ttl=600)
    with httpx.Client(base_url=base) as first, httpx.Client(base_url=base) as second:
        assert first.get(link, follow_redirects=True).status_code == 200
        again = second.get(link, follow_redirects=False)
    assert again.status_code == 401 and "set-cookie" not in again.headers


def test_non_ascii_signatures_and_cookies_are_refused_never_a_500(stack):
    base, _, _ = stack
    good = _query(mint_admin_link(secret=SECRET_KEY, ttl=600))
    with httpx.Client(base_url=base) as http:
        for params in ({**good, "sig": "é" * 64}, {**good, "exp": "١٢٣"}, {**good, "code": "ü"}):
            assert http.get("/admin", params=params).status_code in (401, 403), params
    for cookie in ("admin:9999999999:" + "é" * 64, "adminé:9é:é", "ü"):
        raw = f"meterline_admin={cookie}; meterline_dashboard={cookie}".encode()
        with httpx.Client(base_url=base, headers={"Cookie": raw}) as http:
            assert http.get("/admin").status_code in (401, 403), cookie
            assert http.get("/dashboard").status_code in (401, 403), cookie
            assert http.get("/v1/admin/overview").status_code in (401, 403), cookie


def test_a_webhook_receiver_cannot_sign_in_with_the_webhook_secret(db, redis_client, test_services):
    from alerts.channels.webhook import signature_headers

    webhook_secret = new_webhook_secret()
    app = create_app(
        db, redis_client, prefix=test_services.redis_prefix, admin_key=ADMIN_KEY,
        secret_key=SECRET_KEY,
    )  # fmt: skip
    exp = int(time.time()) + 600
    signed = signature_headers((webhook_secret,), "quota-x", b'{"text":"hi"}')
    forged = {
        "session minted with the webhook secret": session_token(
            webhook_secret, ADMIN, "admin", exp
        ),
        "a webhook signature as a session": f"admin:{exp}:{signed['webhook-signature']}",
    }
    with serving(app) as (base, _):
        for name, cookie in forged.items():
            with httpx.Client(base_url=base, cookies={"meterline_admin": cookie}) as http:
                assert http.get("/admin").status_code in (401, 403), name
                assert http.get("/v1/admin/overview").status_code in (401, 403), name
        with httpx.Client(base_url=base) as http:
            link = mint_admin_link(secret=webhook_secret, ttl=600)
            assert http.get(link, follow_redirects=False).status_code == 403


def test_every_portal_route_sends_the_security_headers(stack):
    base, _, key = stack
    with httpx.Client(base_url=base) as http:
        http.post("/dashboard/sign-in", data={"key": key})
        page = http.get("/dashboard")
        static = page.text.split('rel="stylesheet" href="')[1].split('"')[0]
        assert http.get(static).status_code == 200
    routes = _portal_routes()
    assert ("GET", "/dashboard") in routes and ("POST", "/admin/sign-in") in routes
    with httpx.Client(base_url=base) as http:
        http.post("/dashboard/sign-in", data={"key": key})
        for method, path in routes:
            path = static if "{" in path else path
            for response in (http.request(method, path), httpx.request(method, base + path)):
                for name, value in HEADERS.items():
                    assert value in response.headers.get(name, ""), (method, path, name)


def _portal_routes() -> list[tuple[str, str]]:
    from fastapi import FastAPI

    from portal.mount import mount_portal

    app = FastAPI()
    mount_portal(app, None, None, prefix="x", admin_key="a", secret_key="s")

    def flat(routes):
        for route in routes:
            included = getattr(route, "original_router", None)  # an included router
            yield from flat(included.routes) if included is not None else (route,)

    return sorted(
        (method, route.path)
        for route in flat(app.routes)
        if getattr(route, "methods", None) and route.path.startswith(PORTAL_PREFIXES)
        for method in set(route.methods) - {"HEAD"}
    )
