"""The Stripe side of invoicing: customer, draft invoice, items, finalize (official SDK).

Every create call carries an idempotency key ``meterline:<install>:...`` (keys are per Stripe
account, so the installation id keeps installs sharing an account apart), and every object
carries ``metadata.meterline_install``. Lookups only adopt this installation's objects (or
hand-made ones without an installation id, see ``billing.stripe_client.of_install``). Every
call goes through ``with_retries`` (429/409/5xx/network, exponential backoff).

Find-before-create reads lists, never search alone: Stripe serves lists from its primary store
(read-after-write) while its search index is eventually consistent (new objects appear within
about a minute, up to an hour during incidents, and search is unavailable in some regions). A
customer is found by the recorded ``stripe_customer_id`` (the caller's), else in the account's
customer list filtered on metadata here (``customers.list`` filters only by email, which is not
unique); an invoice in its customer's invoice list since the month began. Search then runs as
a cross-check only: when it disagrees with the list, a warning is logged and the list wins.
The idempotency keys stay the guard against duplicates either way.

Long because: it is the one class every Stripe call of a run goes through (customers, drafts,
items, the completeness check before finalize, finalize), so idempotency keys, retries and
the install's metadata are built in one place.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import stripe

from billing.collection import Collection
from billing.invoicing.errors import InvoicingError
from billing.invoicing.expected import ExpectedLine
from billing.stripe_client import (
    RetryPolicy,
    metadata_of,
    of_install,
    with_idempotent_retries,
    with_retries,
)
from meterline.core.numbers import format_quantity
from meterline.core.periods import month_bounds

log = logging.getLogger(__name__)

MAX_ITEM_GENERATIONS = 5  # repair rounds of a draft before giving up (see ``sync_items``)


def idempotency_key(*parts: object) -> str:
    """``meterline:<part>:<part>...``, cut to Stripe's 255 characters."""
    text_key = ":".join(str(p) for p in ("meterline", *parts))
    return text_key[:255]


def finalized_at(invoice: Any) -> datetime | None:
    """When Stripe finalized ``invoice`` (``status_transitions.finalized_at``), if it did."""
    transitions = getattr(invoice, "status_transitions", None)
    ts = getattr(transitions, "finalized_at", None) if transitions else None
    return datetime.fromtimestamp(ts, UTC) if ts else None


def due_at(invoice: Any) -> datetime | None:
    """When a ``send_invoice`` invoice falls due (``due_date``), if it has one."""
    due = getattr(invoice, "due_date", None)
    return datetime.fromtimestamp(due, UTC) if due else None


class StripeSync:
    """The Stripe calls of one invoice run (one month, one installation)."""

    def __init__(
        self,
        client: stripe.StripeClient,
        period: date,
        usage_cutoff: datetime,
        retry: RetryPolicy,
        install: str,
    ):
        self.install = install  # metadata.meterline_install: this installation's objects only
        self.client = client
        self.period = period
        self.tag = f"{period:%Y-%m}"
        self.usage_cutoff = usage_cutoff
        self.retry = retry
        start, end = month_bounds(period)
        self.period_start, self.period_end = int(start.timestamp()), int(end.timestamp())
        self._customer_index: dict[str, list[Any]] | None = None  # tenant -> customers

    def call(self, what: str, fn, *args, **kwargs):
        key = (kwargs.get("options") or {}).get("idempotency_key")
        if key is None:
            return with_retries(self.retry, what, lambda: fn(*args, **kwargs))
        # a key whose first answer is a stored 5xx moves to its next generation
        return with_idempotent_retries(
            self.retry,
            what,
            lambda k: fn(
                *args, **{**kwargs, "options": {**kwargs["options"], "idempotency_key": k}}
            ),
            key,
        )

    def key(self, *parts: object) -> str:
        """An idempotency key: unique to this installation (keys are per Stripe account)."""
        return idempotency_key(self.install, *parts)

    def ours(self, obj: Any, tenant_id: str) -> bool:
        """This tenant's object, and this installation's (see ``of_install``)."""
        tenant = metadata_of(obj).get("meterline_tenant_id")
        return tenant == tenant_id and of_install(obj, self.install)

    # customers ---------------------------------------------------------------------------
    def find_or_create_customer(self, tenant_id: str, name: str, email: str | None) -> str:
        """The tenant's Stripe customer id: found in the customer list, else created."""
        # Our own first, then one made by hand (no installation id), oldest first.
        matches = sorted(
            self._customers_of(tenant_id),
            key=lambda c: (metadata_of(c).get("meterline_install") != self.install, c.created),
        )
        self.cross_check(
            "customer",
            self.client.v1.customers.search,
            f"metadata['meterline_tenant_id']:'{tenant_id}'",
            tenant_id,
            {c.id for c in matches},
        )
        if matches:
            return matches[0].id
        params: dict[str, Any] = {
            "name": name,
            "metadata": {"meterline_tenant_id": tenant_id, "meterline_install": self.install},
        }
        if email:
            params["email"] = email
        customer = self.call(
            "customer create",
            self.client.v1.customers.create,
            params=params,
            options={"idempotency_key": self.key(tenant_id, "customer")},
        )
        if self._customer_index is not None:
            self._customer_index.setdefault(tenant_id, []).append(customer)
        return customer.id

    def _customers_of(self, tenant_id: str) -> list[Any]:
        """This tenant's customers (ours or hand-made), from one listing of the account's
        customers per run (only tenants without a recorded customer id need it)."""
        if self._customer_index is None:
            page = self.call("customer list", self.client.v1.customers.list, params={"limit": 100})
            self._customer_index = {}
            for customer in page.auto_paging_iter():
                tenant = metadata_of(customer).get("meterline_tenant_id")
                if tenant and of_install(customer, self.install):
                    self._customer_index.setdefault(tenant, []).append(customer)
        return list(self._customer_index.get(tenant_id, []))

    def cross_check(self, kind: str, search, query: str, tenant_id: str, listed: set[str]) -> None:
        """Search as a cross-check of a list: a warning when they disagree (search lags, is
        down, or is unavailable in the account's region); never changes what was found."""
        try:
            page = self.call(f"{kind} search", search, params={"query": query, "limit": 100})
            searched = {o.id for o in page.auto_paging_iter() if self.ours(o, tenant_id)}
        except stripe.StripeError as exc:
            log.warning(
                "stripe %s search failed (%s %s); using the list, which is authoritative",
                kind, exc.http_status or "network", type(exc).__name__,
            )  # fmt: skip
            return
        if searched != listed:
            log.warning(
                "stripe %s search disagrees with the list for tenant %s (only listed: %s; only "
                "searched: %s): search is eventually consistent, the list is used",
                kind, tenant_id, sorted(listed - searched) or "-", sorted(searched - listed) or "-",
            )  # fmt: skip

    # invoices ----------------------------------------------------------------------------
    def retrieve_invoice(self, invoice_id: str):
        return self.call("invoice retrieve", self.client.v1.invoices.retrieve, invoice_id)

    def find_invoice(self, tenant_id: str, customer_id: str, recorded_id: str | None):
        """The recorded invoice, else this tenant's invoice of the month (oldest live one)."""
        if recorded_id:
            try:
                return self.retrieve_invoice(recorded_id)
            except stripe.InvalidRequestError as exc:
                if exc.http_status != 404:
                    raise
                log.warning("recorded invoice %s of %s is gone from Stripe", recorded_id, tenant_id)
        # The month's invoice is created after the month began: list from there.
        page = self.call(
            "invoice list",
            self.client.v1.invoices.list,
            params={"customer": customer_id, "created": {"gte": self.period_start}, "limit": 100},
        )
        candidates = [
            inv
            for inv in page.auto_paging_iter()
            if metadata_of(inv).get("meterline_period") == self.tag and self.ours(inv, tenant_id)
        ]
        self.cross_check(
            "invoice",
            self.client.v1.invoices.search,
            f"customer:'{customer_id}' AND metadata['meterline_period']:'{self.tag}'",
            tenant_id,
            {inv.id for inv in candidates},
        )
        if not candidates:
            return None
        live = [i for i in candidates if i.status != "void"] or candidates
        live.sort(key=lambda i: (i.created, i.id))
        if len(live) > 1:
            log.warning(
                "tenant %s has %d Stripe invoices for %s; using %s (reconciliation reports the rest)",
                tenant_id, len(live), self.tag, live[0].id,
            )  # fmt: skip
        return live[0]

    def create_draft(self, tenant_id: str, customer_id: str, currency: str, collection: Collection):
        """The month's draft, collected as the tenant's plan version says (``collection``)."""
        return self.call(
            "invoice create",
            self.client.v1.invoices.create,
            params={
                "customer": customer_id,
                "currency": currency.lower(),
                "pending_invoice_items_behavior": "exclude",
                **collection.invoice_params(),
                "description": f"Usage for {datetime(self.period.year, self.period.month, 1):%B %Y}",
                "metadata": {
                    "meterline_tenant_id": tenant_id,
                    "meterline_install": self.install,
                    "meterline_period": self.tag,
                    "meterline_usage_cutoff": self.usage_cutoff.isoformat(),
                },
            },
            options={"idempotency_key": self.key(tenant_id, self.tag, "invoice")},
        )

    def delete_draft(self, invoice_id: str) -> None:
        self.call("invoice delete", self.client.v1.invoices.delete, invoice_id)

    def finalize(self, tenant_id: str, invoice_id: str, collection: Collection):
        """Finalize the draft (Stripe then sends or charges it when ``auto_advance``); when
        Stripe refuses, the invoice as it is (if no longer a draft)."""
        try:
            return self.call(
                "invoice finalize",
                self.client.v1.invoices.finalize_invoice,
                invoice_id,
                params={"auto_advance": collection.auto_advance},
                options={"idempotency_key": self.key(tenant_id, self.tag, invoice_id, "finalize")},
            )
        except stripe.InvalidRequestError:
            invoice = self.retrieve_invoice(invoice_id)
            if invoice.status == "draft":
                raise
            return invoice

    # invoice items -----------------------------------------------------------------------
    def draft_items(self, invoice_id: str) -> dict[str, Any]:
        """The items on our draft by ``line_key``; a duplicate item is deleted."""
        page = self.call(
            "invoice item list",
            self.client.v1.invoice_items.list,
            params={"invoice": invoice_id, "limit": 100},
        )
        items: dict[str, Any] = {}
        for item in page.auto_paging_iter():
            key = metadata_of(item).get("line_key")
            if key in items:  # a duplicate item on our own draft: drop it
                self.delete_item(item.id)
                continue
            items[key] = item
        return items

    def delete_item(self, item_id: str) -> None:
        self.call("invoice item delete", self.client.v1.invoice_items.delete, item_id)

    def sync_items(
        self, tenant_id: str, customer_id: str, invoice_id: str, lines: list[ExpectedLine]
    ) -> dict[str, str | None]:
        """Make the draft's items equal ``lines`` and prove it by listing them again.

        Each round lists the draft's items, deletes wrong ones (unknown ``line_key``, other
        amount, a duplicate) and creates the missing ones; it ends when a listing equals
        ``lines``. A create whose idempotency key replays an item that no longer exists (the
        amount went A -> B -> A, or the item was deleted by hand) leaves its line missing, so
        the next round uses the key's next repair round (``...:r2``; not ``:g<n>``, which
        ``with_idempotent_retries`` uses past a stored 5xx). Returns ``line_key`` ->
        invoice item id; raises ``InvoicingError`` when the draft cannot be made complete.
        """
        wanted = {line.line_key: line for line in lines}
        for generation in range(1, MAX_ITEM_GENERATIONS + 2):
            existing = self.draft_items(invoice_id)
            wrong = [
                item
                for key, item in existing.items()
                if key not in wanted or _differs(item, wanted[key])
            ]
            missing = [
                line
                for key, line in wanted.items()
                if key not in existing or _differs(existing[key], line)
            ]
            if not wrong and not missing:
                return {key: existing[key].id for key in wanted}
            if generation > MAX_ITEM_GENERATIONS:
                break
            if generation > 1:
                log.warning(
                    "draft %s of %s for %s is incomplete after round %d (%d wrong, %d missing "
                    "item(s)); repairing with key generation %d",
                    invoice_id, tenant_id, self.tag, generation - 1, len(wrong), len(missing),
                    generation,
                )  # fmt: skip
            for item in wrong:
                self.delete_item(item.id)
            for line in missing:
                self.create_item(tenant_id, customer_id, invoice_id, line, generation)
        raise InvoicingError(
            f"draft {invoice_id} of tenant {tenant_id!r} for {self.tag} still differs from the "
            f"expected lines after {MAX_ITEM_GENERATIONS} repair rounds (wrong: "
            f"{sorted(str(i.id) for i in wrong)}, missing: {sorted(m.line_key for m in missing)}); "
            "it was not finalized - check the draft in Stripe, then re-run the partition"
        )

    def require_total(self, tenant_id: str, invoice_id: str, total: int, currency: str) -> None:
        """Stripe's draft total must equal ``total`` before it may be finalized."""
        draft = self.retrieve_invoice(invoice_id)
        if draft.status == "draft" and draft.total != total:
            raise InvoicingError(
                f"draft {invoice_id} of tenant {tenant_id!r} for {self.tag} totals "
                f"{draft.total} in Stripe, expected {total} ({currency}); it was not "
                "finalized - check the draft's items in Stripe, then re-run the partition"
            )

    def create_item(
        self,
        tenant_id: str,
        customer_id: str,
        invoice_id: str,
        line: ExpectedLine,
        generation: int = 1,
    ):
        """One invoice item; ``generation`` > 1 suffixes the key (``:r2``) so that a key whose
        stored answer is an item deleted since then is not replayed again."""
        suffix = () if generation == 1 else (f"r{generation}",)
        metadata = {
            "meterline_tenant_id": tenant_id,
            "meterline_install": self.install,
            "meterline_period": self.tag,
            "line_key": line.line_key,
            "line_type": line.line_type,
        }
        if line.meter:
            metadata["meter"] = line.meter
            metadata["quantity"] = format_quantity(line.quantity)
        return self.call(
            "invoice item create",
            self.client.v1.invoice_items.create,
            params={
                "customer": customer_id,
                "invoice": invoice_id,
                "amount": line.amount,
                "currency": line.currency.lower(),
                "description": line.description,
                "period": {"start": self.period_start, "end": self.period_end - 1},
                "metadata": metadata,
            },
            options={
                "idempotency_key": self.key(
                    tenant_id, self.tag, invoice_id, "line", line.line_key, line.amount, *suffix
                )
            },
        )

    def finalized_lines(
        self, invoice_id: str, currency: str
    ) -> tuple[list[ExpectedLine], dict[str, str | None]]:
        """What a finalized invoice really bills of Meterline's lines, read from its line items
        (``line_key`` from the metadata), and ``line_key`` -> item. A line made by hand (no
        ``line_key``) is not Meterline's: left out (reconciliation reports the total)."""
        lines: list[ExpectedLine] = []
        item_ids: dict[str, str | None] = {}
        for li in self.call(
            "invoice lines",
            self.client.v1.invoices.line_items.list,
            invoice_id,
            params={"limit": 100},
        ).auto_paging_iter():
            details = li.parent.invoice_item_details if li.parent else None
            item_id = details.invoice_item if details else None
            meta = metadata_of(li)
            key = meta.get("line_key")
            if not key:
                log.warning("invoice %s has a line %s made outside Meterline", invoice_id, li.id)
                continue
            lines.append(
                ExpectedLine(
                    line_key=key,
                    line_type=meta.get("line_type") or "stripe",
                    meter=meta.get("meter"),
                    plan_id=None,
                    quantity=_quantity(meta.get("quantity")),
                    amount=int(li.amount),
                    currency=currency,
                    description=li.description or key,
                )
            )
            item_ids[key] = item_id
        return lines, item_ids


def _quantity(text: str | None) -> Decimal:
    """The ``quantity`` metadata Meterline wrote (``1,234,567``); 0 when absent or edited."""
    try:
        return Decimal((text or "0").replace(",", ""))
    except InvalidOperation:
        return Decimal(0)


def _differs(item: Any, line: ExpectedLine) -> bool:
    return item.amount != line.amount or item.currency != line.currency.lower()
