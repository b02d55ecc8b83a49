"""The ``notifier`` resource: email (SMTP or outbox), signed webhook and the Redis list.

Built from the settings in :func:`orchestration.resources.resources_from_settings` like every
other resource. Each of these variables is optional and an empty value means its default (see
``alerts.notifier.Notifier.configure``): no ``SMTP_URL`` writes ``.eml`` files to
``<METERLINE_HOME>/outbox/``, no ``ALERT_WEBHOOK_URL`` skips the webhook, and so on.
"""

from __future__ import annotations

import dagster as dg

from orchestration.resources import RedisResource


class NotifierResource(dg.ConfigurableResource):
    """Sends alerts. Every field is optional; empty means the default."""

    home: str | None = None  # METERLINE_HOME: the outbox and the generated webhook secret
    smtp_url: str | None = None  # SMTP_URL; empty: .eml files in <home>/outbox/
    webhook_url: str | None = None  # ALERT_WEBHOOK_URL; empty: webhook deliveries skipped
    webhook_secret: str | None = None  # ALERT_WEBHOOK_SECRET (space-separated); empty: generated
    admin_email: str | None = None  # METERLINE_ADMIN_EMAIL; empty: admin@localhost
    sender: str | None = None  # METERLINE_ALERT_SENDER; empty: Meterline <alerts@...>
    outbox_dir: str | None = None  # empty: <home>/outbox
    timeout_seconds: float = 10.0

    def notifier(self, redis: RedisResource | None = None):
        from alerts.notifier import Notifier

        return Notifier.configure(
            home=self.home,
            smtp_url=self.smtp_url,
            webhook_url=self.webhook_url,
            webhook_secret=self.webhook_secret,
            admin_email=self.admin_email,
            sender=self.sender,
            outbox_dir=self.outbox_dir,
            redis=redis.client() if redis is not None else None,
            redis_prefix=redis.prefix if redis is not None else "meterline",
            timeout=self.timeout_seconds,
        )
