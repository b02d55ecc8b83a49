"""The one error invoicing raises."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing.invoicing.report import InvoiceRunResult


class InvoicingError(RuntimeError):
    """Invoicing could not complete; the message says which tenant and what to do."""

    def __init__(self, message: str, result: InvoiceRunResult | None = None):
        super().__init__(message)
        self.result = result
