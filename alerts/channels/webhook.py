"""The alert webhook: ``POST`` of JSON with a Slack-compatible ``text`` field to
``ALERT_WEBHOOK_URL``, signed per the Standard Webhooks spec (https://www.standardwebhooks.com)
with the ``standardwebhooks`` library.

Every request carries ``webhook-id`` (the message key: the same on a retry, so receivers can
dedupe on it), ``webhook-timestamp`` (unix seconds) and ``webhook-signature``:
``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one per secret, separated by spaces.
A receiver verifies with off-the-shelf code, e.g. in Python::

    from standardwebhooks import Webhook
    Webhook("whsec_...").verify(body, request.headers)   # raises when forged, altered or stale

The secrets are ``ALERT_WEBHOOK_SECRET`` (several, space-separated, while rotating: each one
signs, so a receiver holding either the new or the previous secret accepts), else a random
``whsec_`` secret generated once in ``<METERLINE_HOME>/webhook_secret`` (mode 0600) - read it
there to configure a receiver. It is independent of the admin key and of the key that signs
sessions, so a receiver that holds it can verify alerts and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from standardwebhooks import Webhook

from alerts.notification import ChannelNotConfigured, DeliveryError, Notification, NotifyConfigError
from meterline.core import clock
from meterline.core.redaction import url_origin
from meterline.core.secrets import WEBHOOK_SECRET_PREFIX

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def signer(secret: str) -> Webhook:
    """The library's ``Webhook`` for one secret: ``whsec_<base64>`` as the spec says; any
    other value is used as its UTF-8 bytes (receivers: ``Webhook(secret.encode())``)."""
    if secret.startswith(WEBHOOK_SECRET_PREFIX):
        return Webhook(secret)
    return Webhook(secret.encode())


def signature_headers(secrets: tuple[str, ...] | list[str], msg_id: str, body: bytes) -> dict:
    """The three Standard Webhooks headers for ``body``, signed with every secret."""
    at = clock.now()
    text = body.decode()
    signatures = " ".join(signer(s).sign(msg_id, at, text) for s in secrets)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(int(at.timestamp())),
        SIGNATURE_HEADER: signatures,
    }


@dataclass(frozen=True)
class WebhookChannel:
    """Signed ``POST`` to ``url``; without a ``url`` every send is skipped."""

    url: str | None = None
    secrets: tuple[str, ...] = ()
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(("http://", "https://")):
            raise NotifyConfigError(
                "ALERT_WEBHOOK_URL must be an http(s) URL (got a value starting "
                f"{self.url.split(':', 1)[0]!r}); unset it to skip webhook alerts"
            )
        if self.url and not self.secrets:
            raise NotifyConfigError(
                "a webhook secret is required to sign ALERT_WEBHOOK_URL payloads: "
                "set ALERT_WEBHOOK_SECRET"
            )

    def describe(self) -> str:
        return url_origin(self.url) or "not configured (ALERT_WEBHOOK_URL unset)"

    def send(self, message: Notification) -> str:
        if not self.url:
            raise ChannelNotConfigured("ALERT_WEBHOOK_URL is not set")
        import httpx

        body = message.json_body()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "meterline-alerts/2",
            **signature_headers(self.secrets, message.key, body),
        }
        where = url_origin(self.url)
        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            reason = str(exc).replace(self.url, where)
            raise DeliveryError(f"webhook {where}: {type(exc).__name__}: {reason}") from exc
        if response.status_code >= 300:
            raise DeliveryError(
                f"webhook {where} answered HTTP {response.status_code}: {response.text[:200]}"
            )
        return f"{where} (HTTP {response.status_code})"
