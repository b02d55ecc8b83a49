"""Where a percentage of a plan limit stands: the one rule for thresholds and levels.

Alerts fire at these thresholds, the portal colours quota bars by them, and the quota status
(ok, warning, exceeded) follows from them; dbt's ``fct_quota_status`` uses the first threshold
as its ``quota_warning_percent`` var.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_THRESHOLDS: tuple[int, ...] = (80, 90, 95, 100)


def level(percent: float | None, thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> int:
    """The highest threshold reached (0 below the first, or without a limit)."""
    if percent is None:
        return 0
    reached = [t for t in sorted(thresholds) if percent >= t]
    return reached[-1] if reached else 0


def quota_status(percent: float | None, thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> str:
    """``exceeded`` at 100 % or more, ``warning`` from the first threshold, else ``ok``."""
    if percent is None:
        return "ok"
    if percent >= 100:
        return "exceeded"
    return "warning" if percent >= min(thresholds) else "ok"
