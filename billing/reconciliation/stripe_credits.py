"""The month's customer balance credits in Stripe: what Meterline issued for negative months.

A month whose total is negative is not invoiced; its credit is a customer balance transaction
(``billing.invoicing`` records its id). Each recorded one is retrieved from Stripe, so a
credit deleted, never issued or of another amount is reported, not assumed.
"""

from __future__ import annotations

from typing import Any

import stripe

from billing.stripe_client import RetryPolicy, with_retries


def recorded_credits(
    client: stripe.StripeClient, retry: RetryPolicy, records: dict[str, Any]
) -> dict[str, Any | None]:
    """tenant -> its month's balance transaction in Stripe (None: recorded but not found)."""
    credits: dict[str, Any | None] = {}
    for tenant_id, record in records.items():
        if record.status not in ("credited", "crediting"):
            continue
        txn_id, customer = record.stripe_balance_transaction_id, record.stripe_customer_id
        credits[tenant_id] = _retrieved(client, retry, customer, txn_id) if txn_id else None
    return credits


def _retrieved(client: stripe.StripeClient, retry: RetryPolicy, customer: str, txn_id: str):
    try:
        return with_retries(
            retry,
            "balance transaction retrieve",
            lambda: client.v1.customers.balance_transactions.retrieve(customer, txn_id),
        )
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 404:
            raise
        return None
