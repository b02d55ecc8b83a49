"""Senders without Postgres/Redis: SMTP URL parsing, a real SMTP server with AUTH on loopback,
the outbox fallback, webhook signatures and the secret fallback."""

from __future__ import annotations

import asyncio
import email
import socket
import time
from email import policy

import pytest

from ingestion.notify import (
    ChannelNotConfigured,
    DeliveryError,
    Notification,
    Notifier,
    NotifyConfigError,
    SmtpTarget,
    sign,
    verify_signature,
)

MSG = Notification(key="quota-acme-api_calls-2026-11-80", subject="[Meterline] hi", text="hello",
                   payload={"threshold": 80})  # fmt: skip


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", ("mail.example.com", 25, None, None, "plain")),
        (
            "smtp://u%40x:p%3Aw@mail.example.com:587",
            ("mail.example.com", 587, "u@x", "p:w", "starttls"),
        ),
        (
            "smtp://mail.example.com:2525?starttls=1",
            ("mail.example.com", 2525, None, None, "starttls"),
        ),
        ("smtps://u:p@mail.example.com", ("mail.example.com", 465, "u", "p", "ssl")),
    ],
)
def test_smtp_url_forms(url, expected):
    t = SmtpTarget.parse(url)
    assert (t.host, t.port, t.username, t.password, t.mode) == expected


def test_bad_smtp_url_names_the_variable_and_fix():
    with pytest.raises(NotifyConfigError, match=r"SMTP_URL must start with smtp:// .*unset it"):
        SmtpTarget.parse("http://mail.example.com")
    with pytest.raises(NotifyConfigError, match="ALERT_WEBHOOK_URL must be an http"):
        Notifier(outbox_dir=".", webhook_url="ftp://x", webhook_secret="s")


def test_signature_roundtrip_and_rejections():
    body = MSG.json_body()
    ts = str(int(time.time()))
    sig = sign("s3cret", ts, body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify_signature("s3cret", ts, body, sig)
    assert not verify_signature("other", ts, body, sig)
    assert not verify_signature("s3cret", ts, body + b" ", sig)
    assert not verify_signature(
        "s3cret", str(int(ts) - 3600), body, sign("s3cret", str(int(ts) - 3600), body)
    )
    assert not verify_signature("s3cret", None, body, sig)


def test_outbox_without_smtp_url_one_file_per_message(tmp_path):
    n = Notifier(outbox_dir=tmp_path / "outbox")
    where = n.send_email("ops@acme.test", MSG)
    assert where.endswith("quota-acme-api_calls-2026-11-80.eml")
    n.send_email("ops@acme.test", MSG)  # the same message again overwrites its own file
    files = list((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == ["quota-acme-api_calls-2026-11-80.eml"]
    msg = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert msg["To"] == "ops@acme.test" and msg["Subject"] == "[Meterline] hi"
    assert msg["Message-ID"] == "<quota-acme-api_calls-2026-11-80@meterline>"
    with pytest.raises(ChannelNotConfigured):
        n.post_webhook(MSG)
    with pytest.raises(ChannelNotConfigured):
        n.push_redis(MSG)
    assert n.describe("email") == f"outbox {tmp_path / 'outbox'}"
    assert n.describe("webhook").startswith("not configured")
    assert n.describe("redis") == "Redis list meterline:notifications"


def test_from_env_defaults_and_generated_webhook_secret(tmp_path):
    env = {"METERLINE_HOME": str(tmp_path), "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook"}
    n = Notifier.from_env(env)
    assert n.smtp is None and n.outbox_dir == tmp_path / "outbox"
    assert n.admin_email == "admin@localhost"
    secret_file = tmp_path / "webhook_secret"
    assert n.webhook_secret == secret_file.read_text().strip() and len(n.webhook_secret) == 64
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert Notifier.from_env(env).webhook_secret == n.webhook_secret  # stable across runs
    assert Notifier.from_env({**env, "METERLINE_ADMIN_KEY": "adm"}).webhook_secret == "adm"
    assert (
        Notifier.from_env(
            {**env, "METERLINE_WEBHOOK_SECRET": "w", "METERLINE_ADMIN_KEY": "adm"}
        ).webhook_secret
        == "w"
    )
    with pytest.raises(DeliveryError, match=r"webhook http://127\.0\.0\.1:9/hook"):
        n.post_webhook(MSG)  # nothing listens on port 9: a failed delivery, retried later


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_smtp_with_auth_against_a_real_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append((session.authenticated, envelope.rcpt_tos, envelope.content))
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"alerts" and auth_data.password == b"p@ss"
        return AuthResult(success=ok)

    port = _free_port()
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=port,
        authenticator=authenticator, auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    try:
        good = Notifier(outbox_dir=".", smtp_url=f"smtp://alerts:p%40ss@127.0.0.1:{port}")
        assert good.send_email("ops@acme.test", MSG) == f"smtp://127.0.0.1:{port} to ops@acme.test"
        bad = Notifier(outbox_dir=".", smtp_url=f"smtp://alerts:wrong@127.0.0.1:{port}")
        with pytest.raises(DeliveryError, match=r"SMTP smtp://127\.0\.0\.1"):
            bad.send_email("ops@acme.test", MSG)
    finally:
        controller.stop()
        asyncio.set_event_loop(asyncio.new_event_loop())
    [(authenticated, rcpts, content)] = received
    assert authenticated and rcpts == ["ops@acme.test"] and b"hello" in content
