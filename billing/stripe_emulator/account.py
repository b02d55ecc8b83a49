"""The account behind the key (``GET /v1/account``) and its webhook endpoints.

What ``meterline stripe check`` reads to tell an operator the key works and Stripe can reach
Meterline's webhook: the account (the emulator's is always a test-mode account) and the
endpoints (create, list, delete; ``secret`` is returned on create only, as Stripe does, and
kept to sign the events the endpoint listens to: ``webhooks.webhook_targets``).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from billing.stripe_emulator.failures import StripeFailure, missing, missing_param
from billing.stripe_emulator.params import as_metadata
from billing.stripe_emulator.state import EmulatorState, new_id
from meterline.core import clock

ACCOUNT_ID = "acct_meterlineemulator"


def current_account(state: EmulatorState) -> dict[str, Any]:
    return {
        "id": ACCOUNT_ID,
        "object": "account",
        "business_type": None,
        "charges_enabled": False,  # the emulator never moves money
        "country": "US",
        "created": None,
        "default_currency": "usd",
        "details_submitted": False,
        "email": None,
        "payouts_enabled": False,
        "type": "standard",
    }


def create_webhook_endpoint(state: EmulatorState, params: dict[str, Any]) -> dict[str, Any]:
    url = params.get("url")
    if not url:
        raise missing_param("url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StripeFailure(400, f"Invalid URL: {url}", code="url_invalid", param="url")
    events = params.get("enabled_events")
    if not events:
        raise missing_param("enabled_events")
    if not isinstance(events, list):
        events = [events]
    endpoint = {
        "id": new_id("we"),
        "object": "webhook_endpoint",
        "api_version": params.get("api_version"),
        "application": None,
        "created": int(clock.timestamp()),
        "description": params.get("description"),
        "enabled_events": events,
        "livemode": False,
        "metadata": as_metadata(params) or {},
        "status": "enabled",
        "url": url,
    }
    secret = "whsec_" + secrets.token_urlsafe(24)
    state.data["webhook_endpoints"][endpoint["id"]] = endpoint
    state.data.setdefault("webhook_endpoint_secrets", {})[endpoint["id"]] = secret
    return {**endpoint, "secret": secret}


def list_webhook_endpoints(state: EmulatorState, params: dict[str, Any]) -> list[dict[str, Any]]:
    return list(state.data["webhook_endpoints"].values())[::-1]


def delete_webhook_endpoint(state: EmulatorState, endpoint_id: str) -> dict[str, Any]:
    if state.data["webhook_endpoints"].pop(endpoint_id, None) is None:
        raise missing("webhook_endpoint", endpoint_id)
    state.data.get("webhook_endpoint_secrets", {}).pop(endpoint_id, None)
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}
