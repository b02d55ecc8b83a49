"""Categorising: each tenant's expected amount against its Stripe invoices of the month.

Per tenant: pick the primary invoice (the recorded one if live, else the oldest live one);
without one, the tenant is ``missing_in_stripe`` (or its voided invoices are a
``status_issue``); with one, its total is compared with the expected amount and a difference is
explained (late usage billed as an adjustment) or not; then its standing is checked; other
voided invoices of the month are ``replaced``, other live ones ``duplicate_in_stripe``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from billing.money import format_minor
from billing.reconciliation.expected import MonthExpectations, describe_late_events
from billing.reconciliation.result import ReconciliationRow


def compare(
    period: date,
    expected: MonthExpectations,
    invoices: dict[str, list[Any]],
    now: datetime,
    credits: dict[str, Any | None] | None = None,
) -> list[ReconciliationRow]:
    """The month's rows: every tenant that owes, was recorded, or has a Stripe invoice.
    ``credits``: tenant -> the month's customer balance credit in Stripe (negative months)."""
    credits = credits or {}
    rows: list[ReconciliationRow] = []
    for tenant_id in sorted(set(expected.owed) | set(expected.records) | set(invoices)):
        if tenant_id in credits and not invoices.get(tenant_id):
            rows.append(_credit_row(tenant_id, expected, credits[tenant_id]))
            continue
        rows += _tenant_rows(tenant_id, f"{period:%Y-%m}", expected, invoices, now)
    return rows


def _credit_row(tenant_id: str, expected: MonthExpectations, txn: Any | None) -> ReconciliationRow:
    """A negative month: the credit on the customer balance must equal what is owed."""
    record = expected.records[tenant_id]
    owed_now, _ = expected.owed.get(tenant_id, (0, None))
    currency = record.currency
    owed = owed_now + int(record.carried_adjustments)
    why = "; ".join(expected.carried.get(tenant_id, []))
    if txn is None:
        return ReconciliationRow(
            tenant_id, "missing_in_stripe", currency, owed, 0, None, record.status,
            f"a customer balance credit of {format_minor(owed, currency)} was to be issued "
            f"(recorded status {record.status}) but Stripe has none; re-run the invoice partition",
        )  # fmt: skip
    amount = int(txn.amount)
    category = "matched" if amount == owed else "amount_mismatch"
    return ReconciliationRow(
        tenant_id, category, currency, owed, amount, txn.id, "credited",
        f"no invoice: {format_minor(-amount, currency)} credited to the customer balance "
        f"(applied to the next invoices)" + (f"; {why}" if why else ""),
        amount_due=0,
    )  # fmt: skip


def _tenant_rows(
    tenant_id: str,
    tag: str,
    expected: MonthExpectations,
    invoices_by_tenant: dict[str, list[Any]],
    now: datetime,
) -> list[ReconciliationRow]:
    record = expected.records.get(tenant_id)
    owed_now, owed_currency = expected.owed.get(tenant_id, (0, None))
    found = invoices_by_tenant.get(tenant_id, [])
    currency = (
        owed_currency
        or (record.currency if record else None)
        or expected.tenant_currency.get(tenant_id)
        or (found[0].currency.upper() if found else "USD")
    )
    carried = int(record.carried_adjustments) if record else 0
    skipped = record is not None and record.status == "skipped"
    expected_in_stripe = 0 if skipped else owed_now + carried
    invoices = sorted(found, key=lambda i: (i.created, i.id))
    live = [i for i in invoices if i.status != "void"]
    voids = [i for i in invoices if i.status == "void"]
    primary = _primary(live, record)
    if primary is None:
        return _rows_without_live_invoice(
            tenant_id, tag, currency, expected_in_stripe, owed_now, record, voids, expected
        )
    category, explanation = _categorise(
        tenant_id, tag, currency, expected_in_stripe, primary, record, expected, now
    )
    notes = [explanation] if explanation else []
    if expected.carried.get(tenant_id):
        notes.append("includes prior-period adjustments: " + "; ".join(expected.carried[tenant_id]))
    notes += _balance_notes(primary, currency)
    rows = [
        ReconciliationRow(
            tenant_id, category, currency, expected_in_stripe, int(primary.total), primary.id,
            primary.status, "; ".join(notes),
            balance_applied=int(getattr(primary, "starting_balance", 0) or 0),
            amount_due=int(primary.amount_due),
            amount_paid=int(getattr(primary, "amount_paid", 0) or 0),
        )
    ]  # fmt: skip
    return rows + _other_invoices(tenant_id, tag, currency, primary, live, voids)


def _balance_notes(invoice: Any, currency: str) -> list[str]:
    """Why Stripe's amount due differs from the total: the customer balance it applied, or
    Stripe's minimum charge (a small amount due is marked paid and moved to the balance)."""
    notes = []
    starting = int(getattr(invoice, "starting_balance", 0) or 0)
    ending = int(getattr(invoice, "ending_balance", 0) or 0)
    if starting < 0:
        notes.append(
            f"customer credit balance of {format_minor(-starting, currency)} applied; "
            f"amount due {format_minor(int(invoice.amount_due), currency)}"
        )
    elif starting > 0:
        notes.append(
            f"customer balance debit of {format_minor(starting, currency)} (carried from an "
            f"earlier invoice) added; amount due {format_minor(int(invoice.amount_due), currency)}"
        )
    if invoice.status == "paid" and ending > 0 and not getattr(invoice, "amount_paid", 0):
        notes.append(
            f"below Stripe's minimum charge: marked paid and {format_minor(ending, currency)} "
            "moved to the customer balance, collected on the next invoice"
        )
    return notes


def _primary(live: list[Any], record: Any | None) -> Any | None:
    """The invoice compared with the expected amount: the recorded one, else the oldest live."""
    if not live:
        return None
    ours = [i for i in live if record is not None and i.id == record.stripe_invoice_id]
    return ours[0] if ours else live[0]


def _rows_without_live_invoice(
    tenant_id: str,
    tag: str,
    currency: str,
    expected_in_stripe: int,
    owed_now: int,
    record: Any | None,
    voids: list[Any],
    expected: MonthExpectations,
) -> list[ReconciliationRow]:
    if voids:
        return [
            ReconciliationRow(
                tenant_id,
                "status_issue",
                currency,
                expected_in_stripe,
                0,
                inv.id,
                "void",
                f"invoice voided in Stripe ({format_minor(inv.total, currency)} no longer "
                "collectible) and not replaced",
            )
            for inv in voids
        ]
    if expected_in_stripe > 0:
        return [
            ReconciliationRow(
                tenant_id, "missing_in_stripe", currency, expected_in_stripe, 0, None, None,
                f"owes {format_minor(expected_in_stripe, currency)} but Stripe has no invoice "
                f"for {tag}" + (f" (recorded status {record.status})" if record else " (not invoiced yet)"),
            )
        ]  # fmt: skip
    if (
        record is not None
        and record.status == "skipped"
        and owed_now + int(record.carried_adjustments)
    ):
        owed = owed_now + int(record.carried_adjustments)
        where = ", ".join(
            f"{p:%Y-%m} invoice {inv_id}"
            for _, p, inv_id in expected.billed_later.get(tenant_id, [])
        )
        return [
            ReconciliationRow(
                tenant_id, "matched", currency, 0, 0, None, "skipped",
                f"{format_minor(owed, currency)} is below the minimum invoice amount; not "
                "invoiced, carried forward to the next invoice"
                + (f" (billed on the {where})" if where else " (not billed yet)"),
            )
        ]  # fmt: skip
    return []


def _categorise(
    tenant_id: str,
    tag: str,
    currency: str,
    expected_in_stripe: int,
    primary: Any,
    record: Any | None,
    expected: MonthExpectations,
    now: datetime,
) -> tuple[str, str]:
    """The primary invoice's category: its amount first, then its standing in Stripe."""
    category, explanation = "matched", ""
    if int(primary.total) != expected_in_stripe:
        category, explanation = _explain_difference(
            tenant_id, tag, currency, expected_in_stripe, primary, record, expected
        )
    if category == "matched" or category == "adjustment_explained":
        standing = _standing(primary, now)
        if standing:
            issue, said = standing
            category, explanation = issue, (explanation + "; " if explanation else "") + said
        elif primary.status == "paid" and not explanation:
            explanation = _paid_on(primary)
    return category, explanation


def _explain_difference(
    tenant_id: str,
    tag: str,
    currency: str,
    expected_in_stripe: int,
    primary: Any,
    record: Any | None,
    expected: MonthExpectations,
) -> tuple[str, str]:
    """Why Stripe's total differs: late usage billed (or to be billed) as an adjustment is
    explained; anything else is unexpected or a mismatch."""
    stripe_amount = int(primary.total)
    difference = expected_in_stripe - stripe_amount
    billed_later = expected.billed_later.get(tenant_id, [])
    billed = sum(a for a, _, _ in billed_later)
    ours = record is not None and record.stripe_invoice_id == primary.id
    late_events = expected.late_events.get(tenant_id)
    cause = f" ({describe_late_events(late_events)})" if late_events else ""
    if expected_in_stripe == 0 and record is None:
        return (
            "unexpected_in_stripe",
            f"tenant owes nothing for {tag} but Stripe invoice totals {format_minor(stripe_amount, currency)}",
        )
    if ours and record.amount_due == stripe_amount and billed == difference:
        where = ", ".join(f"{p:%Y-%m} invoice {inv_id}" for _, p, inv_id in billed_later)
        return (
            "adjustment_explained",
            (
                f"{format_minor(difference, currency)} of usage loaded after this invoice was "
                f"finalized{cause}"
                if late_events
                else f"{format_minor(difference, currency)} this invoice did not bill (no late "
                "events: the month was re-rated, or a line was missing when it was finalized)"
            )
            + f" was billed as a prior-period adjustment on the {where}",
        )
    if ours and record.amount_due == stripe_amount and billed == 0 and late_events:
        return (
            "adjustment_explained",
            f"{format_minor(difference, currency)} from late events{cause} loaded after "
            "finalization will be billed as a prior-period adjustment on the next invoice",
        )
    return (
        "amount_mismatch",
        f"Stripe invoice totals {format_minor(stripe_amount, currency)}, expected "
        f"{format_minor(expected_in_stripe, currency)}"
        + ("" if ours else " (not the invoice Meterline created)"),
    )


def _standing(invoice: Any, now: datetime) -> tuple[str, str] | None:
    """``(category, explanation)`` of an invoice not in good standing, else None."""
    if invoice.status == "uncollectible":
        return "status_issue", "marked uncollectible in Stripe"
    if invoice.status == "draft":
        return (
            "status_issue",
            "still a draft in Stripe: never finalized (re-run the invoice partition)",
        )
    due = getattr(invoice, "due_date", None)
    if invoice.status == "open" and due and due < now.timestamp():
        failed = getattr(invoice, "attempt_count", 0) or 0
        tried = f" ({failed} payment attempt(s) failed)" if failed else ""
        return (
            "past_due",
            f"open and past due since {datetime.fromtimestamp(due, UTC):%Y-%m-%d}{tried}",
        )
    return None


def _paid_on(invoice: Any) -> str:
    transitions = getattr(invoice, "status_transitions", None)
    paid_at = getattr(transitions, "paid_at", None) if transitions else None
    return f"paid {datetime.fromtimestamp(paid_at, UTC):%Y-%m-%d}" if paid_at else "paid"


def _other_invoices(
    tenant_id: str, tag: str, currency: str, primary: Any, live: list[Any], voids: list[Any]
) -> list[ReconciliationRow]:
    """Voided invoices the primary replaced, and any further live invoice (a duplicate)."""
    rows = [
        ReconciliationRow(
            tenant_id,
            "replaced",
            currency,
            0,
            0,
            inv.id,
            "void",
            f"voided ({format_minor(int(inv.total), currency)}) and replaced by {primary.id}",
        )
        for inv in voids
    ]
    rows += [
        ReconciliationRow(
            tenant_id,
            "duplicate_in_stripe",
            currency,
            0,
            int(inv.total),
            inv.id,
            inv.status,
            f"second live invoice for {tag} (the first is {primary.id})",
        )
        for inv in live
        if inv.id != primary.id
    ]
    return rows
