"""The notifier: the channels an installation has configured, and the one a routed
``meterline.alerts`` row uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.channels.email import DEFAULT_SENDER, EmailChannel
from alerts.channels.redis_list import RedisListChannel
from alerts.channels.webhook import WebhookChannel
from alerts.notification import Channel, ChannelNotConfigured
from alerts.thresholds import ADMIN_EMAIL, EMAIL, REDIS, WEBHOOK
from meterline.core.secrets import stored_webhook_secrets
from meterline.core.settings import DEFAULT_HOME

DEFAULT_ADMIN_EMAIL = "admin@localhost"


def _given(value: str | None) -> str | None:
    """A configured value, or None when unset or blank."""
    return (value or "").strip() or None


@dataclass(frozen=True)
class Notifier:
    """Email (SMTP or outbox) for tenants and the admin, the signed webhook, the Redis list."""

    email: EmailChannel
    webhook: WebhookChannel = field(default_factory=WebhookChannel)
    redis_list: RedisListChannel = field(default_factory=RedisListChannel)
    admin_email: str = DEFAULT_ADMIN_EMAIL

    @classmethod
    def configure(
        cls,
        *,
        home: Path | str | None = None,
        smtp_url: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        admin_email: str | None = None,
        sender: str | None = None,
        outbox_dir: Path | str | None = None,
        redis: Any = None,
        redis_prefix: str = "meterline",
        timeout: float = 10.0,
    ) -> Notifier:
        """Every value is optional; unset or blank means the default: ``home`` is
        METERLINE_HOME (``.meterline``), no ``smtp_url`` writes ``<home>/outbox/*.eml``, no
        ``webhook_url`` skips the webhook, whose secrets are ``webhook_secret``
        (ALERT_WEBHOOK_SECRET: space-separated while rotating), else one generated once under
        ``home``; the admin is ``admin@localhost``."""
        root = Path(_given(str(home or "")) or DEFAULT_HOME).expanduser().resolve()
        url = _given(webhook_url)
        secrets = stored_webhook_secrets(root, _given(webhook_secret)) if url else ()
        return cls(
            email=EmailChannel.configure(
                outbox_dir=Path(outbox_dir) if outbox_dir else root / "outbox",
                smtp_url=_given(smtp_url),
                sender=_given(sender) or DEFAULT_SENDER,
                timeout=timeout,
            ),
            webhook=WebhookChannel(url=url, secrets=secrets, timeout=timeout),
            redis_list=RedisListChannel(redis=redis, prefix=redis_prefix),
            admin_email=_given(admin_email) or DEFAULT_ADMIN_EMAIL,
        )

    def channel(self, name: str, *, to: str | None = None) -> Channel:
        """The channel a ``meterline.alerts`` row names (``to``: the tenant's address)."""
        if name == EMAIL:
            return self.email.to(to)
        if name == ADMIN_EMAIL:
            return self.email.to(self.admin_email)
        if name == WEBHOOK:
            return self.webhook
        if name == REDIS:
            return self.redis_list
        raise ChannelNotConfigured(f"unknown channel {name!r}")
