"""The delivery channels: email (SMTP or an ``.eml`` outbox), a signed webhook, a Redis list.
Each implements :class:`alerts.notification.Channel`."""
