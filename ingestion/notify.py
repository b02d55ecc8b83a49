"""Notification senders: email (SMTP or an ``.eml`` outbox), a signed webhook, a Redis list.

Plain Python, no Dagster: the orchestration layer builds a :class:`Notifier` from the
environment (``Notifier.from_env``) and hands it to :mod:`ingestion.alerts`.

Email
    ``SMTP_URL`` like ``smtp://user:pass@host:587`` (STARTTLS on port 587 or with
    ``?starttls=1``), ``smtps://user:pass@host:465`` (implicit TLS) or ``smtp://host:25``
    (plain, for a local relay). Without ``SMTP_URL`` every message is written as one ``.eml``
    file to ``<METERLINE_HOME>/outbox/``; the file name is derived from the message key, so a
    re-sent message overwrites its own file instead of adding a second one.
Webhook
    ``ALERT_WEBHOOK_URL``: ``POST`` of JSON with a Slack-compatible ``text`` field. Signed with
    HMAC-SHA256 over ``<timestamp>.<body>`` (the timestamp defeats replays), sent as
    ``X-Meterline-Signature: sha256=<hex>`` with ``X-Meterline-Timestamp: <unix seconds>``
    and ``X-Meterline-Delivery: <message key>`` (receivers may dedupe on it). Verify with
    :func:`verify_signature`. The secret is ``METERLINE_WEBHOOK_SECRET``, else
    ``METERLINE_ADMIN_KEY``, else a random secret generated once and kept in
    ``<METERLINE_HOME>/webhook_secret`` (mode 0600) - read it there to configure a receiver.
Redis
    ``LPUSH`` of the same JSON to ``<prefix>:notifications`` (``meterline:notifications`` with
    the default prefix), trimmed to the newest :data:`REDIS_LIST_MAX` entries. Consumers
    ``BRPOP`` it (oldest first).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from meterline.core import clock

DEFAULT_ADMIN_EMAIL = "admin@localhost"
DEFAULT_SENDER = "Meterline <alerts@meterline.localhost>"
SIGNATURE_HEADER = "X-Meterline-Signature"
TIMESTAMP_HEADER = "X-Meterline-Timestamp"
DELIVERY_HEADER = "X-Meterline-Delivery"
REDIS_LIST_MAX = 10_000
SIGNATURE_TOLERANCE_SECONDS = 300


class NotifyConfigError(ValueError):
    """A notification setting is unusable; the message names the variable and the fix."""


class ChannelNotConfigured(RuntimeError):
    """The channel has no destination (e.g. no ``ALERT_WEBHOOK_URL``): the delivery is skipped."""


class DeliveryError(RuntimeError):
    """A delivery was attempted and failed; it may be retried."""


@dataclass(frozen=True)
class Notification:
    """One message, rendered once and sent on any channel.

    ``key`` is stable for the same logical message (e.g. ``quota-acme-api_calls-2026-11-90``)
    and becomes the Message-ID, the outbox file name and ``X-Meterline-Delivery``.
    """

    key: str
    subject: str
    text: str
    payload: Mapping[str, object] = field(default_factory=dict)

    def json_body(self) -> bytes:
        body = {"text": self.text, **self.payload, "id": self.key}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    mode: str  # "plain" | "starttls" | "ssl"

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise NotifyConfigError(
                f"SMTP_URL must start with smtp:// or smtps:// (got {parts.scheme or 'no scheme'!r}), "
                "e.g. smtp://user:pass@mail.example.com:587; unset it to write emails to the outbox"
            )
        if not parts.hostname:
            raise NotifyConfigError(
                "SMTP_URL has no host, e.g. smtp://user:pass@mail.example.com:587"
            )
        try:
            port = parts.port
        except ValueError:
            raise NotifyConfigError(
                "SMTP_URL has an invalid port, e.g. smtp://mail.example.com:587"
            ) from None
        query = parse_qs(parts.query)
        if parts.scheme == "smtps":
            mode, port = "ssl", port or 465
        else:
            port = port or 25
            wants_tls = query.get("starttls", [""])[0].lower() in ("1", "true", "yes")
            mode = "starttls" if port == 587 or wants_tls else "plain"
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            mode=mode,
        )

    def describe(self) -> str:
        scheme = "smtps" if self.mode == "ssl" else "smtp"
        return f"{scheme}://{self.host}:{self.port}"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``<timestamp>.<body>``)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    *,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does: recompute the signature and reject stale timestamps."""
    if not timestamp or not signature:
        return False
    try:
        age = abs((now if now is not None else clock.timestamp()) - int(timestamp))
    except ValueError:
        return False
    if age > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def webhook_secret(env: Mapping[str, str], home: Path) -> str:
    """``METERLINE_WEBHOOK_SECRET``, else ``METERLINE_ADMIN_KEY``, else a generated secret
    persisted in ``<home>/webhook_secret`` (created once, mode 0600)."""
    for name in ("METERLINE_WEBHOOK_SECRET", "METERLINE_ADMIN_KEY"):
        value = (env.get(name) or "").strip()
        if value:
            return value
    path = home / "webhook_secret"
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _file_name(key: str) -> str:
    return _UNSAFE.sub("_", key).strip("._")[:200] + ".eml"


class Notifier:
    """Sends :class:`Notification` objects. Each ``send_*`` returns where the message went
    (for ``meterline.alerts`` and run metadata), raises :class:`ChannelNotConfigured` when the
    channel has no destination and :class:`DeliveryError` when the attempt failed."""

    def __init__(
        self,
        *,
        outbox_dir: Path,
        smtp_url: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        redis=None,
        redis_prefix: str = "meterline",
        admin_email: str = DEFAULT_ADMIN_EMAIL,
        sender: str = DEFAULT_SENDER,
        timeout: float = 10.0,
    ):
        self.smtp = SmtpTarget.parse(smtp_url) if smtp_url else None
        if webhook_url and not webhook_url.startswith(("http://", "https://")):
            raise NotifyConfigError(
                f"ALERT_WEBHOOK_URL must be an http(s) URL, got {webhook_url!r}; "
                "unset it to skip webhook alerts"
            )
        if webhook_url and not webhook_secret:
            raise NotifyConfigError(
                "a webhook secret is required to sign ALERT_WEBHOOK_URL payloads: "
                "set METERLINE_WEBHOOK_SECRET"
            )
        self.outbox_dir = Path(outbox_dir)
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.redis = redis
        self.redis_prefix = redis_prefix
        self.admin_email = admin_email
        self.sender = sender
        self.timeout = timeout

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        redis=None,
        redis_prefix: str | None = None,
        **overrides,
    ) -> Notifier:
        """Build from the environment (``Settings.from_env`` plus ``METERLINE_ADMIN_EMAIL``,
        ``METERLINE_WEBHOOK_SECRET`` and ``METERLINE_ALERT_SENDER``); keyword overrides that
        are not None win."""
        from meterline.core.settings import Settings

        env = os.environ if env is None else env
        settings = Settings.from_env(env)
        given = {k: v for k, v in overrides.items() if v is not None}
        webhook_url = given.pop("webhook_url", settings.alert_webhook_url)
        secret = given.pop("webhook_secret", None)
        if secret is None and webhook_url:
            secret = webhook_secret(env, settings.home)
        options: dict = {
            "outbox_dir": settings.outbox_dir,
            "smtp_url": settings.smtp_url,
            "admin_email": (env.get("METERLINE_ADMIN_EMAIL") or "").strip() or DEFAULT_ADMIN_EMAIL,
            "sender": (env.get("METERLINE_ALERT_SENDER") or "").strip() or DEFAULT_SENDER,
        }
        options.update(given)
        return cls(
            webhook_url=webhook_url,
            webhook_secret=secret,
            redis=redis,
            redis_prefix=redis_prefix or settings.redis_prefix,
            **options,
        )

    def describe(self, channel: str) -> str:
        """Where a channel delivers, for summaries (``email``, ``admin_email``, ``webhook``,
        ``redis``)."""
        email_target = self.smtp.describe() if self.smtp else f"outbox {self.outbox_dir}"
        return {
            "email": email_target,
            "admin_email": f"{email_target} to {self.admin_email}",
            "webhook": self.webhook_url or "not configured (ALERT_WEBHOOK_URL unset)",
            "redis": f"Redis list {self.notifications_key}",
        }.get(channel, channel)

    @property
    def notifications_key(self) -> str:
        return f"{self.redis_prefix}:notifications"

    # -- email -----------------------------------------------------------------------------
    def build_email(self, to: str, message: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = message.subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = f"<{_UNSAFE.sub('-', message.key)}@meterline>"
        msg["X-Meterline-Alert"] = message.key
        msg.set_content(message.text)
        return msg

    def send_email(self, to: str | None, message: Notification) -> str:
        if not to:
            raise ChannelNotConfigured("no recipient email address")
        msg = self.build_email(to, message)
        if self.smtp is None:
            return self._write_outbox(msg, message.key)
        target = self.smtp
        try:
            if target.mode == "ssl":
                client = smtplib.SMTP_SSL(
                    target.host,
                    target.port,
                    timeout=self.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                client = smtplib.SMTP(target.host, target.port, timeout=self.timeout)
            with client:
                if target.mode == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if target.username:
                    client.login(target.username, target.password or "")
                client.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {target.describe()}: {exc}") from exc
        return f"{target.describe()} to {to}"

    def _write_outbox(self, msg: EmailMessage, key: str) -> str:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        path = self.outbox_dir / _file_name(key)
        tmp = path.with_suffix(".eml.tmp")
        tmp.write_bytes(bytes(msg))
        tmp.replace(path)
        return str(path)

    # -- webhook ---------------------------------------------------------------------------
    def post_webhook(self, message: Notification) -> str:
        if not self.webhook_url:
            raise ChannelNotConfigured("ALERT_WEBHOOK_URL is not set")
        import httpx

        body = message.json_body()
        timestamp = str(int(clock.timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "meterline-alerts/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.webhook_secret or "", timestamp, body),
            DELIVERY_HEADER: message.key,
        }
        try:
            response = httpx.post(
                self.webhook_url, content=body, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.webhook_url}: {exc}") from exc
        if response.status_code >= 300:
            raise DeliveryError(
                f"webhook {self.webhook_url} answered HTTP {response.status_code}: "
                f"{response.text[:200]}"
            )
        return f"{self.webhook_url} (HTTP {response.status_code})"

    # -- redis -----------------------------------------------------------------------------
    def push_redis(self, message: Notification) -> str:
        if self.redis is None:
            raise ChannelNotConfigured("no Redis client given to the notifier")
        key = self.notifications_key
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.lpush(key, message.json_body())
            pipe.ltrim(key, 0, REDIS_LIST_MAX - 1)
            pipe.execute()
        except Exception as exc:  # redis.RedisError and connection errors
            raise DeliveryError(f"Redis LPUSH {key}: {exc}") from exc
        return key
