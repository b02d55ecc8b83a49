"""Monthly reconciliation: what tenants owe (dbt marts + invoice records) against Stripe.

Per tenant and month, one row per Stripe invoice (or one row when Stripe has none):

- ``matched``: Stripe's total equals the expected amount and the invoice is in good standing.
- ``amount_mismatch``: a live Stripe invoice whose total differs from the expected amount.
- ``missing_in_stripe``: the tenant owes money but Stripe has no live invoice for the month.
- ``unexpected_in_stripe``: Stripe has an invoice for a tenant that owes nothing.
- ``duplicate_in_stripe``: a second (third...) live invoice for the same tenant and month.
- ``status_issue``: voided without replacement, uncollectible, past due, or still a draft.
- ``adjustment_explained`` (explained): the expected amount grew after the invoice was
  finalized because usage was loaded late; the difference was billed (or will be billed, on
  the next run) as a prior-period adjustment line on a later invoice.
- ``replaced`` (explained): a voided invoice superseded by another live invoice of the month
  (the live one is compared with the expected amount on its own row).

Expected amount = ``sum(analytics.fct_invoice_lines.amount)`` of the tenant's month (equal to
``fct_invoices``, tested in dbt) plus the prior-period adjustment lines Meterline put on that
month's invoice. A tenant whose total was below the minimum amount (recorded ``skipped``) is
expected to have no invoice. Stripe's invoices are found by metadata ``meterline_period``.

Results replace the month's rows in ``meterline.invoice_reconciliation``; a CSV and a
self-contained HTML report are written to ``<reports_dir>/<YYYY-MM>/``.
"""

from __future__ import annotations

import csv
import html
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import stripe
from sqlalchemy import Engine, text

from billing.invoicing import LINES_TABLE, month_start, require_lines_table
from billing.money import format_minor
from billing.rating import month_bounds
from billing.stripe_client import RetryPolicy, metadata_of, of_install, with_retries
from meterline.core import clock
from meterline.core.installation import install_id

CATEGORIES = (
    "matched",
    "adjustment_explained",
    "replaced",
    "amount_mismatch",
    "missing_in_stripe",
    "unexpected_in_stripe",
    "duplicate_in_stripe",
    "status_issue",
)
UNEXPLAINED = frozenset(
    {
        "amount_mismatch",
        "missing_in_stripe",
        "unexpected_in_stripe",
        "duplicate_in_stripe",
        "status_issue",
    }
)


@dataclass(frozen=True)
class ReconciliationRow:
    tenant_id: str
    category: str
    currency: str
    expected_amount: int
    stripe_amount: int
    stripe_invoice_id: str | None = None
    stripe_status: str | None = None
    explanation: str = ""

    @property
    def difference(self) -> int:
        return self.stripe_amount - self.expected_amount

    @property
    def explained(self) -> bool:
        return self.category not in UNEXPLAINED


@dataclass
class ReconciliationResult:
    period: date
    rows: list[ReconciliationRow] = field(default_factory=list)
    csv_path: Path | None = None
    html_path: Path | None = None

    @property
    def has_unexplained_differences(self) -> bool:
        return any(not row.explained for row in self.rows)

    def counts(self) -> dict[str, int]:
        counter = Counter(row.category for row in self.rows)
        return {category: counter.get(category, 0) for category in CATEGORIES}

    def totals(self) -> dict[str, dict[str, int]]:
        """Per currency: expected, in Stripe (collectible), and the unexplained difference."""
        totals: dict[str, dict[str, int]] = defaultdict(
            lambda: {"expected": 0, "stripe": 0, "unexplained_difference": 0}
        )
        for row in self.rows:
            t = totals[row.currency]
            t["expected"] += row.expected_amount
            t["stripe"] += row.stripe_amount
            if not row.explained:
                t["unexplained_difference"] += row.difference
        return dict(totals)

    def by_category(self, category: str) -> list[ReconciliationRow]:
        return [row for row in self.rows if row.category == category]

    def markdown(self) -> str:
        counts = self.counts()
        lines = [
            f"**Reconciliation {self.period:%Y-%m}**: "
            + (
                "unexplained differences found"
                if self.has_unexplained_differences
                else "everything matched or is explained"
            ),
            "",
            "| category | tenants |",
            "|---|---:|",
            *[f"| {c} | {n} |" for c, n in counts.items() if n],
            "",
            "| currency | expected | in Stripe | unexplained difference |",
            "|---|---:|---:|---:|",
        ]
        for currency, t in sorted(self.totals().items()):
            lines.append(
                f"| {currency} | {format_minor(t['expected'], currency)} | "
                f"{format_minor(t['stripe'], currency)} | "
                f"{format_minor(t['unexplained_difference'], currency)} |"
            )
        issues = [row for row in self.rows if row.category not in ("matched",)]
        if issues:
            lines += [
                "",
                "| tenant | category | expected | Stripe | invoice | explanation |",
                "|---|---|---:|---:|---|---|",
            ]
            for row in issues:
                lines.append(
                    f"| {row.tenant_id} | {row.category} | "
                    f"{format_minor(row.expected_amount, row.currency)} | "
                    f"{format_minor(row.stripe_amount, row.currency)} | {row.stripe_invoice_id or ''} | "
                    f"{row.explanation.replace('|', '/')} |"
                )
        if self.html_path:
            lines += ["", f"Report: {self.html_path}"]
        return "\n".join(lines)


def _stripe_invoices(
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


def reconcile(
    engine: Engine,
    stripe_client: stripe.StripeClient,
    period: date,
    *,
    reports_dir: str | Path,
    retry: RetryPolicy | None = None,
    now: datetime | None = None,
    install: str | None = None,
) -> ReconciliationResult:
    """Compare the month's expected invoices with Stripe; store rows and write the reports.

    Only this installation's invoices are considered (``install``, default: this database's
    installation id): another install sharing the Stripe account is neither matched nor
    reported as unexpected."""
    period = month_start(period)
    tag = f"{period:%Y-%m}"
    retry = retry or RetryPolicy()
    now = now or clock.now()
    start, end = month_bounds(period)
    with engine.connect() as conn:
        require_lines_table(conn)
        conn.execute(text("set time zone 'UTC'"))
        owed = {
            r.tenant_id: (int(r.amount), r.currency)
            for r in conn.execute(
                text(
                    f"""
                    select tenant_id, sum(amount) as amount, min(upper(trim(currency))) as currency
                    from {LINES_TABLE} where month::date = :p group by tenant_id
                    """
                ),
                {"p": period},
            )
        }
        records = {
            r.tenant_id: r
            for r in conn.execute(
                text(
                    """
                    select i.tenant_id, i.stripe_invoice_id, i.status, trim(i.currency) as currency,
                           i.amount_due, i.finalized_at, i.usage_cutoff,
                           coalesce(sum(l.amount) filter (where l.line_key like 'adjustment:%'), 0)
                               as carried_adjustments
                    from meterline.invoices i
                    left join meterline.invoice_lines l using (tenant_id, period)
                    where i.period = :p
                    group by i.tenant_id, i.stripe_invoice_id, i.status, i.currency,
                             i.amount_due, i.finalized_at, i.usage_cutoff
                    """
                ),
                {"p": period},
            )
        }
        billed_later: dict[str, list[tuple[int, date, str | None]]] = defaultdict(list)
        for r in conn.execute(
            text(
                """
                select l.tenant_id, l.period, sum(l.amount) as amount, i.stripe_invoice_id
                from meterline.invoice_lines l
                join meterline.invoices i using (tenant_id, period)
                where l.line_key like :prefix and l.period <> :p
                group by l.tenant_id, l.period, i.stripe_invoice_id
                """
            ),
            {"prefix": f"adjustment:{tag}:%", "p": period},
        ):
            billed_later[r.tenant_id].append((int(r.amount), r.period, r.stripe_invoice_id))
        tenant_currency = dict(
            conn.execute(text("select tenant_id, trim(currency) from meterline.tenants")).all()
        )
        late_events: dict[str, int] = {}
        for r in conn.execute(
            text(
                """
                select e.tenant_id, count(*) as n
                from raw.usage_events e
                join meterline.invoices i on i.tenant_id = e.tenant_id and i.period = :p
                where e.occurred_at >= :start and e.occurred_at < :end
                  and e.loaded_at > coalesce(i.finalized_at, i.usage_cutoff)
                group by e.tenant_id
                """
            ),
            {"p": period, "start": start, "end": end},
        ):
            late_events[r.tenant_id] = int(r.n)

    found = _stripe_invoices(stripe_client, tag, install or install_id(engine), retry)
    by_tenant: dict[str, list[Any]] = defaultdict(list)
    seen_ids = set()
    for inv in found:
        tenant = metadata_of(inv).get("meterline_tenant_id") or f"(customer {inv.customer})"
        by_tenant[tenant].append(inv)
        seen_ids.add(inv.id)
    for tenant_id, record in records.items():
        if record.stripe_invoice_id and record.stripe_invoice_id not in seen_ids:
            try:
                inv = with_retries(
                    retry,
                    "invoice retrieve",
                    lambda rid=record.stripe_invoice_id: stripe_client.v1.invoices.retrieve(rid),
                )
            except stripe.InvalidRequestError as exc:
                if exc.http_status != 404:
                    raise
                continue
            by_tenant[tenant_id].append(inv)

    rows: list[ReconciliationRow] = []
    for tenant_id in sorted(set(owed) | set(records) | set(by_tenant)):
        record = records.get(tenant_id)
        owed_now, owed_currency = owed.get(tenant_id, (0, None))
        currency = (
            owed_currency
            or (record.currency if record else None)
            or tenant_currency.get(tenant_id)
            or (by_tenant[tenant_id][0].currency.upper() if by_tenant.get(tenant_id) else "USD")
        )
        carried = int(record.carried_adjustments) if record else 0
        expected = owed_now + carried
        skipped = record is not None and record.status == "skipped"
        expected_in_stripe = 0 if skipped else expected
        invoices = sorted(by_tenant.get(tenant_id, []), key=lambda i: (i.created, i.id))
        live = [i for i in invoices if i.status != "void"]
        voids = [i for i in invoices if i.status == "void"]
        primary = None
        if live:
            ours = [i for i in live if record is not None and i.id == record.stripe_invoice_id]
            primary = ours[0] if ours else live[0]

        if primary is None:
            if voids:
                for inv in voids:
                    rows.append(
                        ReconciliationRow(
                            tenant_id, "status_issue", currency, expected_in_stripe, 0, inv.id, "void",
                            f"invoice voided in Stripe ({format_minor(inv.total, currency)} no longer "
                            "collectible) and not replaced",
                        )
                    )  # fmt: skip
            elif expected_in_stripe > 0:
                rows.append(
                    ReconciliationRow(
                        tenant_id, "missing_in_stripe", currency, expected_in_stripe, 0, None, None,
                        f"owes {format_minor(expected_in_stripe, currency)} but Stripe has no invoice "
                        f"for {tag}" + (f" (recorded status {record.status})" if record else " (not invoiced yet)"),
                    )
                )  # fmt: skip
            elif skipped and owed_now > 0:
                rows.append(
                    ReconciliationRow(
                        tenant_id, "matched", currency, 0, 0, None, None,
                        f"{format_minor(owed_now, currency)} is below the minimum invoice amount; not invoiced",
                    )
                )  # fmt: skip
            continue

        stripe_amount = int(primary.total)
        category, explanation = "matched", ""
        if stripe_amount != expected_in_stripe:
            difference = expected_in_stripe - stripe_amount
            billed = sum(a for a, _, _ in billed_later.get(tenant_id, []))
            ours = record is not None and record.stripe_invoice_id == primary.id
            if expected_in_stripe == 0 and record is None:
                category = "unexpected_in_stripe"
                explanation = f"tenant owes nothing for {tag} but Stripe invoice totals {format_minor(stripe_amount, currency)}"
            elif ours and record.amount_due == stripe_amount and billed == difference:
                where = ", ".join(
                    f"{p:%Y-%m} invoice {inv_id}" for _, p, inv_id in billed_later[tenant_id]
                )
                category = "adjustment_explained"
                explanation = (
                    f"{format_minor(difference, currency)} of usage loaded after this invoice was "
                    f"finalized was billed as a prior-period adjustment on the {where}"
                )
            elif (
                ours
                and record.amount_due == stripe_amount
                and billed == 0
                and late_events.get(tenant_id)
            ):
                category = "adjustment_explained"
                explanation = (
                    f"{format_minor(difference, currency)} from {late_events[tenant_id]} late event(s) "
                    "loaded after finalization will be billed as a prior-period adjustment on the "
                    "next invoice"
                )
            else:
                category = "amount_mismatch"
                explanation = (
                    f"Stripe invoice totals {format_minor(stripe_amount, currency)}, expected "
                    f"{format_minor(expected_in_stripe, currency)}"
                    + ("" if ours else " (not the invoice Meterline created)")
                )
        if category == "matched" or category == "adjustment_explained":
            issue = _status_issue(primary, now)
            if issue:
                category, explanation = (
                    "status_issue",
                    (explanation + "; " if explanation else "") + issue,
                )
        rows.append(
            ReconciliationRow(
                tenant_id, category, currency, expected_in_stripe, stripe_amount, primary.id,
                primary.status, explanation,
            )
        )  # fmt: skip
        for inv in voids:
            rows.append(
                ReconciliationRow(
                    tenant_id, "replaced", currency, 0, 0, inv.id, "void",
                    f"voided ({format_minor(int(inv.total), currency)}) and replaced by {primary.id}",
                )
            )  # fmt: skip
        for inv in live:
            if inv.id == primary.id:
                continue
            rows.append(
                ReconciliationRow(
                    tenant_id, "duplicate_in_stripe", currency, 0, int(inv.total), inv.id, inv.status,
                    f"second live invoice for {tag} (the first is {primary.id})",
                )
            )  # fmt: skip

    result = ReconciliationResult(period=period, rows=rows)
    _store(engine, period, rows)
    _write_reports(result, Path(reports_dir))
    return result


def _status_issue(invoice: Any, now: datetime) -> str | None:
    if invoice.status == "uncollectible":
        return "marked uncollectible in Stripe"
    if invoice.status == "draft":
        return "still a draft in Stripe: never finalized (re-run the invoice partition)"
    due = getattr(invoice, "due_date", None)
    if invoice.status == "open" and due and due < now.timestamp():
        return f"past due since {datetime.fromtimestamp(due, UTC):%Y-%m-%d}"
    return None


def _store(engine: Engine, period: date, rows: list[ReconciliationRow]) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("delete from meterline.invoice_reconciliation where period = :p"), {"p": period}
        )
        for row in rows:
            conn.execute(
                text(
                    """
                    insert into meterline.invoice_reconciliation
                        (period, tenant_id, stripe_invoice_id, currency, expected_amount,
                         stripe_amount, difference, category, explanation)
                    values (:p, :t, :inv, :cur, :exp, :str, :diff, :cat, :why)
                    """
                ),
                {
                    "p": period,
                    "t": row.tenant_id,
                    "inv": row.stripe_invoice_id,
                    "cur": row.currency,
                    "exp": row.expected_amount,
                    "str": row.stripe_amount,
                    "diff": row.difference,
                    "cat": row.category,
                    "why": row.explanation,
                },
            )


def _money(amount: int, currency: str) -> str:
    return format_minor(amount, currency).rsplit(" ", 1)[0]


def _write_reports(result: ReconciliationResult, reports_dir: Path) -> None:
    folder = reports_dir / f"{result.period:%Y-%m}"
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "reconciliation.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["period", "tenant_id", "category", "explained", "currency", "expected", "stripe",
             "difference", "stripe_invoice_id", "stripe_status", "explanation"]
        )  # fmt: skip
        for row in result.rows:
            writer.writerow(
                [f"{result.period:%Y-%m}", row.tenant_id, row.category, "yes" if row.explained else "no",
                 row.currency, _money(row.expected_amount, row.currency), _money(row.stripe_amount, row.currency),
                 _money(row.difference, row.currency), row.stripe_invoice_id or "", row.stripe_status or "",
                 row.explanation]
            )  # fmt: skip
    result.csv_path = csv_path
    result.html_path = folder / "reconciliation.html"
    result.html_path.write_text(render_html(result))


_STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem;color:#1f2933}
h1{font-size:1.5rem;margin-bottom:.2rem}.sub{color:#52606d;margin-top:0}
table{border-collapse:collapse;margin:1rem 0;min-width:40rem}
th,td{border:1px solid #d9e2ec;padding:.4rem .7rem;text-align:left;vertical-align:top}
th{background:#f0f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fde8e8}tr.note td{background:#fff8e1}tr.ok td{background:#fff}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.8rem;font-size:.85em}
.bad .badge{background:#e12d39;color:#fff}.note .badge{background:#f0b429}.ok .badge{background:#3ebd93;color:#fff}
.verdict{padding:.6rem 1rem;border-radius:.3rem;display:inline-block;font-weight:600}
.verdict.bad{background:#fde8e8;color:#a61b1b}.verdict.ok{background:#e3f9e5;color:#0e5814}
"""


def render_html(result: ReconciliationResult) -> str:
    e = html.escape
    period = f"{result.period:%Y-%m}"
    verdict = (
        '<p class="verdict bad">Unexplained differences: review the highlighted rows.</p>'
        if result.has_unexplained_differences
        else '<p class="verdict ok">Every invoice matches or the difference is explained.</p>'
    )
    summary_rows = "".join(
        f'<tr class="{"bad" if c in UNEXPLAINED and n else "ok"}"><td>{e(c.replace("_", " "))}</td>'
        f'<td class="num">{n}</td></tr>'
        for c, n in result.counts().items()
    )
    totals_rows = "".join(
        f'<tr><td>{e(cur)}</td><td class="num">{e(_money(t["expected"], cur))}</td>'
        f'<td class="num">{e(_money(t["stripe"], cur))}</td>'
        f'<td class="num">{e(_money(t["unexplained_difference"], cur))}</td></tr>'
        for cur, t in sorted(result.totals().items())
    )
    detail_rows = []
    for row in sorted(result.rows, key=lambda r: (r.explained, r.tenant_id)):
        css = "ok" if row.category == "matched" else ("note" if row.explained else "bad")
        detail_rows.append(
            f'<tr class="{css}"><td>{e(row.tenant_id)}</td>'
            f'<td><span class="badge">{e(row.category.replace("_", " "))}</span></td>'
            f"<td>{e(row.currency)}</td>"
            f'<td class="num">{e(_money(row.expected_amount, row.currency))}</td>'
            f'<td class="num">{e(_money(row.stripe_amount, row.currency))}</td>'
            f'<td class="num">{e(_money(row.difference, row.currency))}</td>'
            f"<td>{e(row.stripe_invoice_id or '')}</td><td>{e(row.stripe_status or '')}</td>"
            f"<td>{e(row.explanation)}</td></tr>"
        )
    generated = clock.now().strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice reconciliation {period}</title>
<style>{_STYLE}</style></head><body>
<h1>Invoice reconciliation &mdash; {period}</h1>
<p class="sub">Expected amounts (Meterline's rated usage) against Stripe. Generated {generated}.</p>
{verdict}
<h2>Summary</h2>
<table><tr><th>Category</th><th>Rows</th></tr>{summary_rows}</table>
<table><tr><th>Currency</th><th>Expected</th><th>In Stripe</th><th>Unexplained difference</th></tr>{totals_rows}</table>
<h2>Invoices</h2>
<p class="sub">Red: needs action. Yellow: a difference with a known explanation. Difference = Stripe &minus; expected.</p>
<table><tr><th>Tenant</th><th>Category</th><th>Currency</th><th>Expected</th><th>In Stripe</th>
<th>Difference</th><th>Stripe invoice</th><th>Status</th><th>Explanation</th></tr>
{"".join(detail_rows) or '<tr><td colspan="9">No invoices expected and none in Stripe.</td></tr>'}
</table>
<h2>What the categories mean</h2>
<ul>
<li><b>matched</b>: Stripe's total equals what the tenant owes.</li>
<li><b>adjustment explained</b>: usage arrived after the invoice was finalized; it is billed on a later invoice as a prior-period adjustment.</li>
<li><b>replaced</b>: a voided invoice that another invoice of the month replaced.</li>
<li><b>amount mismatch</b>: the Stripe invoice total differs from the amount owed.</li>
<li><b>missing in Stripe</b>: the tenant owes money but has no invoice.</li>
<li><b>unexpected in Stripe</b>: an invoice for a tenant that owes nothing this month.</li>
<li><b>duplicate in Stripe</b>: more than one live invoice for the same tenant and month.</li>
<li><b>status issue</b>: voided, uncollectible, past due or never finalized.</li>
</ul>
</body></html>
"""
