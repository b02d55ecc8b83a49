"""The month's invoices in Stripe, per tenant (``metadata.meterline_tenant_id``).

Found by lists, which Stripe serves from its primary store (read-after-write), never by
search alone: Stripe's search index is eventually consistent (new objects appear within about
a minute, up to an hour during incidents), so a reconciliation that trusted search could
miss a duplicate or hand-made invoice and call the month "matched". The sources, unioned by id:

1. every invoice of the account created in ``[month start, now]`` (``created`` range list);
2. every invoice of each tenant's customer in that range (``customer`` + ``created`` list);
3. each invoice Meterline recorded (retrieve; it may predate the range);
4. search, only as a cross-check: an invoice only search returned is added and logged, and
   invoices search does not return yet (its lag) are logged.

Only this installation's invoices are kept (``of_install``): another install sharing the
account is neither matched nor reported as unexpected.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import stripe

from billing.stripe_client import RetryPolicy, metadata_of, of_install, with_retries

log = logging.getLogger(__name__)


def _listed(
    client: stripe.StripeClient, retry: RetryPolicy, what: str, params: dict[str, Any]
) -> list[Any]:
    page = with_retries(
        retry, what, lambda: client.v1.invoices.list(params={**params, "limit": 100})
    )
    return list(page.auto_paging_iter())


def _recorded(client: stripe.StripeClient, retry: RetryPolicy, invoice_id: str) -> Any | None:
    try:
        return with_retries(
            retry, "invoice retrieve", lambda: client.v1.invoices.retrieve(invoice_id)
        )
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 404:
            raise
        return None  # a recorded invoice gone from Stripe: the tenant is missing_in_stripe


def _searched(client: stripe.StripeClient, retry: RetryPolicy, tag: str) -> list[Any]:
    query = f"metadata['meterline_period']:'{tag}'"
    page = with_retries(
        retry,
        "invoice search",
        lambda: client.v1.invoices.search(params={"query": query, "limit": 100}),
    )
    return list(page.auto_paging_iter())


def month_invoices(
    client: stripe.StripeClient,
    tag: str,
    install: str,
    retry: RetryPolicy,
    records: dict[str, Any],
    created: tuple[int, int],
) -> list[Any]:
    """This installation's invoices tagged ``meterline_period = tag``, from lists (see above);
    ``created`` is the ``(gte, lt)`` range of creation times to list."""
    window = {"gte": created[0], "lt": created[1]}
    found: dict[str, Any] = {}
    for inv in _listed(client, retry, "invoice list", {"created": window}):
        found[inv.id] = inv
    for record in records.values():
        if record.stripe_invoice_id and record.stripe_invoice_id not in found:
            inv = _recorded(client, retry, record.stripe_invoice_id)
            if inv is not None:
                found[inv.id] = inv
    customers = {inv.customer for inv in found.values() if _tagged(inv, tag)}
    for customer in sorted(customers):
        params = {"customer": customer, "created": window}
        for inv in _listed(client, retry, "customer invoice list", params):
            found.setdefault(inv.id, inv)
    listed = {i for i, inv in found.items() if _tagged(inv, tag) and of_install(inv, install)}
    searched = set()
    for inv in _searched(client, retry, tag):
        searched.add(inv.id)
        if inv.id not in found:
            log.warning("invoice %s was found by search but by no list; reconciling it", inv.id)
            found[inv.id] = inv
    if listed - searched:
        log.warning(
            "%d invoice(s) of %s are listed but not yet searchable (%s): Stripe's search lags; "
            "reconciled from the lists", len(listed - searched), tag, ", ".join(sorted(listed - searched)),
        )  # fmt: skip
    return [inv for inv in found.values() if _tagged(inv, tag) and of_install(inv, install)]


def _tagged(inv: Any, tag: str) -> bool:
    return metadata_of(inv).get("meterline_period") == tag


def invoices_by_tenant(
    client: stripe.StripeClient,
    tag: str,
    install: str,
    retry: RetryPolicy,
    records: dict[str, Any],
    created: tuple[int, int],
) -> dict[str, list[Any]]:
    """``month_invoices`` by tenant (an untagged tenant shows as ``(customer cus_...)``)."""
    by_tenant: dict[str, list[Any]] = defaultdict(list)
    for inv in month_invoices(client, tag, install, retry, records, created):
        tenant = metadata_of(inv).get("meterline_tenant_id") or f"(customer {inv.customer})"
        by_tenant[tenant].append(inv)
    return by_tenant
