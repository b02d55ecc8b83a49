"""Stripe API keys: kind and mode read from the prefix, masked for display, and the key check
(a live key is refused unless allowed). A key is never shown whole."""

from __future__ import annotations

import re

from billing.stripe_check.report import Check

KEY_PAGE = "Stripe Dashboard > Developers > API keys"


def mask_key(key: str) -> str:
    """``sk_test_…AbCd``: the key's kind and mode and its last four characters, never more
    (nothing of a key too short to be real)."""
    prefix = next((p for p in _PREFIXES if key.startswith(p)), "")
    tail = key[-4:] if len(key) - len(prefix) >= 16 and key[-4:].isalnum() else ""
    return f"{prefix}…{tail}"


_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_")


def key_mode(key: str) -> tuple[str | None, str | None]:
    """``(kind, mode)``: kind ``secret``/``restricted``/``publishable``, mode ``test``/``live``."""
    kinds = {"sk": "secret", "rk": "restricted", "pk": "publishable"}
    parts = key.split("_", 2)
    if len(parts) == 3 and parts[0] in kinds and parts[1] in ("test", "live") and parts[2]:
        return kinds[parts[0]], parts[1]
    return None, None


def well_formed(key: str) -> bool:
    """Letters, digits and underscores only, as every Stripe key (a space, quote or line break
    is a copy-paste accident, and would be echoed by the HTTP library's header error)."""
    return re.fullmatch(r"[A-Za-z0-9_]+", key) is not None


def key_check(key: str, allow_live: bool) -> Check:
    kind, mode = key_mode(key)
    masked = mask_key(key)
    if not well_formed(key):
        return Check(
            "API key", "fail",
            f"{masked} has characters no Stripe key has (a space, quote or line break?)",
            f"copy the key again from {KEY_PAGE} into STRIPE_API_KEY, without quotes",
        )  # fmt: skip
    if kind is None:
        return Check(
            "API key", "fail", f"{masked} is not a Stripe API key (sk_test_…, sk_live_…, rk_…)",
            f"set STRIPE_API_KEY to a secret key from {KEY_PAGE}",
        )  # fmt: skip
    if kind == "publishable":
        return Check(
            "API key", "fail", f"{masked} is a publishable key: it cannot create invoices",
            f"use a secret (sk_…) or restricted (rk_…) key from {KEY_PAGE}",
        )  # fmt: skip
    if mode == "live" and not allow_live:
        return Check(
            "API key", "fail", f"{masked} is a LIVE {kind} key: refused without --live",
            "try Meterline with a test key (sk_test_…); to check a live key, re-run with "
            "--live (it creates and deletes one customer and one empty draft invoice, never "
            "charges)",
        )  # fmt: skip
    if mode == "live":
        return Check(
            "API key", "warn", f"{masked}: LIVE mode ({kind} key), real customers are invoiced",
            "make sure this is the production installation",
        )  # fmt: skip
    return Check("API key", "ok", f"{masked}: test mode ({kind} key)")
