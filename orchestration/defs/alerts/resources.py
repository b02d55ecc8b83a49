"""The ``notifier`` resource: email (SMTP or outbox), signed webhook and the Redis list.

The code location configures it from the environment with ``dg.EnvVar`` (``SMTP_URL``,
``ALERT_WEBHOOK_URL``, ``METERLINE_WEBHOOK_SECRET``, ``METERLINE_ADMIN_EMAIL``,
``METERLINE_ALERT_SENDER``; the CLI exports every setting, empty when unset). An empty or
missing field means the settings' default: the outbox under ``METERLINE_HOME`` instead of
SMTP, no webhook, a generated webhook secret.
"""

from __future__ import annotations

import dagster as dg

from orchestration.resources import RedisResource


class NotifierResource(dg.ConfigurableResource):
    """Sends alerts. An empty field falls back to the settings' default."""

    smtp_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    admin_email: str | None = None
    sender: str | None = None
    outbox_dir: str | None = None
    timeout_seconds: float = 10.0

    def notifier(self, redis: RedisResource | None = None):
        from ingestion.notify import Notifier

        return Notifier.from_env(
            redis=redis.client() if redis is not None else None,
            redis_prefix=redis.prefix if redis is not None else None,
            smtp_url=self.smtp_url or None,
            webhook_url=self.webhook_url or None,
            webhook_secret=self.webhook_secret or None,
            admin_email=self.admin_email or None,
            sender=self.sender or None,
            outbox_dir=self.outbox_dir or None,
            timeout=self.timeout_seconds,
        )


defs = dg.Definitions(
    resources={
        "notifier": NotifierResource(
            smtp_url=dg.EnvVar("SMTP_URL"),
            webhook_url=dg.EnvVar("ALERT_WEBHOOK_URL"),
            webhook_secret=dg.EnvVar("METERLINE_WEBHOOK_SECRET"),
            admin_email=dg.EnvVar("METERLINE_ADMIN_EMAIL"),
            sender=dg.EnvVar("METERLINE_ALERT_SENDER"),
        )
    }
)
