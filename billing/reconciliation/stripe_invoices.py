"""The month's invoices in Stripe, per tenant (``metadata.meterline_tenant_id``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import stripe

from billing.stripe_client import RetryPolicy, metadata_of, of_install, with_retries


def search_month(
    client: stripe.StripeClient, tag: str, install: str, retry: RetryPolicy
) -> list[Any]:
    """The month's invoices that are this installation's business (``of_install``): another
    install sharing the account is neither matched nor reported as unexpected."""
    query = f"metadata['meterline_period']:'{tag}'"
    page = with_retries(
        retry,
        "invoice search",
        lambda: client.v1.invoices.search(params={"query": query, "limit": 100}),
    )
    return [inv for inv in page.auto_paging_iter() if of_install(inv, install)]


def invoices_by_tenant(
    client: stripe.StripeClient,
    tag: str,
    install: str,
    retry: RetryPolicy,
    records: dict[str, Any],
) -> dict[str, list[Any]]:
    """Search results by tenant, plus each recorded invoice search did not return (search
    is eventually consistent; a recorded invoice gone from Stripe is left out)."""
    by_tenant: dict[str, list[Any]] = defaultdict(list)
    seen_ids = set()
    for inv in search_month(client, tag, install, retry):
        tenant = metadata_of(inv).get("meterline_tenant_id") or f"(customer {inv.customer})"
        by_tenant[tenant].append(inv)
        seen_ids.add(inv.id)
    for tenant_id, record in records.items():
        if record.stripe_invoice_id and record.stripe_invoice_id not in seen_ids:
            try:
                inv = with_retries(
                    retry,
                    "invoice retrieve",
                    lambda rid=record.stripe_invoice_id: client.v1.invoices.retrieve(rid),
                )
            except stripe.InvalidRequestError as exc:
                if exc.http_status != 404:
                    raise
                continue
            by_tenant[tenant_id].append(inv)
    return by_tenant
