"""Idempotency keys, as Stripe: the same key with the same parameters replays the stored
response (``Idempotent-Replayed: true``); another endpoint or other parameters are a
``400 idempotency_error``. Kept in the state (``data["idempotency"]``), so they survive restarts.
"""

from __future__ import annotations

from typing import Any

from billing.stripe_emulator.failures import StripeFailure
from billing.stripe_emulator.state import EmulatorState

Response = tuple[int, dict[str, Any], dict[str, str]]


def replay(
    state: EmulatorState, key: str, method: str, path: str, params: dict[str, Any]
) -> Response | None:
    """The stored answer for ``key`` (or the error for reusing it), None for a new key."""
    previous = state.data["idempotency"].get(key)
    if previous is None:
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
    }
