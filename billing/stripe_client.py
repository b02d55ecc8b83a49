"""The official ``stripe`` SDK client, and retries with exponential backoff.

Only the official SDK talks to Stripe (or to the emulator, which speaks the same API). The
SDK's own retries are switched off; :func:`with_retries` retries 429, 409, 5xx and network
errors itself with exponential backoff and jitter. That is safe because every create call
carries a deterministic idempotency key, so a retried create replays the first result.
A 409 means another request with the same idempotency key is still running (or a lock timed
out): Stripe's advice is to retry *later*, so it backs off longer (``conflict_delay``) than
the other errors, long enough for the first request to finish and store its result.
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
    """Exponential backoff: ``base_delay * 2**attempt`` (capped, with jitter), ``max_attempts``
    tries; after a 409 (idempotency key in use, lock timeout) ``conflict_delay * 2**attempt``
    capped at ``max_conflict_delay``: the request holding the key has to finish first."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    conflict_delay: float = 2.0
    max_conflict_delay: float = 30.0

    def delay(self, attempt: int, status: int | None = None) -> float:
        """Seconds to wait before retry ``attempt + 1`` after an answer of ``status``."""
        if status == 409:
            delay = min(self.max_conflict_delay, self.conflict_delay * (2**attempt))
        else:
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
            delay = policy.delay(attempt - 1, exc.http_status)
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


class _StoredBeforeThisCall(Exception):
    """The key's first answer was a replayed 5xx: Stripe stored it for an earlier attempt."""


def replayed_failure(exc: Exception) -> bool:
    """A 5xx that Stripe replayed from its idempotency store (``Idempotent-Replayed``)."""
    headers = getattr(exc, "headers", None) or {}
    return (
        isinstance(exc, stripe.StripeError)
        and (exc.http_status or 0) >= 500
        and str(headers.get("idempotent-replayed", headers.get("Idempotent-Replayed"))) == "true"
    )


def with_idempotent_retries(
    policy: RetryPolicy, what: str, call: Callable[[str], T], key: str, generations: int = 5
) -> T:
    """``with_retries`` for a create that carries idempotency ``key`` (``call(key)``).

    Stripe stores the result of a request that started executing, 500s included, and replays
    it for the same key for 24 hours; retrying such a key can never succeed. Its docs advise a
    new key only once you know the request did not take effect. So: a 5xx this call saw
    first-hand is retried with the same key and then raised (the run fails; a re-run first
    looks for what the request made, find-before-create). When the very first answer for a
    key is a replayed 5xx, the caller has already looked since then, so the next generation
    of the key (``<key>:g1``, ``:g2``...) is used, deterministically, so every run agrees.
    """
    for generation in range(generations):
        attempt_key = key if generation == 0 else f"{key[:248]}:g{generation}"
        first = [True]

        def attempt(k: str = attempt_key, first: list[bool] = first) -> T:
            try:
                return call(k)
            except stripe.StripeError as exc:
                if first[0] and replayed_failure(exc):
                    raise _StoredBeforeThisCall(str(exc)) from exc
                raise
            finally:
                first[0] = False

        try:
            return with_retries(policy, what, attempt)
        except _StoredBeforeThisCall:
            log.warning("stripe %s: key generation %d has a stored failure", what, generation)
    raise RuntimeError(
        f"stripe {what}: {generations} generations of idempotency key {key!r} all hold stored "
        "failures; check Stripe's status page and the request log, then re-run"
    )
