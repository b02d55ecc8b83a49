"""How a plan's invoices are collected: Stripe's ``collection_method``, ``days_until_due`` and
``auto_advance``, part of a plan version (migration ``0011_invoice_collection``).

- ``send_invoice`` (the default): Stripe emails the invoice (when ``auto_advance``) and the
  customer pays it within ``days_until_due`` days (1..365, default 30).
- ``charge_automatically``: Stripe charges the customer's default payment method when the
  invoice is finalized and ``auto_advance`` is on; ``days_until_due`` is not allowed.
- ``auto_advance`` (default false): Stripe moves the finalized invoice on by itself (sends or
  charges it, retries failed payments). With false, nobody is emailed or charged by Stripe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEND_INVOICE = "send_invoice"
CHARGE_AUTOMATICALLY = "charge_automatically"
COLLECTION_METHODS = (SEND_INVOICE, CHARGE_AUTOMATICALLY)
DEFAULT_DAYS_UNTIL_DUE = 30
MAX_DAYS_UNTIL_DUE = 365
COLLECTION_FIELDS = ("collection_method", "days_until_due", "auto_advance")
# column of meterline.plans -> attribute of billing.catalog.Plan (same names)
PLAN_COLLECTION = {name: name for name in COLLECTION_FIELDS}


@dataclass(frozen=True)
class Collection:
    collection_method: str = SEND_INVOICE
    days_until_due: int | None = DEFAULT_DAYS_UNTIL_DUE
    auto_advance: bool = False

    def invoice_params(self) -> dict[str, Any]:
        """The parameters of Stripe's invoice create for these terms."""
        params: dict[str, Any] = {
            "collection_method": self.collection_method,
            "auto_advance": self.auto_advance,
        }
        if self.collection_method == SEND_INVOICE:
            params["days_until_due"] = self.days_until_due
        return params


def parse_collection(raw: dict, path: str, error: type[Exception] = ValueError) -> Collection:
    """The collection terms of a plan's YAML mapping (``path``: ``plans.<id>``); invalid
    ones raise ``error`` (the catalog's ``CatalogError``) naming the field."""
    method = raw.get("collection_method", SEND_INVOICE)
    if method not in COLLECTION_METHODS:
        raise error(
            f"{path}.collection_method must be one of {', '.join(COLLECTION_METHODS)}, "
            f"got {method!r}"
        )
    auto_advance = raw.get("auto_advance", False)
    if not isinstance(auto_advance, bool):
        raise error(f"{path}.auto_advance must be true or false, got {auto_advance!r}")
    days = raw.get("days_until_due")
    if method == CHARGE_AUTOMATICALLY:
        if days is not None:
            raise error(
                f"{path}.days_until_due is only allowed with collection_method: send_invoice "
                "(a charge_automatically invoice is charged, not sent with a due date); remove it"
            )
        return Collection(method, None, auto_advance)
    if days is None:
        days = DEFAULT_DAYS_UNTIL_DUE
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS_UNTIL_DUE:
        raise error(
            f"{path}.days_until_due must be a whole number of days from 1 to "
            f"{MAX_DAYS_UNTIL_DUE}, got {days!r}"
        )
    return Collection(method, days, auto_advance)
