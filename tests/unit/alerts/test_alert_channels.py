"""Channels without Postgres/Redis: SMTP URL parsing, a real SMTP server with AUTH on loopback,
the outbox fallback, Standard Webhooks signatures and the secret fallback."""

from __future__ import annotations

import asyncio
import email
import socket
import time
from email import policy

import pytest

from alerts.channels.email import EmailChannel, SmtpTarget
from alerts.channels.redis_list import RedisListChannel
from alerts.channels.webhook import WebhookChannel, signature_headers
from alerts.notification import ChannelNotConfigured, DeliveryError, Notification, NotifyConfigError
from alerts.notifier import Notifier
from meterline.core.secrets import new_webhook_secret

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
        WebhookChannel(url="ftp://x", secrets=("s",))


def test_signatures_verify_with_the_standard_webhooks_library_during_a_rotation():
    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError

    new, previous = new_webhook_secret(), new_webhook_secret()
    body = MSG.json_body()
    headers = signature_headers((new, previous), MSG.key, body)
    assert headers["webhook-id"] == MSG.key
    assert [s.split(",")[0] for s in headers["webhook-signature"].split(" ")] == ["v1", "v1"]
    # a receiver holding either secret accepts; one holding another secret does not
    assert Webhook(new).verify(body, headers)["id"] == MSG.key
    assert Webhook(previous).verify(body, headers)["text"] == "hello"
    for secret, sent, sent_headers in (
        (new_webhook_secret(), body, headers),
        (new, body + b" ", headers),
        (new, body, {**headers, "webhook-id": "another-message"}),
        (new, body, {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}),
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(sent, sent_headers)
    # a plain (non-whsec_) secret signs as its UTF-8 bytes
    plain = signature_headers(("plain-secret",), MSG.key, body)
    assert Webhook(b"plain-secret").verify(body, plain)


def test_outbox_without_smtp_url_one_file_per_message(tmp_path):
    outbox = EmailChannel.configure(outbox_dir=tmp_path / "outbox")
    where = outbox.to("ops@acme.test").send(MSG)
    assert where.endswith("quota-acme-api_calls-2026-11-80.eml")
    outbox.to("ops@acme.test").send(MSG)  # the same message again overwrites its own file
    files = list((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == ["quota-acme-api_calls-2026-11-80.eml"]
    msg = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert msg["To"] == "ops@acme.test" and msg["Subject"] == "[Meterline] hi"
    assert msg["Message-ID"] == "<quota-acme-api_calls-2026-11-80@meterline>"
    with pytest.raises(ChannelNotConfigured):
        WebhookChannel().send(MSG)
    with pytest.raises(ChannelNotConfigured):
        RedisListChannel().send(MSG)
    assert outbox.describe() == f"outbox {tmp_path / 'outbox'}"
    assert WebhookChannel().describe().startswith("not configured")
    assert RedisListChannel().describe() == "Redis list meterline:notifications"


def test_configured_defaults_and_generated_webhook_secret(tmp_path):
    # METERLINE_HOME and ALERT_WEBHOOK_URL set; SMTP_URL, the secret and the admin unset (empty)
    url = "http://127.0.0.1:9/services/T000/B000/hook-token"
    given = {"home": str(tmp_path), "webhook_url": url, "smtp_url": ""}
    n = Notifier.configure(**given, admin_email="")
    assert n.email.smtp is None and n.email.outbox_dir == tmp_path / "outbox"
    assert n.admin_email == "admin@localhost"
    secret_file = tmp_path / "webhook_secret"
    assert n.webhook.secrets == (secret_file.read_text().strip(),)
    assert n.webhook.secrets[0].startswith("whsec_")
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert Notifier.configure(**given).webhook.secrets == n.webhook.secrets  # stable across runs
    rotating = Notifier.configure(**given, webhook_secret="whsec_bmV3 whsec_b2xk")
    assert rotating.webhook.secrets == ("whsec_bmV3", "whsec_b2xk")
    assert n.webhook.describe() == "http://127.0.0.1:9/..."
    with pytest.raises(DeliveryError, match=r"webhook http://127\.0\.0\.1:9/\.\.\.") as failed:
        n.webhook.send(MSG)  # nothing listens on port 9: a failed delivery, retried later
    assert "hook-token" not in str(failed.value) and "/services" not in str(failed.value)


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
        good = EmailChannel.configure(
            outbox_dir=".", smtp_url=f"smtp://alerts:p%40ss@127.0.0.1:{port}"
        ).to("ops@acme.test")
        assert good.send(MSG) == f"smtp://127.0.0.1:{port} to ops@acme.test"
        bad = EmailChannel.configure(
            outbox_dir=".", smtp_url=f"smtp://alerts:wrong@127.0.0.1:{port}"
        ).to("ops@acme.test")
        with pytest.raises(DeliveryError, match=r"SMTP smtp://127\.0\.0\.1"):
            bad.send(MSG)
    finally:
        controller.stop()
        asyncio.set_event_loop(asyncio.new_event_loop())
    [(authenticated, rcpts, content)] = received
    assert authenticated and rcpts == ["ops@acme.test"] and b"hello" in content
