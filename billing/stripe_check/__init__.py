"""``meterline stripe check``: can this Stripe key do everything Meterline needs?

Run before going live (and after rotating a key). Every check talks to Stripe through the
official SDK, and none can charge anyone: the only objects made are one customer and one draft
invoice without items, both tagged ``metadata.meterline_check`` and deleted again (a check that
was interrupted leaves them behind; the next check deletes them first). Creates carry
idempotency keys, so a retried request never makes a second object.

A live key is refused unless the caller allows it (``--live``). The key itself is never
returned or printed: :func:`mask_key` shows its prefix and last four characters, as the Stripe
Dashboard does.
"""

from billing.stripe_check.checks import ALL_CHECKS, OPTIONAL, check_stripe
from billing.stripe_check.keys import key_mode, mask_key
from billing.stripe_check.report import Check, StripeCheckReport

__all__ = [
    "ALL_CHECKS",
    "OPTIONAL",
    "Check",
    "StripeCheckReport",
    "check_stripe",
    "key_mode",
    "mask_key",
]
