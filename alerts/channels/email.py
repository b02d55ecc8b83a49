"""Email: SMTP when ``SMTP_URL`` is set, else one ``.eml`` file per message in the outbox.

``SMTP_URL`` like ``smtp://user:pass@host:587`` (STARTTLS on port 587 or with
``?starttls=1``), ``smtps://user:pass@host:465`` (implicit TLS) or ``smtp://host:25`` (plain,
for a local relay). Without it every message is written to ``<METERLINE_HOME>/outbox/``; the
file name is derived from the message key, so a re-sent message overwrites its own file
instead of adding a second one.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from alerts.notification import ChannelNotConfigured, DeliveryError, Notification, NotifyConfigError

DEFAULT_SENDER = "Meterline <alerts@meterline.localhost>"

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


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


def _file_name(key: str) -> str:
    return _UNSAFE.sub("_", key).strip("._")[:200] + ".eml"


@dataclass(frozen=True)
class EmailChannel:
    """Email to ``recipient`` over SMTP (``smtp``) or into ``outbox_dir`` (no ``smtp``).
    :meth:`to` gives the same channel for another recipient."""

    outbox_dir: Path
    smtp: SmtpTarget | None = None
    sender: str = DEFAULT_SENDER
    recipient: str | None = None
    timeout: float = 10.0

    @classmethod
    def configure(
        cls,
        *,
        outbox_dir: Path | str,
        smtp_url: str | None = None,
        sender: str = DEFAULT_SENDER,
        timeout: float = 10.0,
    ) -> EmailChannel:
        return cls(
            outbox_dir=Path(outbox_dir),
            smtp=SmtpTarget.parse(smtp_url) if smtp_url else None,
            sender=sender,
            timeout=timeout,
        )

    def to(self, recipient: str | None) -> EmailChannel:
        return replace(self, recipient=recipient)

    def describe(self) -> str:
        target = self.smtp.describe() if self.smtp else f"outbox {self.outbox_dir}"
        return f"{target} to {self.recipient}" if self.recipient else target

    def build_email(self, message: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = self.recipient
        msg["Subject"] = message.subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = f"<{_UNSAFE.sub('-', message.key)}@meterline>"
        msg["X-Meterline-Alert"] = message.key
        msg.set_content(message.text)
        return msg

    def send(self, message: Notification) -> str:
        if not self.recipient:
            raise ChannelNotConfigured("no recipient email address")
        msg = self.build_email(message)
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
        return f"{target.describe()} to {self.recipient}"

    def _write_outbox(self, msg: EmailMessage, key: str) -> str:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        path = self.outbox_dir / _file_name(key)
        tmp = path.with_suffix(".eml.tmp")
        tmp.write_bytes(bytes(msg))
        tmp.replace(path)
        return str(path)
