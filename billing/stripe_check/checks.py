"""The checks that talk to Stripe (see the package docstring): one ``_CheckRun`` per check."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import stripe

from billing.stripe_check.keys import KEY_PAGE, key_check, mask_key
from billing.stripe_check.report import Check, StripeCheckReport
from billing.stripe_client import RetryPolicy, metadata_of, with_retries
from meterline.core.redaction import mask_urls, url_origin

WEBHOOK_PATH = "/v1/stripe/webhook"
INVOICE_EVENTS = (
    "invoice.paid",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.payment_failed",
)
CHECK_METADATA = "meterline_check"
_NEWEST = {"limit": 100}
_DRAFTS = {"status": "draft", "limit": 100}


def check_stripe(
    client: stripe.StripeClient,
    api_key: str,
    api_base: str | None,
    *,
    allow_live: bool = False,
    retry: RetryPolicy | None = None,
) -> StripeCheckReport:
    """Run every check against the account behind ``api_key`` (see the module docstring)."""
    run = _CheckRun(client, api_key, retry or RetryPolicy(max_attempts=3, base_delay=0.3))
    run.checks.append(key_check(api_key, allow_live))
    if run.checks[-1].status != "fail":
        run.against_stripe()
        run.checks.append(run.api_version())
    done = {c.name for c in run.checks}
    run.checks += [
        Check(
            name,
            "skipped",
            "not checked: an earlier check failed",
            "fix that one first",
            required=name not in OPTIONAL,
        )
        for name in ALL_CHECKS
        if name not in done
    ]
    run.checks.sort(key=lambda c: ALL_CHECKS.index(c.name))
    base = url_origin(api_base) if api_base else "https://api.stripe.com"
    return StripeCheckReport(mask_key(api_key), base, run.checks)


ALL_CHECKS = (
    "API key",
    "account reachable",
    "list customers",
    "list invoices",
    "create + delete a customer",
    "create + delete a draft invoice",
    "search",
    "webhook endpoint",
    "API version",
)
OPTIONAL = {"search", "webhook endpoint"}  # Meterline works without them: warnings only


class _CheckRun:
    def __init__(self, client: stripe.StripeClient, api_key: str, retry: RetryPolicy):
        self.client = client
        self.api_key = api_key
        self.retry = retry
        self.run_id = secrets.token_hex(6)
        self.checks: list[Check] = []
        self.answered_version: str | None = None  # Stripe-Version of Stripe's answer

    def api_version(self) -> Check:
        """The version the SDK pins (it parses responses and events in that shape) and the
        version Stripe answered in: they differ only when something between rewrites it."""
        name, sent = "API version", stripe.api_version
        said = f"stripe-python {stripe.VERSION} sends Stripe-Version {sent}"
        if self.answered_version is None:
            if not any(c.name == "list customers" and c.status == "ok" for c in self.checks):
                return Check(name, "skipped", f"{said}; not checked: no answer from Stripe")
            return Check(name, "ok", f"{said}; the answer did not name its version")
        if self.answered_version != sent:
            return Check(
                name, "fail", f"{said}, but Stripe answered in {self.answered_version}",
                "check what sits at STRIPE_API_BASE (a proxy must pass Stripe-Version through)",
            )  # fmt: skip
        return Check(name, "ok", f"{said}; Stripe answered in the same version")

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        return with_retries(self.retry, what, fn)

    def failure(
        self, name: str, exc: stripe.StripeError, fix: str, required=True, cleanup: str = ""
    ) -> Check:
        """A failed call as a check line: what Stripe said (the key masked) and what to do:
        ``fix`` for a request Stripe refused, ``cleanup`` for what was left behind."""
        if isinstance(exc, stripe.AuthenticationError):
            fix = f"Stripe refused the key: copy it again from {KEY_PAGE} into STRIPE_API_KEY"
        elif isinstance(exc, stripe.PermissionError):
            fix = f"this restricted key lacks the permission: {fix}"
        elif isinstance(exc, stripe.APIConnectionError):
            fix = "check STRIPE_API_BASE (unset means api.stripe.com), DNS, proxy and firewall"
        elif isinstance(exc, stripe.RateLimitError) or (exc.http_status or 0) >= 500:
            fix = "a Stripe-side error, still failing after retries: check status.stripe.com and re-run"
        fix = f"{cleanup}; {fix}" if cleanup else fix
        return Check(name, "fail" if required else "warn", self.describe(exc), fix, required)

    def describe(self, exc: stripe.StripeError) -> str:
        message = (exc.user_message or str(exc) or type(exc).__name__).strip().splitlines()[0]
        if self.api_key:
            message = message.replace(self.api_key, mask_key(self.api_key))
        message = mask_urls(message)
        return f"{exc.http_status or 'network'} {type(exc).__name__}: {message}"

    def against_stripe(self) -> None:
        account = self.account()
        if account is None:
            return  # nothing else can work: the key is refused or Stripe is unreachable
        self.listing("list customers", self.client.v1.customers.list, "Customers: Write")
        self.listing("list invoices", self.client.v1.invoices.list, "Invoices: Write")
        self.customer_and_invoice()
        self.webhook_endpoint()

    def account(self) -> bool | None:
        name = "account reachable"
        try:
            acct = self.call("account", self.client.v1.accounts.retrieve_current)
        except (stripe.AuthenticationError, stripe.APIConnectionError) as exc:
            self.checks.append(self.failure(name, exc, ""))
            return None
        except stripe.PermissionError as exc:  # a restricted key may not read the account
            self.checks.append(
                Check(name, "warn", self.describe(exc), "fine: Meterline does not read it", False)
            )
            return True
        except stripe.StripeError as exc:
            self.checks.append(self.failure(name, exc, "check status.stripe.com and re-run"))
            return True
        where = f", {acct.country}" if getattr(acct, "country", None) else ""
        self.checks.append(Check(name, "ok", f"account {acct.id}{where}"))
        return True

    def listing(self, name: str, list_fn: Callable[..., Any], permission: str) -> None:
        try:
            page = self.call(name, lambda: list_fn(params={"limit": 1}))
            if page.last_response is not None and self.answered_version is None:
                self.answered_version = page.last_response.headers.get("Stripe-Version") or None
        except stripe.StripeError as exc:
            self.checks.append(self.failure(name, exc, f"grant {permission} to the key"))
            return
        self.checks.append(Check(name, "ok", "readable"))

    # the customer and its draft invoice ---------------------------------------------------
    def customer_and_invoice(self) -> None:
        name = "create + delete a customer"
        left = self.remove_leftovers()
        try:
            customer = self.call(
                "customer create",
                lambda: self.client.v1.customers.create(
                    params={
                        "name": "Meterline stripe check (safe to delete)",
                        "metadata": {CHECK_METADATA: "true", "meterline_check_run": self.run_id},
                    },
                    options={"idempotency_key": f"meterline:check:{self.run_id}:customer"},
                ),
            )
            kept = metadata_of(self.call("customer retrieve", lambda: self.retrieve(customer.id)))
        except stripe.StripeError as exc:
            self.checks.append(self.failure(name, exc, "grant Customers: Write to the key"))
            return
        self.search(customer.id)
        self.draft_invoice(customer.id)
        try:
            self.call("customer delete", lambda: self.client.v1.customers.delete(customer.id))
        except stripe.StripeError as exc:
            self.checks.append(
                self.failure(
                    name,
                    exc,
                    "grant Customers: Write to the key",
                    cleanup=f"delete {customer.id} in the Dashboard (the next check also does)",
                )
            )
            return
        if kept.get("meterline_check_run") != self.run_id:
            self.checks.append(
                Check(
                    name,
                    "fail",
                    f"{customer.id} lost its metadata: {kept or 'none'}",
                    "Meterline finds tenants by metadata; contact Stripe support",
                )
            )
            return
        cleaned = f"; removed {left} object(s) left by an interrupted check" if left else ""
        self.checks.append(
            Check(name, "ok", f"{customer.id} created with metadata and deleted{cleaned}")
        )

    def retrieve(self, customer_id: str) -> Any:
        return self.client.v1.customers.retrieve(customer_id)

    def remove_leftovers(self) -> int:
        """Delete what an interrupted check left behind (tagged ``metadata.meterline_check``)
        among the 100 newest draft invoices and customers (lists are newest first); how many."""
        drafts, customers = self.client.v1.invoices, self.client.v1.customers
        try:
            newest = [
                (drafts, self.call("draft list", lambda: drafts.list(params=_DRAFTS)).data),
                (
                    customers,
                    self.call("customer list", lambda: customers.list(params=_NEWEST)).data,
                ),
            ]
            left = [
                (s, o.id) for s, page in newest for o in page if metadata_of(o).get(CHECK_METADATA)
            ]
            for service, object_id in left:
                self.call("leftover delete", lambda s=service, o=object_id: s.delete(o))
        except stripe.StripeError:
            return 0  # the listing checks report it
        return len(left)

    def search(self, customer_id: str) -> None:
        """Search: available, and caught up? Neither is needed (lists are), so warnings only."""
        name = "search"
        query = f"metadata['meterline_check_run']:'{self.run_id}'"
        try:
            found = self.call(
                "customer search",
                lambda: self.client.v1.customers.search(params={"query": query, "limit": 10}),
            )
        except stripe.StripeError as exc:
            self.checks.append(
                self.failure(
                    name,
                    exc,
                    "nothing to do: Meterline finds customers and invoices by list; "
                    "search (unavailable in some regions) is only a cross-check",
                    required=False,
                )
            )
            return
        if customer_id in {c.id for c in found.data}:
            self.checks.append(Check(name, "ok", "available and current", required=False))
            return
        self.checks.append(
            Check(
                name,
                "warn",
                "available but lagging: the customer created a moment ago is not found yet "
                "(Stripe's search index trails writes by about a minute, an hour in incidents)",
                "nothing to do: Meterline finds customers and invoices by list and uses search "
                "only as a cross-check",
                required=False,
            )
        )

    def draft_invoice(self, customer_id: str) -> None:
        name = "create + delete a draft invoice"
        invoice = None
        try:
            invoice = self.call(
                "invoice create",
                lambda: self.client.v1.invoices.create(
                    params={
                        "customer": customer_id,
                        "currency": "usd",
                        "auto_advance": False,
                        "collection_method": "send_invoice",
                        "days_until_due": 30,
                        "pending_invoice_items_behavior": "exclude",
                        "metadata": {CHECK_METADATA: "true"},
                    },
                    options={"idempotency_key": f"meterline:check:{self.run_id}:invoice"},
                ),
            )
            self.call("invoice delete", lambda: self.client.v1.invoices.delete(invoice.id))
        except stripe.StripeError as exc:
            left = (
                f"delete draft {invoice.id} in the Dashboard (the next check also does)"
                if invoice is not None
                else ""
            )
            self.checks.append(
                self.failure(name, exc, "grant Invoices: Write to the key", cleanup=left)
            )
            return
        self.checks.append(
            Check(
                name, "ok", f"{invoice.id} created as an empty draft and deleted (nothing charged)"
            )
        )

    # webhooks ------------------------------------------------------------------------------
    def webhook_endpoint(self) -> None:
        name = "webhook endpoint"
        try:
            page = self.call(
                "webhook endpoints",
                lambda: self.client.v1.webhook_endpoints.list(params={"limit": 100}),
            )
            endpoints = list(page.auto_paging_iter())
        except stripe.StripeError as exc:
            self.checks.append(
                self.failure(
                    name,
                    exc,
                    f"cannot tell with this key: check Stripe Dashboard > Developers "
                    f"> Webhooks for an endpoint at https://<your host>{WEBHOOK_PATH}",
                    required=False,
                )
            )
            return
        ours = [e for e in endpoints if _sends_invoice_events(e)]
        if not ours:
            self.checks.append(
                Check(
                    name,
                    "warn",
                    f"no enabled endpoint at …{WEBHOOK_PATH} receives invoice events "
                    f"({len(endpoints)} endpoint(s) in the account)",
                    f"add one in Stripe Dashboard > Developers > Webhooks: URL https://<your "
                    f"host>{WEBHOOK_PATH}, events {', '.join(INVOICE_EVENTS)}; put its signing "
                    "secret in STRIPE_WEBHOOK_SECRET",
                    required=False,
                )
            )
            return
        endpoint = ours[0]
        version = getattr(endpoint, "api_version", None)
        if version and version != stripe.api_version:
            self.checks.append(
                Check(
                    name,
                    "warn",
                    f"{endpoint.id} ({url_origin(endpoint.url)}) sends events in API version "
                    f"{version}, the SDK reads {stripe.api_version}",
                    f"create the endpoint with api_version {stripe.api_version}",
                    required=False,
                )
            )
            return
        self.checks.append(
            Check(
                name,
                "ok",
                f"{endpoint.id} ({url_origin(endpoint.url)}) receives invoice events",
                required=False,
            )
        )


def _sends_invoice_events(endpoint: Any) -> bool:
    events = set(endpoint.enabled_events or [])
    return (
        endpoint.status == "enabled"
        and str(endpoint.url).rstrip("/").endswith(WEBHOOK_PATH)
        and ("*" in events or bool(events & set(INVOICE_EVENTS)))
    )
