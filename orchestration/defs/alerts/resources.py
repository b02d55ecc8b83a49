"""The ``notifier`` resource: email (SMTP or outbox), signed webhook and the Redis list.

Every field is optional. Unset fields are read from the environment when a run or sensor
uses the resource (``Notifier.from_env``: ``SMTP_URL``, ``ALERT_WEBHOOK_URL``,
``METERLINE_WEBHOOK_SECRET``, ``METERLINE_ADMIN_EMAIL``, ``METERLINE_HOME``), not at import
time, so the code location loads without them and an unset ``SMTP_URL`` means the outbox.
"""

from __future__ import annotations

import dagster as dg

from orchestration.resources import RedisResource


class NotifierResource(dg.ConfigurableResource):
    """Sends alerts. Leave fields empty to use the environment at run time."""

    smtp_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    admin_email: str | None = None
    outbox_dir: str | None = None
    timeout_seconds: float = 10.0

    def notifier(self, redis: RedisResource | None = None):
        from ingestion.notify import Notifier

        return Notifier.from_env(
            redis=redis.client() if redis is not None else None,
            redis_prefix=redis.prefix if redis is not None else None,
            smtp_url=self.smtp_url,
            webhook_url=self.webhook_url,
            webhook_secret=self.webhook_secret,
            admin_email=self.admin_email,
            outbox_dir=self.outbox_dir,
            timeout=self.timeout_seconds,
        )


defs = dg.Definitions(resources={"notifier": NotifierResource()})
