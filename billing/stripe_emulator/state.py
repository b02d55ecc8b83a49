"""The emulator's store: every object by kind, plain JSON, and lookups by id.

State is plain JSON, written atomically to ``<state_dir>/state.json`` after every change, so
it survives restarts. Every request runs under one lock (the emulator is for tests and demos,
not throughput). Stripe's rules for each kind of object live in ``customers``,
``invoice_items``, ``invoices`` and ``invoice_lifecycle``.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import threading
from pathlib import Path
from typing import Any

from billing.stripe_emulator.failures import missing

_ALPHABET = string.ascii_letters + string.digits
DEFAULT_CONFIG: dict[str, Any] = {
    "search_lag_seconds": 0,
    "webhook_url": None,  # where events are posted (webhooks.WebhookSender)
    "webhook_secret": None,  # signs them (Stripe-Signature); never shown by GET
}


def new_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def merge_metadata(obj: dict[str, Any], metadata: dict[str, str]) -> None:
    """Stripe's metadata update: ``""`` for the whole hash clears it, for a key removes it."""
    if not metadata:
        obj["metadata"] = {}
        return
    for key, value in metadata.items():
        if value == "":
            obj["metadata"].pop(key, None)
        else:
            obj["metadata"][key] = value


class EmulatorState:
    def __init__(self, state_dir: str | Path | None = None):
        self.lock = threading.RLock()
        self.path = Path(state_dir) / "state.json" if state_dir else None
        self.data: dict[str, Any] = self._empty()
        if self.path and self.path.exists():
            self.data = {**self._empty(), **json.loads(self.path.read_text())}
            self.data["config"] = {**DEFAULT_CONFIG, **self.data["config"]}
        self.outbox: list[dict[str, Any]] = []  # events to deliver (events.emit_invoice_event)

    @staticmethod
    def _empty() -> dict[str, Any]:
        return {
            "customers": {},
            "deleted_customers": {},  # id -> when: retrieve answers {"deleted": true}
            "invoices": {},
            "invoiceitems": {},
            "idempotency": {},
            "invoice_numbers": {},
            "balance_transactions": {},
            "webhook_endpoints": {},
            "events": [],
            "config": dict(DEFAULT_CONFIG),
        }

    def configure(self, changes: dict[str, Any]) -> None:
        """Set emulator behaviour (``/_emulator/config``); unknown names are refused."""
        unknown = set(changes) - set(DEFAULT_CONFIG)
        if unknown:
            raise ValueError(
                f"unknown config field(s) {sorted(unknown)}; allowed: {sorted(DEFAULT_CONFIG)}"
            )
        merged = {**self.data["config"], **changes}
        lag = merged["search_lag_seconds"]
        if not isinstance(lag, int | float) or lag < 0:
            raise ValueError("search_lag_seconds must be a number of seconds >= 0")
        url, secret = merged["webhook_url"], merged["webhook_secret"]
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("http://", "https://"))
        ):
            raise ValueError("webhook_url must be an http(s) URL, or null to stop sending events")
        if secret is not None and (not isinstance(secret, str) or not secret.strip()):
            raise ValueError("webhook_secret must be a non-empty string (Stripe's are whsec_...)")
        if (url is None) != (secret is None):
            raise ValueError("webhook_url and webhook_secret go together: set both, or neither")
        with self.lock:
            self.data["config"].update(merged)
            self.save()

    def public_config(self) -> dict[str, Any]:
        """The config as ``GET /_emulator/config`` shows it: the webhook secret masked."""
        config = dict(self.data["config"])
        if config.get("webhook_secret"):
            config["webhook_secret"] = "set (not shown)"
        return config

    # persistence ------------------------------------------------------------------------
    def save(self) -> None:
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.touch(mode=0o600)  # it holds the webhook secret: owner only
        tmp.chmod(0o600)
        tmp.write_text(json.dumps(self.data, separators=(",", ":")))
        os.replace(tmp, self.path)

    def reset(self) -> None:
        """Forget every object, event and setting (the webhook endpoint too)."""
        with self.lock:
            self.data = self._empty()
            self.outbox.clear()
            self.save()

    # lookups ------------------------------------------------------------------------------
    def customer(self, customer_id: str, param: str = "id") -> dict[str, Any]:
        customer = self.data["customers"].get(customer_id)
        if customer is None:
            raise missing("customer", customer_id, param)
        return customer

    def invoice(self, invoice_id: str, param: str = "id") -> dict[str, Any]:
        invoice = self.data["invoices"].get(invoice_id)
        if invoice is None:
            raise missing("invoice", invoice_id, param)
        return invoice

    def invoice_item(self, item_id: str) -> dict[str, Any]:
        item = self.data["invoiceitems"].get(item_id)
        if item is None:
            raise missing("invoiceitem", item_id)
        return item

    def items_of(self, invoice_id: str) -> list[dict[str, Any]]:
        return [i for i in self.data["invoiceitems"].values() if i["invoice"] == invoice_id]
