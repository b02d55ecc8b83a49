"""The emulated Stripe API: (method, path, the SDK's params class, handler) per call.

The params class names the SDK type the call's parameters are checked against
(``param_schema.check_params``); handlers take the state, the path match and the parameters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from billing.stripe_emulator import (
    account,
    customer_balance,
    customers,
    events,
    invoice_items,
    invoice_lifecycle,
    invoices,
)
from billing.stripe_emulator.failures import missing
from billing.stripe_emulator.listing import paginate, same, search, search_page
from billing.stripe_emulator.state import EmulatorState

Handler = Callable[[EmulatorState, re.Match, dict[str, Any]], Any]


def _routes() -> list[tuple[str, re.Pattern, str, Handler]]:
    inv = invoices.render_invoice

    def render(s: EmulatorState):
        return lambda inv_: inv(s, inv_)

    table: list[tuple[str, str, str, Handler]] = [
        ("POST", r"/v1/customers", "CustomerCreateParams", lambda s, m, p: customers.create_customer(s, p)),
        ("GET", r"/v1/customers/search", "CustomerSearchParams",
         lambda s, m, p: search_page(search(s, "customers", p.get("query", "")), p, "/v1/customers/search", same)),
        ("GET", r"/v1/customers", "CustomerListParams",
         lambda s, m, p: paginate(customers.list_customers(s, p), p, "/v1/customers", same)),
        ("GET", r"/v1/customers/(?P<id>[^/]+)", "CustomerRetrieveParams",
         lambda s, m, p: customers.retrieve_customer(s, m["id"])),
        ("DELETE", r"/v1/customers/(?P<id>[^/]+)", "CustomerDeleteParams",
         lambda s, m, p: customers.delete_customer(s, m["id"])),
        ("POST", r"/v1/customers/(?P<id>[^/]+)/balance_transactions", "CustomerBalanceTransactionCreateParams",
         lambda s, m, p: customer_balance.create_balance_transaction(s, m["id"], p)),
        ("GET", r"/v1/customers/(?P<id>[^/]+)/balance_transactions", "CustomerBalanceTransactionListParams",
         lambda s, m, p: paginate(customer_balance.list_balance_transactions(s, m["id"], p), p,
                                  f"/v1/customers/{m['id']}/balance_transactions", same)),
        ("GET", r"/v1/customers/(?P<id>[^/]+)/balance_transactions/(?P<txn>[^/]+)",
         "CustomerBalanceTransactionRetrieveParams",
         lambda s, m, p: customer_balance.balance_transaction(s, m["id"], m["txn"])),
        ("POST", r"/v1/customers/(?P<id>[^/]+)", "CustomerUpdateParams",
         lambda s, m, p: customers.update_customer(s, m["id"], p)),
        ("POST", r"/v1/invoiceitems", "InvoiceItemCreateParams",
         lambda s, m, p: invoice_items.create_invoice_item(s, p)),
        ("GET", r"/v1/invoiceitems", "InvoiceItemListParams",
         lambda s, m, p: paginate(invoice_items.list_invoice_items(s, p), p, "/v1/invoiceitems", same)),
        ("GET", r"/v1/invoiceitems/(?P<id>[^/]+)", "InvoiceItemRetrieveParams",
         lambda s, m, p: s.invoice_item(m["id"])),
        ("DELETE", r"/v1/invoiceitems/(?P<id>[^/]+)", "InvoiceItemDeleteParams",
         lambda s, m, p: invoice_items.delete_invoice_item(s, m["id"])),
        ("POST", r"/v1/invoices", "InvoiceCreateParams", lambda s, m, p: inv(s, invoices.create_invoice(s, p))),
        ("GET", r"/v1/invoices/search", "InvoiceSearchParams",
         lambda s, m, p: search_page(search(s, "invoices", p.get("query", "")), p, "/v1/invoices/search",
                                     render(s))),
        ("GET", r"/v1/invoices", "InvoiceListParams",
         lambda s, m, p: paginate(invoices.list_invoices(s, p), p, "/v1/invoices", render(s))),
        ("GET", r"/v1/invoices/(?P<id>[^/]+)", "InvoiceRetrieveParams",
         lambda s, m, p: inv(s, s.invoice(m["id"]))),
        ("POST", r"/v1/invoices/(?P<id>[^/]+)", "InvoiceUpdateParams",
         lambda s, m, p: inv(s, invoices.update_invoice(s, m["id"], p))),
        ("DELETE", r"/v1/invoices/(?P<id>[^/]+)", "InvoiceDeleteParams",
         lambda s, m, p: invoices.delete_invoice(s, m["id"])),
        ("GET", r"/v1/invoices/(?P<id>[^/]+)/lines", "InvoiceLineItemListParams",
         lambda s, m, p: paginate(
             [invoice_items.line_item(i) for i in s.items_of(s.invoice(m["id"])["id"])],
             p, f"/v1/invoices/{m['id']}/lines", same)),
        ("POST", r"/v1/invoices/(?P<id>[^/]+)/finalize", "InvoiceFinalizeInvoiceParams",
         lambda s, m, p: inv(s, invoice_lifecycle.finalize(s, m["id"], p))),
        ("POST", r"/v1/invoices/(?P<id>[^/]+)/void", "InvoiceVoidInvoiceParams",
         lambda s, m, p: inv(s, invoice_lifecycle.void(s, m["id"]))),
        ("POST", r"/v1/invoices/(?P<id>[^/]+)/mark_uncollectible", "InvoiceMarkUncollectibleParams",
         lambda s, m, p: inv(s, invoice_lifecycle.mark_uncollectible(s, m["id"]))),
        ("POST", r"/v1/invoices/(?P<id>[^/]+)/pay", "InvoicePayParams",
         lambda s, m, p: inv(s, invoice_lifecycle.pay(s, m["id"], p))),
        ("GET", r"/v1/account", "AccountRetrieveCurrentParams", lambda s, m, p: account.current_account(s)),
        ("POST", r"/v1/webhook_endpoints", "WebhookEndpointCreateParams",
         lambda s, m, p: account.create_webhook_endpoint(s, p)),
        ("GET", r"/v1/webhook_endpoints", "WebhookEndpointListParams",
         lambda s, m, p: paginate(account.list_webhook_endpoints(s, p), p, "/v1/webhook_endpoints", same)),
        ("DELETE", r"/v1/webhook_endpoints/(?P<id>[^/]+)", "WebhookEndpointDeleteParams",
         lambda s, m, p: account.delete_webhook_endpoint(s, m["id"])),
        ("GET", r"/v1/events", "EventListParams",
         lambda s, m, p: paginate(events.list_events(s, p), p, "/v1/events", same)),
        ("GET", r"/v1/events/(?P<id>[^/]+)", "EventRetrieveParams",
         lambda s, m, p: events.find_event(s, m["id"]) or _no_event(m["id"])),
    ]  # fmt: skip
    return [(method, re.compile(pattern), cls, fn) for method, pattern, cls, fn in table]


def _no_event(event_id: str):
    raise missing("event", event_id)


ROUTES = _routes()


def find_route(method: str, path: str) -> tuple[re.Match, str, Handler] | None:
    """The first route whose pattern matches ``path`` exactly and whose method is ``method``."""
    for r_method, pattern, params_class, handler in ROUTES:
        match = pattern.fullmatch(path)
        if match and r_method == method:
            return match, params_class, handler
    return None
