"""``create_invoices``: one month's invoice run, one tenant after another, resumable.

A Postgres advisory lock keeps two runs of the same month apart. Per tenant
(``_invoice_tenant``): a month already finalized is only refreshed; a total below the minimum is
recorded ``skipped``; otherwise customer, find-before-create, draft, items, finalize, each step
recorded so a crashed run resumes where it stopped. A tenant that fails is reported and the
run raises after the other tenants are done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import stripe
from sqlalchemy import Connection, Engine, text

from billing.collection import Collection
from billing.invoicing import store
from billing.invoicing.adjustments import compute_adjustments, pending_adjustment_tenants
from billing.invoicing.credits import credit_month, require_no_credit
from billing.invoicing.errors import InvoicingError
from billing.invoicing.expected import ExpectedLine, read_expected_lines
from billing.invoicing.report import InvoiceRunResult, TenantInvoice
from billing.invoicing.stripe_sync import StripeSync, due_at, finalized_at
from billing.money import to_minor
from billing.stripe_client import RetryPolicy
from meterline.core import clock
from meterline.core.installation import install_id
from meterline.core.periods import month_bounds, month_start

log = logging.getLogger(__name__)

FINALIZED = ("open", "payment_failed", "paid", "uncollectible", "void")
SETTLED = ("skipped", "credited")  # not invoiced: carried forward, or credited to the balance


@dataclass(frozen=True)
class _Run:
    engine: Engine
    stripe: StripeSync
    period: date
    usage_cutoff: datetime
    minimum_amount: Decimal

    @property
    def tag(self) -> str:
        return self.stripe.tag


def create_invoices(
    engine: Engine,
    stripe_client: stripe.StripeClient,
    period: date,
    *,
    usage_cutoff: datetime,
    minimum_amount: Decimal | int | str = 0,
    tenants: Iterable[str] | None = None,
    retry: RetryPolicy | None = None,
    now: datetime | None = None,
    install: str | None = None,
) -> InvoiceRunResult:
    """Invoice ``period`` (any day of the month) in Stripe; idempotent, resumable.

    ``usage_cutoff``: events loaded after it belong to a later prior-period adjustment (it
    must not be in the future: the month has to be closed). ``minimum_amount`` (major units of
    the tenant's currency): smaller totals are recorded as ``skipped`` and not sent to Stripe.
    Raises :class:`InvoicingError` (with ``.result``) when a tenant failed after retries; a
    re-run resumes where it stopped. ``install`` (default: this database's installation id)
    namespaces every Stripe object and lookup, so installs sharing an account stay apart.
    """
    period = month_start(period)
    _require_closed_month(period, usage_cutoff, now)
    sync = StripeSync(
        stripe_client,
        period,
        usage_cutoff,
        retry or RetryPolicy(),
        install or install_id(engine),
    )
    run = _Run(engine, sync, period, usage_cutoff, Decimal(str(minimum_amount)))
    result = InvoiceRunResult(period=period, usage_cutoff=usage_cutoff)
    with _month_lock(engine, period):
        with engine.connect() as conn:
            plan = _lines_to_invoice(conn, period, tenants)
        for tenant_id, lines in plan.items():
            result.invoices.append(_invoice_or_report_failure(run, tenant_id, lines))
    if result.failed:
        details = "; ".join(f"{i.tenant_id}: {i.error}" for i in result.failed)
        raise InvoicingError(
            f"{len(result.failed)} tenant(s) could not be invoiced for {period:%Y-%m} ({details}); "
            "re-run the partition to resume - nothing is invoiced twice",
            result,
        )
    return result


def _require_closed_month(period: date, usage_cutoff: datetime, now: datetime | None) -> None:
    _, period_end = month_bounds(period)
    if usage_cutoff.tzinfo is None:
        raise InvoicingError("usage_cutoff must be timezone-aware (UTC)")
    if usage_cutoff < period_end:
        raise InvoicingError(
            f"usage_cutoff {usage_cutoff:%Y-%m-%d %H:%M} is before the end of {period:%Y-%m}; "
            "it is the month end plus BILLING_GRACE_HOURS"
        )
    now = now or clock.now()
    if now < usage_cutoff:
        raise InvoicingError(
            f"{period:%Y-%m} is not closed yet: usage is accepted until "
            f"{usage_cutoff:%Y-%m-%d %H:%M} UTC (BILLING_GRACE_HOURS); invoice after that"
        )


@contextmanager
def _month_lock(engine: Engine, period: date) -> Iterator[None]:
    """A session advisory lock per month: a second run of the same month is refused."""
    lock_conn = engine.connect()
    key = {"k": period.year * 100 + period.month}
    try:
        got = lock_conn.execute(
            text("select pg_try_advisory_lock(hashtext('meterline.invoicing'), :k)"), key
        ).scalar()
        lock_conn.commit()
        if not got:
            raise InvoicingError(
                f"another invoice run for {period:%Y-%m} is in progress; wait for it to finish"
            )
        yield
    finally:
        try:
            lock_conn.execute(
                text("select pg_advisory_unlock(hashtext('meterline.invoicing'), :k)"), key
            )
            lock_conn.commit()
        finally:
            lock_conn.close()


def _lines_to_invoice(
    conn: Connection, period: date, tenants: Iterable[str] | None
) -> dict[str, list[ExpectedLine]]:
    """Per tenant: the month's expected lines plus its prior-period adjustments."""
    wanted = set(tenants) if tenants is not None else None
    by_tenant = read_expected_lines(conn, period, wanted)
    candidates = set(by_tenant) | pending_adjustment_tenants(conn, period)
    if wanted is not None:
        candidates &= wanted
    plan = {}
    for tenant_id in sorted(candidates):
        lines = list(by_tenant.get(tenant_id, []))
        currency = lines[0].currency if lines else store.tenant_currency(conn, tenant_id) or "USD"
        lines += compute_adjustments(conn, tenant_id, period, currency)
        if lines:
            plan[tenant_id] = lines
    return plan


def _invoice_or_report_failure(
    run: _Run, tenant_id: str, lines: list[ExpectedLine]
) -> TenantInvoice:
    try:
        return _invoice_tenant(run, tenant_id, lines)
    except (stripe.StripeError, InvoicingError) as exc:
        log.error("invoicing %s for %s failed: %s", tenant_id, run.tag, exc)
        return TenantInvoice(
            tenant_id, "failed", "failed", lines[0].currency,
            sum(line.amount for line in lines), error=str(exc), lines=lines,
        )  # fmt: skip


def _invoice_tenant(run: _Run, tenant_id: str, lines: list[ExpectedLine]) -> TenantInvoice:
    currency = _one_currency(run, tenant_id, lines)
    total = sum(line.amount for line in lines)
    with run.engine.connect() as conn:
        record = store.recorded_invoice(conn, tenant_id, run.period)
    if record is not None and record.status in FINALIZED and record.stripe_invoice_id:
        return _refresh_finalized(run, tenant_id, record.stripe_invoice_id, currency)
    if record is not None and record.status in SETTLED:
        # a skipped month's lines were carried forward to later invoices, a credited one is
        # on the customer balance: re-invoicing the month would bill them twice
        return TenantInvoice(
            tenant_id, "unchanged", record.status, currency, int(record.amount_due),
        )  # fmt: skip
    not_invoiced = total < 0 or total == 0 or total < to_minor(run.minimum_amount, currency)
    if not_invoiced and record is not None and record.status in ("pending", "draft"):
        finalized = _drop_draft(run, tenant_id, record)  # an earlier run's draft not owed now
        if finalized is not None:  # it was finalized after all (a crash right after)
            customer_id = _sync_customer(run, tenant_id)
            return _recover(run, tenant_id, customer_id, finalized, lines, currency)
    if total < 0:
        customer_id = _sync_customer(run, tenant_id)
        return credit_month(run.engine, run.stripe, tenant_id, customer_id, lines, currency, total)
    if record is not None and record.status == "crediting":
        # the month turned positive since a crash: invoice it only if no credit was issued
        require_no_credit(run.stripe, tenant_id, _sync_customer(run, tenant_id))
    if not_invoiced:
        return _skip(run, tenant_id, lines, currency, total)
    customer_id = _sync_customer(run, tenant_id)
    invoice = run.stripe.find_invoice(
        tenant_id, customer_id, record.stripe_invoice_id if record is not None else None
    )
    if invoice is not None and invoice.status != "draft":
        return _recover(run, tenant_id, customer_id, invoice, lines, currency)
    return _invoice_through_draft(run, tenant_id, customer_id, invoice, lines, currency, total)


def _one_currency(run: _Run, tenant_id: str, lines: list[ExpectedLine]) -> str:
    currencies = {line.currency for line in lines}
    if len(currencies) != 1:
        raise InvoicingError(
            f"tenant {tenant_id!r} has lines in several currencies {sorted(currencies)} for "
            f"{run.tag}; one invoice holds one currency - fix the tenant's plan currency"
        )
    return currencies.pop()


def _refresh_finalized(run: _Run, tenant_id: str, invoice_id: str, currency: str) -> TenantInvoice:
    """A finalized month is never edited: only its status is refreshed from Stripe."""
    invoice = run.stripe.retrieve_invoice(invoice_id)
    with run.engine.begin() as conn:
        store.update_status(conn, tenant_id, run.period, invoice.status)
    return TenantInvoice(
        tenant_id, "unchanged", invoice.status, currency, invoice.total, invoice.id,
        invoice.customer,
    )  # fmt: skip


def _skip(
    run: _Run, tenant_id: str, lines: list[ExpectedLine], currency: str, total: int
) -> TenantInvoice:
    """Below the minimum amount (or nothing owed): recorded ``skipped``, not sent to Stripe."""
    with run.engine.begin() as conn:
        store.record_invoice(
            conn, tenant_id, run.period, status="skipped", currency=currency,
            amount_due=total, usage_cutoff=run.usage_cutoff,
        )  # fmt: skip
        store.record_lines(conn, tenant_id, run.period, lines, {})
    return TenantInvoice(tenant_id, "skipped", "skipped", currency, total, lines=list(lines))


def _drop_draft(run: _Run, tenant_id: str, record: Any) -> Any | None:
    """Delete the month's Stripe draft left by an earlier run (a draft bills nothing), so a
    month now skipped or credited leaves none to be finalized by hand. Returns the month's
    invoice if it is no longer a draft (finalized after all: to be recovered, not dropped)."""
    customer_id = _sync_customer(run, tenant_id)
    invoice = run.stripe.find_invoice(tenant_id, customer_id, record.stripe_invoice_id)
    if invoice is not None and invoice.status != "draft":
        return invoice
    if invoice is not None:
        run.stripe.delete_draft(invoice.id)
    with run.engine.begin() as conn:
        store.forget_stripe_invoice(conn, tenant_id, run.period)
    return None


def _sync_customer(run: _Run, tenant_id: str) -> str:
    """The tenant's Stripe customer: the recorded one, else found or created and recorded."""
    with run.engine.connect() as conn:
        row = store.tenant_customer(conn, tenant_id)
    if row is None:
        raise InvoicingError(
            f"tenant {tenant_id!r} has invoice lines but is not in meterline.tenants; "
            "create it with `meterline tenants create`"
        )
    if row.stripe_customer_id:
        return row.stripe_customer_id
    customer_id = run.stripe.find_or_create_customer(tenant_id, row.name, row.email)
    with run.engine.begin() as conn:
        store.record_customer(conn, tenant_id, customer_id)
    return customer_id


def _recover(
    run: _Run,
    tenant_id: str,
    customer_id: str,
    invoice: Any,
    lines: list[ExpectedLine],
    currency: str,
) -> TenantInvoice:
    """Finalized earlier but not recorded (crash after finalize): record what Stripe has -
    its total and its lines as they are in Stripe, so a difference from ``lines`` is billed
    (or credited) as an adjustment on the next invoice instead of being recorded as billed."""
    stripe_lines, item_ids = run.stripe.finalized_lines(invoice.id, currency)
    expected = sum(line.amount for line in lines)
    if invoice.total != expected:
        log.warning(
            "recovered invoice %s of %s for %s totals %s in Stripe, expected %s (%s): the "
            "difference goes on the next invoice as an adjustment",
            invoice.id, tenant_id, run.tag, invoice.total, expected, currency,
        )  # fmt: skip
    with run.engine.begin() as conn:
        store.record_invoice(
            conn, tenant_id, run.period, status=invoice.status, currency=currency,
            amount_due=invoice.total, usage_cutoff=run.usage_cutoff,
            stripe_invoice_id=invoice.id, stripe_customer_id=customer_id,
            finalized_at=finalized_at(invoice), due_at=due_at(invoice),
        )  # fmt: skip
        store.record_lines(conn, tenant_id, run.period, stripe_lines, item_ids)
    return TenantInvoice(
        tenant_id, "recovered", invoice.status, currency, invoice.total, invoice.id, customer_id,
        stripe_lines,
    )  # fmt: skip


def _invoice_through_draft(
    run: _Run,
    tenant_id: str,
    customer_id: str,
    invoice: Any | None,
    lines: list[ExpectedLine],
    currency: str,
    total: int,
) -> TenantInvoice:
    """Create (or resume) the draft, put the items on it, finalize it; record each step."""
    action = "resumed" if invoice is not None else "created"
    with run.engine.connect() as conn:
        collection = store.collection_terms(conn, tenant_id, *month_bounds(run.period))
    if invoice is None:
        invoice = _create_draft(run, tenant_id, customer_id, currency, total, collection)
    with run.engine.begin() as conn:
        store.record_invoice(
            conn, tenant_id, run.period, status="draft", currency=currency, amount_due=total,
            usage_cutoff=run.usage_cutoff, stripe_invoice_id=invoice.id,
            stripe_customer_id=customer_id,
        )  # fmt: skip
        store.record_lines(conn, tenant_id, run.period, lines, {})
    item_ids = run.stripe.sync_items(tenant_id, customer_id, invoice.id, lines)
    with run.engine.begin() as conn:
        store.record_lines(conn, tenant_id, run.period, lines, item_ids)
    invoice = _finalize(run, tenant_id, invoice.id, total, currency, collection)
    with run.engine.begin() as conn:
        store.record_invoice(
            conn, tenant_id, run.period, status=invoice.status, currency=currency,
            amount_due=invoice.total, usage_cutoff=run.usage_cutoff, stripe_invoice_id=invoice.id,
            stripe_customer_id=customer_id, finalized_at=finalized_at(invoice) or clock.now(),
            due_at=due_at(invoice),
        )  # fmt: skip
    return TenantInvoice(
        tenant_id, action, invoice.status, currency, invoice.total, invoice.id, customer_id,
        list(lines),
    )  # fmt: skip


def _create_draft(
    run: _Run, tenant_id: str, customer_id: str, currency: str, total: int, collection: Collection
) -> Any:
    """Record ``pending`` first (a crash then leaves a trace), then create the draft."""
    with run.engine.begin() as conn:
        store.record_invoice(
            conn, tenant_id, run.period, status="pending", currency=currency,
            amount_due=total, usage_cutoff=run.usage_cutoff, stripe_customer_id=customer_id,
        )  # fmt: skip
    return run.stripe.create_draft(tenant_id, customer_id, currency, collection)


def _finalize(
    run: _Run, tenant_id: str, invoice_id: str, total: int, currency: str, collection: Collection
) -> Any:
    """Finalize the draft only when Stripe's total equals the expected total (checked before,
    and again after, in case the draft changed in between); Stripe then sends or charges it
    as ``collection`` says."""
    run.stripe.require_total(tenant_id, invoice_id, total, currency)
    invoice = run.stripe.finalize(tenant_id, invoice_id, collection)
    if invoice.total != total:
        raise InvoicingError(
            f"Stripe invoice {invoice.id} of tenant {tenant_id!r} totals {invoice.total}, "
            f"expected {total} ({currency}); check the invoice in Stripe before re-running"
        )
    return invoice
