"""Idempotency keys, as Stripe documents them ("Idempotent requests", docs.stripe.com/api):

- the same key with the same parameters replays the stored response, 500s included
  (``Idempotent-Replayed: true``); another endpoint or other parameters are a
  ``400 idempotency_error``;
- a result is stored only once the endpoint started executing: a request that fails
  validation (``ParamError``, ``parameter_*`` codes) or conflicts with a concurrent request of
  the same key (``409 idempotency_key_in_use``) leaves the key unused;
- keys are at most 255 characters (a longer one is a ``400``), and a stored result is
  forgotten 24 hours after it was stored (on the emulator's clock, ``meterline.core.clock``).

Kept in the state (``data["idempotency"]``), so they survive restarts.
"""

from __future__ import annotations

import threading
from typing import Any

from billing.stripe_emulator.failures import StripeFailure
from billing.stripe_emulator.state import EmulatorState
from meterline.core import clock

Response = tuple[int, dict[str, Any], dict[str, str]]
MAX_KEY_LENGTH = 255
KEY_LIFETIME_SECONDS = 24 * 3600


def too_long(key: str) -> Response | None:
    """Stripe's 400 for a key over 255 characters (nothing executes, nothing is stored)."""
    if len(key) <= MAX_KEY_LENGTH:
        return None
    return (
        400,
        StripeFailure(
            400,
            f"Invalid idempotency key: it is {len(key)} characters long; keys may be at most "
            f"{MAX_KEY_LENGTH} characters (use a shorter Idempotency-Key, e.g. a hash).",
            param="Idempotency-Key",
        ).body(),
        {},
    )


class InFlight:
    """Keys whose request is executing right now: a second request with one is a 409."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: set[str] = set()

    def claim(self, key: str) -> Response | None:
        with self._lock:
            if key in self._keys:
                return (
                    409,
                    StripeFailure(
                        409,
                        "There is currently another in-progress request using this "
                        f"Idempotency Key ('{key}'); retry this request later.",
                        type="idempotency_error",
                        code="idempotency_key_in_use",
                    ).body(),
                    {"Stripe-Should-Retry": "true"},
                )
            self._keys.add(key)
        return None

    def release(self, key: str) -> None:
        with self._lock:
            self._keys.discard(key)


def stores(status: int, payload: dict[str, Any]) -> bool:
    """Whether a result is saved under its key: not when validation refused the request."""
    code = (payload.get("error") or {}).get("code") or ""
    return not (status == 400 and code.startswith("parameter_"))


def replay(
    state: EmulatorState, key: str, method: str, path: str, params: dict[str, Any]
) -> Response | None:
    """The stored answer for ``key`` (or the error for reusing it), None for a new key."""
    previous = state.data["idempotency"].get(key)
    if previous is None:
        return None
    if clock.timestamp() - previous.get("stored_at", 0) >= KEY_LIFETIME_SECONDS:
        del state.data["idempotency"][key]  # expired: the key is new again
        return None
    if (previous["method"], previous["path"]) != (method, path):
        return (
            400,
            StripeFailure(
                400,
                "Keys for idempotent requests can only be used for the same endpoint "
                f"they were first used for ('{previous['method']} {previous['path']}' vs "
                f"'{method} {path}'). Try using a key other than '{key}' if you "
                "meant to execute a different request.",
                type="idempotency_error",
            ).body(),
            {},
        )
    if previous["params"] != params:
        return (
            400,
            StripeFailure(
                400,
                "Keys for idempotent requests can only be used with the same parameters "
                f"they were first used with. Try using a key other than '{key}' if "
                "you meant to execute a different request.",
                type="idempotency_error",
            ).body(),
            {},
        )
    return (
        previous["status"],
        previous["body"],
        {"Idempotent-Replayed": "true", "Idempotency-Key": key},
    )


def remember(
    state: EmulatorState,
    key: str,
    method: str,
    path: str,
    params: dict[str, Any],
    status: int,
    body: dict[str, Any],
) -> None:
    state.data["idempotency"][key] = {
        "method": method,
        "path": path,
        "params": params,
        "status": status,
        "body": body,
        "stored_at": clock.timestamp(),
    }
