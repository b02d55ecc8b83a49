"""The report of ``meterline stripe check``: one line per check."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` is ``ok``, ``warn``, ``fail`` or ``skipped``."""

    name: str
    status: str
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.required and self.status == "fail"


@dataclass(frozen=True)
class StripeCheckReport:
    key: str  # masked
    api_base: str
    checks: list[Check]

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]

    @property
    def ok(self) -> bool:
        return not self.failures
