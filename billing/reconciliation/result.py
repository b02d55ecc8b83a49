"""A reconciliation's outcome: one ``ReconciliationRow`` per tenant and Stripe invoice."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from billing.reconciliation.categories import CATEGORIES, UNEXPLAINED
from billing.reconciliation.reports import render_markdown


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
    # Stripe's starting_balance (customer balance the invoice applied: credit < 0, debit > 0)
    # and amount_due; reported, never compared (the comparison is on the invoice's total)
    balance_applied: int | None = None
    amount_due: int | None = None
    amount_paid: int = 0  # what Stripe says was paid on the invoice

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
        """Per currency: expected, in Stripe (collectible), paid, and the unexplained difference."""
        totals: dict[str, dict[str, int]] = defaultdict(
            lambda: {"expected": 0, "stripe": 0, "paid": 0, "unexplained_difference": 0}
        )
        for row in self.rows:
            t = totals[row.currency]
            t["expected"] += row.expected_amount
            t["stripe"] += row.stripe_amount
            t["paid"] += row.amount_paid
            if not row.explained:
                t["unexplained_difference"] += row.difference
        return dict(totals)

    def markdown(self) -> str:
        return render_markdown(self)
