"""What an invoice run did: per tenant (``TenantInvoice``) and in all (``InvoiceRunResult``),
with the summary and markdown shown as Dagster metadata."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from billing.invoicing.expected import ExpectedLine
from billing.money import format_minor

ACTIONS = ("created", "resumed", "recovered", "credited", "unchanged", "skipped", "failed")


@dataclass
class TenantInvoice:
    tenant_id: str
    action: str  # created | resumed | unchanged | recovered | credited | skipped | failed
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
            if invoice.action not in ("skipped", "failed", "credited") and invoice.status != "void":
                totals[invoice.currency] += invoice.amount_due
        return dict(totals)

    def summary(self) -> dict[str, Any]:
        return {
            "period": f"{self.period:%Y-%m}",
            "usage_cutoff": self.usage_cutoff.isoformat(),
            "tenants": len(self.invoices),
            **{action: self.count(action) for action in ACTIONS},
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
