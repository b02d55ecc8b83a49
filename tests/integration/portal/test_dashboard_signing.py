"""Signed dashboard links and sessions: round trip, expiry, tampering, secret resolution
(no services needed; lives with the other dashboard tests)."""

from __future__ import annotations

import os
import stat
from urllib.parse import parse_qs, urlsplit

from portal.signing import (
    ADMIN,
    TENANT,
    mint_dashboard_link,
    resolve_secret,
    session_token,
    verify,
    verify_session,
)


def test_links_round_trip_expire_and_resist_tampering():
    url = mint_dashboard_link("acme.eu", secret="s3", ttl=60, base_url="http://h:1/", now=1000)
    assert url.startswith("http://h:1/dashboard?t=acme.eu&exp=1060&code=")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert verify("s3", TENANT, q["t"], q["exp"], q["sig"], q["code"], now=1059).subject == (
        "acme.eu"
    )
    expired = verify("s3", TENANT, q["t"], q["exp"], q["sig"], q["code"], now=1060)
    assert (expired.ok, expired.status) == (False, 401) and "expired" in expired.reason
    for t, exp, sig, code, secret in (
        ("globex", q["exp"], q["sig"], q["code"], "s3"),
        (q["t"], "99999", q["sig"], q["code"], "s3"),
        (q["t"], q["exp"], q["sig"], "other-code", "s3"),
        (q["t"], q["exp"], q["sig"], q["code"], "other"),
        (q["t"], q["exp"], "é" * 64, q["code"], "s3"),  # non-ASCII: wrong, not an exception
    ):
        assert verify(secret, TENANT, t, exp, sig, code, now=1001).status == 403
    assert verify("s3", ADMIN, q["t"], q["exp"], q["sig"], q["code"], now=1001).status == 403
    assert verify("s3", TENANT, q["t"], "soon", q["sig"], q["code"]).reason.startswith("exp:")
    assert verify("s3", TENANT, q["t"], "١٠٦٠", q["sig"], q["code"]).reason.startswith("exp:")
    # a link's signature is not a session, and a session's is not a link
    assert not verify_session("s3", TENANT, f"acme.eu:{q['exp']}:{q['sig']}", now=1001).ok
    token = session_token("s3", TENANT, "acme.eu", 2000)
    assert verify_session("s3", TENANT, token, now=1999).subject == "acme.eu"
    assert not verify_session("s3", TENANT, token, now=2000).ok
    assert not verify_session("s3", TENANT, token.replace("acme.eu", "acme"), now=1).ok
    assert not verify_session("s3", TENANT, "garbage", now=1).ok
    assert not verify_session("s3", TENANT, "acme.eu:2000:ééé", now=1).ok


def test_secret_comes_from_the_secret_key_or_a_persisted_file(tmp_path):
    assert resolve_secret({"METERLINE_SECRET_KEY": "x"}) == "x"
    env = {"METERLINE_HOME": str(tmp_path)}
    first = resolve_secret(env)
    assert resolve_secret(env) == first
    assert resolve_secret({**env, "METERLINE_ADMIN_KEY": "adm"}) == first  # independent
    assert stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode) == 0o600
    assert resolve_secret({}) != resolve_secret({})
