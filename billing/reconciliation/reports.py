"""The reconciliation for finance: CSV and a self-contained HTML report under
``<reports_dir>/<YYYY-MM>/``, and the markdown summary for Dagster."""

from __future__ import annotations

import csv
import html
from pathlib import Path
from typing import TYPE_CHECKING

from billing.money import format_minor
from billing.reconciliation.categories import UNEXPLAINED
from meterline.core import clock

if TYPE_CHECKING:
    from billing.reconciliation.result import ReconciliationResult


def render_markdown(result: ReconciliationResult) -> str:
    """The summary shown as Dagster metadata: counts, totals and every row that is not matched."""
    counts = result.counts()
    lines = [
        f"**Reconciliation {result.period:%Y-%m}**: "
        + (
            "unexplained differences found"
            if result.has_unexplained_differences
            else "everything matched or is explained"
        ),
        "",
        "| category | tenants |",
        "|---|---:|",
        *[f"| {c} | {n} |" for c, n in counts.items() if n],
        "",
        "| currency | expected | in Stripe | paid | unexplained difference |",
        "|---|---:|---:|---:|---:|",
    ]
    for currency, t in sorted(result.totals().items()):
        lines.append(
            f"| {currency} | {format_minor(t['expected'], currency)} | "
            f"{format_minor(t['stripe'], currency)} | {format_minor(t['paid'], currency)} | "
            f"{format_minor(t['unexplained_difference'], currency)} |"
        )
    issues = [row for row in result.rows if row.category not in ("matched",)]
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
    if result.html_path:
        lines += ["", f"Report: {result.html_path}"]
    return "\n".join(lines)


def _money(amount: int, currency: str) -> str:
    return format_minor(amount, currency).rsplit(" ", 1)[0]


def _optional_money(amount: int | None, currency: str) -> str:
    return "" if amount is None else _money(amount, currency)


def write_reports(result: ReconciliationResult, reports_dir: Path) -> None:
    folder = reports_dir / f"{result.period:%Y-%m}"
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "reconciliation.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["period", "tenant_id", "category", "explained", "currency", "expected", "stripe",
             "difference", "stripe_invoice_id", "stripe_status", "explanation", "balance_applied",
             "amount_due", "paid"]
        )  # fmt: skip
        for row in result.rows:
            writer.writerow(
                [f"{result.period:%Y-%m}", row.tenant_id, row.category, "yes" if row.explained else "no",
                 row.currency, _money(row.expected_amount, row.currency), _money(row.stripe_amount, row.currency),
                 _money(row.difference, row.currency), row.stripe_invoice_id or "", row.stripe_status or "",
                 row.explanation, _optional_money(row.balance_applied, row.currency),
                 _optional_money(row.amount_due, row.currency), _money(row.amount_paid, row.currency)]
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
        f'<td class="num">{e(_money(t["paid"], cur))}</td>'
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
            f'<td class="num">{e(_optional_money(row.balance_applied, row.currency))}</td>'
            f'<td class="num">{e(_optional_money(row.amount_due, row.currency))}</td>'
            f'<td class="num">{e(_money(row.amount_paid, row.currency))}</td>'
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
<table><tr><th>Currency</th><th>Expected</th><th>In Stripe</th><th>Paid</th><th>Unexplained difference</th></tr>{totals_rows}</table>
<h2>Invoices</h2>
<p class="sub">Red: needs action. Yellow: a difference with a known explanation. Difference = Stripe &minus; expected.</p>
<table><tr><th>Tenant</th><th>Category</th><th>Currency</th><th>Expected</th><th>In Stripe</th>
<th>Difference</th><th>Balance applied</th><th>Amount due</th><th>Paid</th><th>Stripe invoice</th><th>Status</th><th>Explanation</th></tr>
{"".join(detail_rows) or '<tr><td colspan="12">No invoices expected and none in Stripe.</td></tr>'}
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
<li><b>past due</b>: open in Stripe after its due date (including a failed automatic payment): the money has not come in.</li>
<li><b>status issue</b>: voided, uncollectible or never finalized.</li>
</ul>
</body></html>
"""
