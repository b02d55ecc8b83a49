"""Where a percentage of a limit stands: the quota bar's level and the admin quota status."""

from __future__ import annotations

from collections.abc import Sequence

from ingestion.alerts import DEFAULT_THRESHOLDS


def level(percent: float | None, thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> int:
    """The highest threshold reached (0 below the first): the quota bar's colour class."""
    if percent is None:
        return 0
    reached = [t for t in sorted(thresholds) if percent >= t]
    return reached[-1] if reached else 0


def quota_status(percent: float | None, thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> str:
    if percent is None:
        return "ok"
    if percent >= 100:
        return "exceeded"
    return "warning" if percent >= min(thresholds) else "ok"
