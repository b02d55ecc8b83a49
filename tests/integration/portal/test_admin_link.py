"""Signed, expiring, one-time admin links: /admin?exp=&code=&sig= opens the admin overview once
(and becomes an admin session cookie, like the tenant dashboard link) without the admin key
ever being in a URL; a tampered, expired, tenant, half or already used link does not."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from meterline.core import clock
from meterline.server import create_app
from portal.signing import mint_admin_link, mint_dashboard_link

ADMIN_KEY = "test-admin-key-for-links"


@pytest.fixture
def app(db, redis_client, test_services):
    return create_app(db, redis_client, prefix=test_services.redis_prefix, admin_key=ADMIN_KEY)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_signed_admin_link_opens_the_admin_page_and_sets_a_session(app):
    link = mint_admin_link(secret=app.state.dashboard_secret, ttl=24 * 3600)
    assert link.startswith("/admin?exp=") and "key=" not in link and ADMIN_KEY not in link
    with TestClient(app) as http:
        first = http.get(link, follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/admin"
        assert first.headers["cache-control"] == "no-store"
        cookie = first.headers["set-cookie"]
        assert "meterline_admin=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert ADMIN_KEY not in cookie and app.state.dashboard_secret not in cookie
        page = http.get("/admin")  # the cookie from the link
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        overview = http.get("/v1/admin/overview")
        assert overview.status_code == 200 and "items" in overview.json()
    with TestClient(app) as someone_else:  # the same link again, e.g. from a history or a log
        again = someone_else.get(link, follow_redirects=False)
        assert again.status_code == 401 and "set-cookie" not in again.headers
        assert "already used" in again.text


def test_followed_link_lands_on_the_admin_page(app):
    with TestClient(app) as http:
        page = http.get(mint_admin_link(secret=app.state.dashboard_secret, ttl=60))
    assert page.status_code == 200 and str(page.url).endswith("/admin")


def test_tampered_expired_foreign_and_partial_links_are_refused(app):
    secret = app.state.dashboard_secret
    good = _query(mint_admin_link(secret=secret, ttl=3600))
    expired = _query(mint_admin_link(secret=secret, ttl=60, now=clock.timestamp() - 3600))
    other_secret = _query(mint_admin_link(secret="not-the-server-secret", ttl=3600))
    # A tenant link signs (tenant, subject, exp): never valid for the admin page, even for a
    # tenant whose id is "admin".
    tenant = _query(mint_dashboard_link("admin", secret=secret, ttl=3600))
    cases = {
        "later exp": ({**good, "exp": str(int(good["exp"]) + 3600)}, 403),
        "altered sig": (
            {**good, "sig": good["sig"][:-1] + ("0" if good["sig"][-1] != "0" else "1")},
            403,
        ),
        "other secret": (other_secret, 403),
        "tenant link": ({"exp": tenant["exp"], "code": tenant["code"], "sig": tenant["sig"]}, 403),
        "other code": ({**good, "code": "another-code"}, 403),
        "no code": ({"exp": good["exp"], "sig": good["sig"]}, 401),
        "expired": (expired, 401),
        "no sig": ({"exp": good["exp"], "code": good["code"]}, 401),
        "no exp": ({"code": good["code"], "sig": good["sig"]}, 401),
        "exp not a number": ({**good, "exp": "tomorrow"}, 401),
    }
    with TestClient(app) as http:
        for name, (params, status) in cases.items():
            response = http.get(f"/admin?{urlencode(params)}", follow_redirects=False)
            assert response.status_code == status, name
            assert "set-cookie" not in response.headers, name
            assert response.headers["cache-control"] == "no-store", name
        assert http.get("/admin").status_code == 401  # no session came out of any of them
        assert http.get("/v1/admin/overview").status_code == 401


def test_admin_link_is_refused_when_admin_pages_are_disabled(db, redis_client, test_services):
    app = create_app(db, redis_client, prefix=test_services.redis_prefix, admin_key=None)
    link = mint_admin_link(secret=app.state.dashboard_secret, ttl=60)
    with TestClient(app) as http:
        assert http.get(link, follow_redirects=False).status_code == 503


def test_mint_admin_link_has_a_fresh_code_and_needs_a_positive_ttl():
    url = mint_admin_link(secret="s3", ttl=60, base_url="http://h:1/", now=1000)
    assert url.startswith("http://h:1/admin?exp=1060&code=") and len(_query(url)["sig"]) == 64
    again = mint_admin_link(secret="s3", ttl=60, base_url="http://h:1", now=1000)
    assert again.startswith("http://h:1/admin?exp=1060&code=")
    assert _query(again)["code"] != _query(url)["code"]  # every link is a new one-time code
    with pytest.raises(ValueError, match="ttl"):
        mint_admin_link(secret="s3", ttl=0)


def test_demo_psql_line_carries_no_password():
    from meterline.core.redaction import without_password as _without_password

    assert (
        _without_password("postgresql://meterline:s3cret@db.example:5432/meterline")
        == "postgresql://meterline@db.example:5432/meterline"
    )
    assert _without_password("postgresql://postgres@127.0.0.1:5432/x") == (
        "postgresql://postgres@127.0.0.1:5432/x"
    )
    assert "s3cret" not in _without_password("redis://:s3cret@cache:6379/0")
