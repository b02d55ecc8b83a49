"""Monthly Stripe invoices: one per charged tenant and month, safe to re-run and to resume.

Source of truth for what a tenant owes is the dbt mart ``analytics.fct_invoice_lines``
(rated per line in minor units, ``tenant_id, month, line_key, line_type, meter, plan_id,
quantity, amount, currency, description``). For every tenant with a charge this:

1. syncs the Stripe customer (metadata ``meterline_tenant_id``; ``meterline.stripe_customers``);
2. looks for the tenant's invoice of the month - ``meterline.invoices`` first, then Stripe
   (the customer's invoices with metadata ``meterline_period``) - so a partial run resumes;
3. creates a draft invoice (``pending_invoice_items_behavior=exclude``, metadata
   ``meterline_tenant_id`` + ``meterline_period``), one invoice item per line, finalizes it;
4. records invoice and lines with their Stripe ids and status in ``meterline.invoices`` /
   ``meterline.invoice_lines``.

Every create call carries an idempotency key derived from tenant, period and line (and the
draft invoice id and amount for items, so a changed draft never replays a stale item);
429/409/5xx/network errors are retried with exponential backoff (``billing.stripe_client``).
A finalized invoice is never edited: re-running a finalized month changes nothing.

Prior-period adjustments (computed here in Python, not in SQL): for each earlier month with a
finalized invoice, ``fct_invoice_lines`` of that month *now* (it includes usage loaded after
the invoice was finalized) minus what was invoiced for it minus adjustments already billed on
other invoices, per line. A non-zero difference becomes an ``adjustment:<YYYY-MM>:<line_key>``
line on this month's invoice. Rating the month as a whole (not the late events alone) keeps
graduated tiers exact.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import stripe
from sqlalchemy import Connection, Engine, text

from billing.money import format_minor, to_minor
from billing.rating import describe_usage, format_quantity, month_bounds
from billing.stripe_client import RetryPolicy, metadata_of, of_install, with_retries
from meterline.core import clock
from meterline.core.installation import install_id

log = logging.getLogger(__name__)

FINALIZED = ("open", "paid", "uncollectible", "void")
ADJUSTABLE = ("open", "paid", "uncollectible")  # a voided month is not topped up
ADJUSTMENT_LOOKBACK_MONTHS = 12
LINES_TABLE = "analytics.fct_invoice_lines"


class InvoicingError(RuntimeError):
    """Invoicing could not complete; the message says which tenant and what to do."""

    def __init__(self, message: str, result: InvoiceRunResult | None = None):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class ExpectedLine:
    line_key: str
    line_type: str
    meter: str | None
    plan_id: str | None
    quantity: Decimal
    amount: int
    currency: str
    description: str


@dataclass
class TenantInvoice:
    tenant_id: str
    action: str  # created | resumed | unchanged | recovered | skipped | failed
    status: str
    currency: str
    amount_due: int
    stripe_invoice_id: str | None = None
    stripe_customer_id: str | None = None
    lines: list[ExpectedLine] = field(default_factory=list)
    error: str | None = None


@dataclass
class InvoiceRunResult:
    period: date
    usage_cutoff: datetime
    invoices: list[TenantInvoice] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for i in self.invoices if i.action == action)

    @property
    def failed(self) -> list[TenantInvoice]:
        return [i for i in self.invoices if i.action == "failed"]

    def totals_by_currency(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for invoice in self.invoices:
            if invoice.action not in ("skipped", "failed") and invoice.status != "void":
                totals[invoice.currency] += invoice.amount_due
        return dict(totals)

    def summary(self) -> dict[str, Any]:
        return {
            "period": f"{self.period:%Y-%m}",
            "usage_cutoff": self.usage_cutoff.isoformat(),
            "tenants": len(self.invoices),
            **{
                action: self.count(action)
                for action in ("created", "resumed", "recovered", "unchanged", "skipped", "failed")
            },
            "totals": {c: format_minor(a, c) for c, a in sorted(self.totals_by_currency().items())},
        }

    def markdown(self) -> str:
        rows = [
            f"| {i.tenant_id} | {i.action} | {i.status} | {format_minor(i.amount_due, i.currency)} "
            f"| {i.stripe_invoice_id or ''} |"
            for i in sorted(self.invoices, key=lambda i: i.tenant_id)
        ]
        totals = ", ".join(
            f"{format_minor(a, c)}" for c, a in sorted(self.totals_by_currency().items())
        )
        return "\n".join(
            [
                f"**Invoices {self.period:%Y-%m}** (usage loaded before {self.usage_cutoff:%Y-%m-%d %H:%M} UTC): "
                f"{len(self.invoices)} tenants, total {totals or '0'}",
                "",
                "| tenant | action | status | amount | stripe invoice |",
                "|---|---|---|---|---|",
                *rows,
            ]
        )


def month_start(value: date) -> date:
    return date(value.year, value.month, 1)


def add_months(value: date, months: int) -> date:
    index = value.year * 12 + value.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _key(*parts: object) -> str:
    text_key = ":".join(str(p) for p in ("meterline", *parts))
    return text_key[:255]


def _set_utc(conn: Connection) -> None:
    conn.execute(text("set time zone 'UTC'"))


def require_lines_table(conn: Connection) -> None:
    if conn.execute(text("select to_regclass(:t)"), {"t": LINES_TABLE}).scalar() is None:
        raise InvoicingError(
            f"{LINES_TABLE} does not exist: build the dbt marts first "
            "(`meterline pipeline run` or `dbt build`), then invoice"
        )


def read_expected_lines(
    conn: Connection, period: date, tenants: Iterable[str] | None = None
) -> dict[str, list[ExpectedLine]]:
    """The month's rated lines per tenant from ``analytics.fct_invoice_lines`` (amount != 0)."""
    require_lines_table(conn)
    _set_utc(conn)
    units = dict(conn.execute(text("select meter, unit from meterline.meters")).all())
    plan_names = dict(conn.execute(text("select plan_id, name from meterline.plans")).all())
    rows = conn.execute(
        text(
            f"""
            select tenant_id, line_key, line_type, meter, plan_id, quantity, amount,
                   upper(trim(currency)) as currency, description
            from {LINES_TABLE}
            where month::date = :period
            order by tenant_id, line_type <> 'base_fee', line_key
            """
        ),
        {"period": period},
    ).all()
    wanted = set(tenants) if tenants is not None else None
    result: dict[str, list[ExpectedLine]] = defaultdict(list)
    for row in rows:
        if wanted is not None and row.tenant_id not in wanted:
            continue
        amount = int(row.amount)
        if amount == 0:
            continue
        quantity = Decimal(row.quantity or 0)
        if row.meter and row.line_type != "base_fee":
            description = describe_usage(row.meter, quantity, units.get(row.meter))
        elif row.line_type == "base_fee" and row.plan_id in plan_names:
            description = row.description or f"{plan_names[row.plan_id]} plan base fee"
        else:
            description = row.description or row.line_key
        result[row.tenant_id].append(
            ExpectedLine(
                line_key=row.line_key,
                line_type=row.line_type,
                meter=row.meter,
                plan_id=row.plan_id,
                quantity=quantity,
                amount=amount,
                currency=row.currency,
                description=description,
            )
        )
    return dict(result)


def _mart_by_key(conn: Connection, tenant_id: str, period: date) -> dict[str, Any]:
    rows = conn.execute(
        text(
            f"""
            select line_key, line_type, meter, quantity, amount, upper(trim(currency)) as currency
            from {LINES_TABLE} where tenant_id = :t and month::date = :p
            """
        ),
        {"t": tenant_id, "p": period},
    ).all()
    return {r.line_key: r for r in rows}


def compute_adjustments(
    conn: Connection, tenant_id: str, period: date, currency: str
) -> list[ExpectedLine]:
    """Prior-period adjustment lines for ``tenant_id`` to put on the invoice of ``period``."""
    _set_utc(conn)
    units = dict(conn.execute(text("select meter, unit from meterline.meters")).all())
    earliest = add_months(period, -ADJUSTMENT_LOOKBACK_MONTHS)
    prior = conn.execute(
        text(
            """
            select period from meterline.invoices
            where tenant_id = :t and period < :p and period >= :earliest
              and status = any(:statuses) and stripe_invoice_id is not null
            order by period
            """
        ),
        {"t": tenant_id, "p": period, "earliest": earliest, "statuses": list(ADJUSTABLE)},
    ).scalars()
    lines: list[ExpectedLine] = []
    for prior_period in prior:
        tag = f"{prior_period:%Y-%m}"
        mart = _mart_by_key(conn, tenant_id, prior_period)
        billed = {
            r.line_key: r
            for r in conn.execute(
                text(
                    """
                    select line_key, quantity, amount from meterline.invoice_lines
                    where tenant_id = :t and period = :p and line_key not like 'adjustment:%'
                    """
                ),
                {"t": tenant_id, "p": prior_period},
            )
        }
        adjusted: dict[str, tuple[Decimal, int]] = defaultdict(lambda: (Decimal(0), 0))
        for r in conn.execute(
            text(
                """
                select line_key, quantity, amount from meterline.invoice_lines
                where tenant_id = :t and line_key like :prefix and period <> :current
                """
            ),
            {"t": tenant_id, "prefix": f"adjustment:{tag}:%", "current": period},
        ):
            original = r.line_key.split(":", 2)[2]
            q, a = adjusted[original]
            adjusted[original] = (q + Decimal(r.quantity), a + int(r.amount))
        for line_key in sorted(set(mart) | set(billed) | set(adjusted)):
            m = mart.get(line_key)
            if m is not None and m.currency != currency:
                continue
            b = billed.get(line_key)
            done_q, done_a = adjusted[line_key]
            delta = (int(m.amount) if m else 0) - (int(b.amount) if b else 0) - done_a
            if delta == 0:
                continue
            qty = (
                (Decimal(m.quantity or 0) if m else Decimal(0))
                - (Decimal(b.quantity) if b else Decimal(0))
                - done_q
            )
            meter = m.meter if m else None
            if meter:
                usage = describe_usage(meter, abs(qty), units.get(meter))
                sign = "+" if qty >= 0 else "-"
                what = usage.replace(": ", f": {sign}", 1)
            else:
                what = line_key
            lines.append(
                ExpectedLine(
                    line_key=f"adjustment:{tag}:{line_key}",
                    line_type="adjustment",
                    meter=meter,
                    plan_id=None,
                    quantity=qty,
                    amount=delta,
                    currency=currency,
                    description=f"Prior-period adjustment {tag} - {what} "
                    "(usage loaded after that invoice was finalized)",
                )
            )
    return lines


def _pending_adjustment_tenants(conn: Connection, period: date) -> set[str]:
    """Tenants with a finalized invoice in the lookback window (candidates for adjustments)."""
    return set(
        conn.execute(
            text(
                """
                select distinct tenant_id from meterline.invoices
                where period < :p and period >= :earliest and status = any(:s)
                """
            ),
            {
                "p": period,
                "earliest": add_months(period, -ADJUSTMENT_LOOKBACK_MONTHS),
                "s": list(ADJUSTABLE),
            },
        ).scalars()
    )


# Stripe side -------------------------------------------------------------------------------
class _Run:
    def __init__(
        self,
        engine: Engine,
        client: stripe.StripeClient,
        period: date,
        usage_cutoff: datetime,
        minimum_amount: Decimal,
        retry: RetryPolicy,
        days_until_due: int,
        install: str,
    ):
        self.engine = engine
        self.install = install  # metadata.meterline_install: this installation's objects only
        self.client = client
        self.period = period
        self.tag = f"{period:%Y-%m}"
        self.usage_cutoff = usage_cutoff
        self.minimum_amount = minimum_amount
        self.retry = retry
        self.days_until_due = days_until_due
        start, end = month_bounds(period)
        self.period_start, self.period_end = int(start.timestamp()), int(end.timestamp())

    def call(self, what: str, fn, *args, **kwargs):
        return with_retries(self.retry, what, lambda: fn(*args, **kwargs))

    def key(self, *parts: object) -> str:
        """An idempotency key: unique to this installation (keys are per Stripe account)."""
        return _key(self.install, *parts)

    def ours(self, obj: Any, tenant_id: str) -> bool:
        """This tenant's object, and this installation's (see ``of_install``)."""
        tenant = metadata_of(obj).get("meterline_tenant_id")
        return tenant == tenant_id and of_install(obj, self.install)

    # customers ---------------------------------------------------------------------------
    def sync_customer(self, tenant_id: str) -> str:
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    """
                    select c.stripe_customer_id, t.name, t.email
                    from meterline.tenants t
                    left join meterline.stripe_customers c using (tenant_id)
                    where t.tenant_id = :t
                    """
                ),
                {"t": tenant_id},
            ).first()
        if row is None:
            raise InvoicingError(
                f"tenant {tenant_id!r} has invoice lines but is not in meterline.tenants; "
                "create it with `meterline tenants create`"
            )
        if row.stripe_customer_id:
            return row.stripe_customer_id
        found = self.call(
            "customer search",
            self.client.v1.customers.search,
            params={"query": f"metadata['meterline_tenant_id']:'{tenant_id}'", "limit": 100},
        )
        # Our own first, then one made by hand (no installation id), oldest first.
        matches = sorted(
            (c for c in found.auto_paging_iter() if self.ours(c, tenant_id)),
            key=lambda c: (metadata_of(c).get("meterline_install") != self.install, c.created),
        )
        if matches:
            customer_id = matches[0].id
        else:
            params: dict[str, Any] = {
                "name": row.name,
                "metadata": {"meterline_tenant_id": tenant_id, "meterline_install": self.install},
            }
            if row.email:
                params["email"] = row.email
            customer = self.call(
                "customer create",
                self.client.v1.customers.create,
                params=params,
                options={"idempotency_key": self.key(tenant_id, "customer")},
            )
            customer_id = customer.id
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    """
                    insert into meterline.stripe_customers (tenant_id, stripe_customer_id)
                    values (:t, :c)
                    on conflict (tenant_id) do update
                        set stripe_customer_id = excluded.stripe_customer_id, synced_at = now()
                    """
                ),
                {"t": tenant_id, "c": customer_id},
            )
        return customer_id

    # invoices ----------------------------------------------------------------------------
    def find_invoice(self, tenant_id: str, customer_id: str, recorded_id: str | None):
        if recorded_id:
            try:
                return self.call("invoice retrieve", self.client.v1.invoices.retrieve, recorded_id)
            except stripe.InvalidRequestError as exc:
                if exc.http_status != 404:
                    raise
                log.warning("recorded invoice %s of %s is gone from Stripe", recorded_id, tenant_id)
        page = self.call(
            "invoice list",
            self.client.v1.invoices.list,
            params={"customer": customer_id, "limit": 100},
        )
        candidates = [
            inv
            for inv in page.auto_paging_iter()
            if metadata_of(inv).get("meterline_period") == self.tag and self.ours(inv, tenant_id)
        ]
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

    def create_draft(self, tenant_id: str, customer_id: str, currency: str):
        return self.call(
            "invoice create",
            self.client.v1.invoices.create,
            params={
                "customer": customer_id,
                "currency": currency.lower(),
                "pending_invoice_items_behavior": "exclude",
                "auto_advance": False,
                "collection_method": "send_invoice",
                "days_until_due": self.days_until_due,
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

    def draft_items(self, invoice_id: str) -> dict[str, Any]:
        page = self.call(
            "invoice item list",
            self.client.v1.invoice_items.list,
            params={"invoice": invoice_id, "limit": 100},
        )
        items: dict[str, Any] = {}
        for item in page.auto_paging_iter():
            key = metadata_of(item).get("line_key")
            if key in items:  # a duplicate item on our own draft: drop it
                self.call("invoice item delete", self.client.v1.invoice_items.delete, item.id)
                continue
            items[key] = item
        return items

    def create_item(self, tenant_id: str, customer_id: str, invoice_id: str, line: ExpectedLine):
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
                    tenant_id, self.tag, invoice_id, "line", line.line_key, line.amount
                )
            },
        )


def _record_invoice(
    conn: Connection,
    tenant_id: str,
    period: date,
    *,
    status: str,
    currency: str,
    amount_due: int,
    usage_cutoff: datetime,
    stripe_invoice_id: str | None = None,
    stripe_customer_id: str | None = None,
    finalized_at: datetime | None = None,
) -> None:
    conn.execute(
        text(
            """
            insert into meterline.invoices
                (tenant_id, period, stripe_invoice_id, stripe_customer_id, status, currency,
                 amount_due, usage_cutoff, finalized_at)
            values (:t, :p, :inv, :cus, :status, :cur, :amount, :cutoff, :fin)
            on conflict (tenant_id, period) do update set
                stripe_invoice_id = coalesce(excluded.stripe_invoice_id, meterline.invoices.stripe_invoice_id),
                stripe_customer_id = coalesce(excluded.stripe_customer_id, meterline.invoices.stripe_customer_id),
                status = excluded.status, currency = excluded.currency,
                amount_due = excluded.amount_due, usage_cutoff = excluded.usage_cutoff,
                finalized_at = coalesce(excluded.finalized_at, meterline.invoices.finalized_at)
            """
        ),
        {
            "t": tenant_id,
            "p": period,
            "inv": stripe_invoice_id,
            "cus": stripe_customer_id,
            "status": status,
            "cur": currency,
            "amount": amount_due,
            "cutoff": usage_cutoff,
            "fin": finalized_at,
        },
    )


def _record_lines(
    conn: Connection,
    tenant_id: str,
    period: date,
    lines: Sequence[ExpectedLine],
    item_ids: dict[str, str | None],
) -> None:
    conn.execute(
        text("delete from meterline.invoice_lines where tenant_id = :t and period = :p"),
        {"t": tenant_id, "p": period},
    )
    for line in lines:
        conn.execute(
            text(
                """
                insert into meterline.invoice_lines
                    (tenant_id, period, line_key, meter, description, quantity, amount, currency,
                     stripe_invoice_item_id)
                values (:t, :p, :k, :m, :d, :q, :a, :c, :ii)
                """
            ),
            {
                "t": tenant_id,
                "p": period,
                "k": line.line_key,
                "m": line.meter,
                "d": line.description,
                "q": line.quantity,
                "a": line.amount,
                "c": line.currency,
                "ii": item_ids.get(line.line_key),
            },
        )


def _finalized_at(invoice) -> datetime | None:
    transitions = getattr(invoice, "status_transitions", None)
    ts = getattr(transitions, "finalized_at", None) if transitions else None
    return datetime.fromtimestamp(ts, UTC) if ts else None


def _invoice_tenant(run: _Run, tenant_id: str, lines: list[ExpectedLine]) -> TenantInvoice:
    currencies = {line.currency for line in lines}
    if len(currencies) != 1:
        raise InvoicingError(
            f"tenant {tenant_id!r} has lines in several currencies {sorted(currencies)} for "
            f"{run.tag}; one invoice holds one currency - fix the tenant's plan currency"
        )
    currency = currencies.pop()
    total = sum(line.amount for line in lines)
    with run.engine.connect() as conn:
        record = conn.execute(
            text(
                "select stripe_invoice_id, status from meterline.invoices "
                "where tenant_id = :t and period = :p"
            ),
            {"t": tenant_id, "p": run.period},
        ).first()
    if record is not None and record.status in FINALIZED and record.stripe_invoice_id:
        invoice = run.call(
            "invoice retrieve", run.client.v1.invoices.retrieve, record.stripe_invoice_id
        )
        with run.engine.begin() as conn:
            conn.execute(
                text(
                    "update meterline.invoices set status = :s where tenant_id = :t and period = :p"
                ),
                {"s": invoice.status, "t": tenant_id, "p": run.period},
            )
        return TenantInvoice(
            tenant_id,
            "unchanged",
            invoice.status,
            currency,
            invoice.total,
            invoice.id,
            invoice.customer,
        )
    if total <= 0 or total < to_minor(run.minimum_amount, currency):
        with run.engine.begin() as conn:
            _record_invoice(
                conn, tenant_id, run.period, status="skipped", currency=currency,
                amount_due=total, usage_cutoff=run.usage_cutoff,
            )  # fmt: skip
            _record_lines(conn, tenant_id, run.period, lines, {})
        return TenantInvoice(tenant_id, "skipped", "skipped", currency, total, lines=list(lines))

    customer_id = run.sync_customer(tenant_id)
    invoice = run.find_invoice(
        tenant_id, customer_id, record.stripe_invoice_id if record is not None else None
    )
    if invoice is not None and invoice.status != "draft":
        # finalized earlier but not recorded (crash after finalize): record what Stripe has
        item_ids = {
            metadata_of(li).get("line_key"): li.parent.invoice_item_details.invoice_item
            for li in run.call(
                "invoice lines",
                run.client.v1.invoices.line_items.list,
                invoice.id,
                params={"limit": 100},
            ).auto_paging_iter()
            if li.parent and li.parent.invoice_item_details
        }
        with run.engine.begin() as conn:
            _record_invoice(
                conn, tenant_id, run.period, status=invoice.status, currency=currency,
                amount_due=invoice.total, usage_cutoff=run.usage_cutoff,
                stripe_invoice_id=invoice.id, stripe_customer_id=customer_id,
                finalized_at=_finalized_at(invoice),
            )  # fmt: skip
            _record_lines(conn, tenant_id, run.period, lines, item_ids)
        return TenantInvoice(
            tenant_id, "recovered", invoice.status, currency, invoice.total, invoice.id, customer_id, list(lines)
        )  # fmt: skip

    action = "resumed" if invoice is not None else "created"
    if invoice is None:
        with run.engine.begin() as conn:
            _record_invoice(
                conn, tenant_id, run.period, status="pending", currency=currency,
                amount_due=total, usage_cutoff=run.usage_cutoff, stripe_customer_id=customer_id,
            )  # fmt: skip
        invoice = run.create_draft(tenant_id, customer_id, currency)
    with run.engine.begin() as conn:
        _record_invoice(
            conn, tenant_id, run.period, status="draft", currency=currency, amount_due=total,
            usage_cutoff=run.usage_cutoff, stripe_invoice_id=invoice.id,
            stripe_customer_id=customer_id,
        )  # fmt: skip
        _record_lines(conn, tenant_id, run.period, lines, {})

    existing = run.draft_items(invoice.id)
    wanted = {line.line_key: line for line in lines}
    for key, item in existing.items():
        line = wanted.get(key)
        if line is None or item.amount != line.amount or item.currency != line.currency.lower():
            run.call("invoice item delete", run.client.v1.invoice_items.delete, item.id)
    item_ids: dict[str, str | None] = {}
    for line in lines:
        item = existing.get(line.line_key)
        if item is None or item.amount != line.amount or item.currency != line.currency.lower():
            item = run.create_item(tenant_id, customer_id, invoice.id, line)
        item_ids[line.line_key] = item.id
    with run.engine.begin() as conn:
        _record_lines(conn, tenant_id, run.period, lines, item_ids)

    try:
        invoice = run.call(
            "invoice finalize",
            run.client.v1.invoices.finalize_invoice,
            invoice.id,
            params={"auto_advance": False},
            options={"idempotency_key": run.key(tenant_id, run.tag, invoice.id, "finalize")},
        )
    except stripe.InvalidRequestError:
        invoice = run.call("invoice retrieve", run.client.v1.invoices.retrieve, invoice.id)
        if invoice.status == "draft":
            raise
    if invoice.total != total:
        raise InvoicingError(
            f"Stripe invoice {invoice.id} of tenant {tenant_id!r} totals {invoice.total}, "
            f"expected {total} ({currency}); check the invoice in Stripe before re-running"
        )
    with run.engine.begin() as conn:
        _record_invoice(
            conn, tenant_id, run.period, status=invoice.status, currency=currency,
            amount_due=invoice.total, usage_cutoff=run.usage_cutoff, stripe_invoice_id=invoice.id,
            stripe_customer_id=customer_id, finalized_at=_finalized_at(invoice) or clock.now(),
        )  # fmt: skip
    return TenantInvoice(
        tenant_id,
        action,
        invoice.status,
        currency,
        invoice.total,
        invoice.id,
        customer_id,
        list(lines),
    )


def create_invoices(
    engine: Engine,
    stripe_client: stripe.StripeClient,
    period: date,
    *,
    usage_cutoff: datetime,
    minimum_amount: Decimal | int | str = 0,
    tenants: Iterable[str] | None = None,
    retry: RetryPolicy | None = None,
    days_until_due: int = 30,
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
    run = _Run(
        engine,
        stripe_client,
        period,
        usage_cutoff,
        Decimal(str(minimum_amount)),
        retry or RetryPolicy(),
        days_until_due,
        install or install_id(engine),
    )
    result = InvoiceRunResult(period=period, usage_cutoff=usage_cutoff)
    lock_conn = engine.connect()
    try:
        got = lock_conn.execute(
            text("select pg_try_advisory_lock(hashtext('meterline.invoicing'), :k)"),
            {"k": period.year * 100 + period.month},
        ).scalar()
        lock_conn.commit()
        if not got:
            raise InvoicingError(
                f"another invoice run for {period:%Y-%m} is in progress; wait for it to finish"
            )
        with engine.connect() as conn:
            wanted = set(tenants) if tenants is not None else None
            by_tenant = read_expected_lines(conn, period, wanted)
            candidates = set(by_tenant) | _pending_adjustment_tenants(conn, period)
            if wanted is not None:
                candidates &= wanted
            plan = {}
            for tenant_id in sorted(candidates):
                lines = list(by_tenant.get(tenant_id, []))
                currency = (
                    lines[0].currency
                    if lines
                    else conn.execute(
                        text("select trim(currency) from meterline.tenants where tenant_id = :t"),
                        {"t": tenant_id},
                    ).scalar()
                    or "USD"
                )
                lines += compute_adjustments(conn, tenant_id, period, currency)
                if lines:
                    plan[tenant_id] = lines
        for tenant_id, lines in plan.items():
            try:
                result.invoices.append(_invoice_tenant(run, tenant_id, lines))
            except (stripe.StripeError, InvoicingError) as exc:
                log.error("invoicing %s for %s failed: %s", tenant_id, run.tag, exc)
                result.invoices.append(
                    TenantInvoice(
                        tenant_id, "failed", "failed", lines[0].currency,
                        sum(line.amount for line in lines), error=str(exc), lines=lines,
                    )
                )  # fmt: skip
    finally:
        try:
            lock_conn.execute(
                text("select pg_advisory_unlock(hashtext('meterline.invoicing'), :k)"),
                {"k": period.year * 100 + period.month},
            )
            lock_conn.commit()
        finally:
            lock_conn.close()
    if result.failed:
        details = "; ".join(f"{i.tenant_id}: {i.error}" for i in result.failed)
        raise InvoicingError(
            f"{len(result.failed)} tenant(s) could not be invoiced for {period:%Y-%m} ({details}); "
            "re-run the partition to resume - nothing is invoiced twice",
            result,
        )
    return result
