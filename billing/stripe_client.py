"""The official ``stripe`` SDK client, and retries with exponential backoff.

Only the official SDK talks to Stripe (or to the emulator, which speaks the same API). The
SDK's own retries are switched off; :func:`with_retries` retries 429, 409, 5xx and network
errors itself with exponential backoff and jitter. That is safe because every create call
carries a deterministic idempotency key, so a retried create replays the first result.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import stripe

log = logging.getLogger(__name__)
T = TypeVar("T")


def make_stripe_client(
    api_key: str, api_base: str | None = None, *, timeout: float = 30.0
) -> stripe.StripeClient:
    """A ``StripeClient`` for ``api_key``; ``api_base`` points it at the emulator (or a proxy)."""
    if not api_key:
        raise ValueError(
            "STRIPE_API_KEY is empty: set a Stripe test key (sk_test_...) or leave it unset to use "
            "the built-in Stripe emulator"
        )
    kwargs = {}
    if api_base:
        kwargs["base_addresses"] = {"api": api_base.rstrip("/")}
    return stripe.StripeClient(
        api_key,
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=timeout),
        **kwargs,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``base_delay * 2**attempt`` (capped, with jitter), ``max_attempts`` tries."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        delay = min(self.max_delay, self.base_delay * (2**attempt))
        return delay * (0.5 + random.random() / 2)


def metadata_of(obj: Any) -> dict[str, str]:
    """A Stripe object's metadata as a plain dict (StripeObject is not a dict)."""
    metadata = getattr(obj, "metadata", None)
    return metadata.to_dict() if metadata else {}


def of_install(obj: Any, install: str) -> bool:
    """Whether a Stripe object is this installation's business: it carries our
    ``meterline_install``, or none at all (made by hand in the dashboard, or before
    installation ids existed). Objects of another installation sharing the account always
    carry theirs, so they are never adopted or reported."""
    return metadata_of(obj).get("meterline_install", install) == install


def is_retryable(exc: Exception) -> bool:
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    if isinstance(exc, stripe.StripeError):
        status = exc.http_status or 0
        return status == 409 or status == 429 or status >= 500
    return False


def with_retries(policy: RetryPolicy, what: str, call: Callable[[], T]) -> T:
    """Run ``call``; on a retryable Stripe error, back off and try again."""
    attempt = 0
    while True:
        try:
            return call()
        except stripe.StripeError as exc:
            attempt += 1
            if not is_retryable(exc) or attempt >= policy.max_attempts:
                raise
            delay = policy.delay(attempt - 1)
            log.warning(
                "stripe %s failed (%s %s), retry %d/%d in %.2fs",
                what,
                exc.http_status or "network",
                type(exc).__name__,
                attempt,
                policy.max_attempts - 1,
                delay,
            )
            policy.sleep(delay)
