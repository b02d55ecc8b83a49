"""Usage segments: the parts of a month rated each on one plan version when the plan changed
during the month (issue 13). The same rule as dbt's ``int_usage_segments``; ``billing.rating``
rates each segment (``rate_period``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from billing.catalog import Plan
from meterline.core.periods import month_bounds


@dataclass(frozen=True)
class PlanSpan:
    """A plan in force over ``[start, end)`` (``end=None``: still in force), on the plan
    version the term pays (``version``)."""

    plan: Plan
    start: datetime
    end: datetime | None = None
    version: int = 1


@dataclass(frozen=True)
class UsageSegment:
    """A part of a month rated on one plan version: usage that occurred in
    ``[usage_from, usage_to)``. ``covered_seconds`` is the time the version was in force in the
    month (its share ``covered_seconds / month_seconds`` prorates ``prorate`` meters)."""

    plan: Plan
    version: int
    usage_from: datetime
    usage_to: datetime
    covered_seconds: Decimal
    month_seconds: Decimal
    key_suffix: str  # '@<plan_id>.v<version>', '#<n>' appended when the version comes back

    def contains(self, instant: datetime) -> bool:
        return self.usage_from <= instant < self.usage_to


def _seconds(delta: timedelta) -> Decimal:
    """Exact seconds of ``delta`` (as SQL's ``extract(epoch from interval)``)."""
    return Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)


def plan_segments(spans: Sequence[PlanSpan], period: date) -> list[UsageSegment]:
    """The usage segments of ``period``: runs of consecutive spans on the same plan version.

    The segments partition the month: the first starts at the month start (usage before the
    first plan of the month is rated on it), each ends where the next starts (usage after a
    cancellation or in a gap belongs to the segment that started last before it), the last ends
    at the month end. The same rule as dbt's ``int_usage_segments``.
    """
    start, end = month_bounds(period)
    runs: list[tuple[PlanSpan, datetime, Decimal]] = []  # (span, covered from, covered seconds)
    for span in sorted(spans, key=lambda s: s.start):
        lo = max(start, span.start)
        hi = min(end, span.end) if span.end is not None else end
        if hi <= lo:
            continue
        previous = runs[-1][0] if runs else None
        if previous and (previous.plan.plan_id, previous.version) == (
            span.plan.plan_id,
            span.version,
        ):
            runs[-1] = (previous, runs[-1][1], runs[-1][2] + _seconds(hi - lo))
        else:
            runs.append((span, lo, _seconds(hi - lo)))
    month_seconds = _seconds(end - start)
    seen: dict[tuple[str, int], int] = {}
    segments = []
    for index, (span, covered_from, covered) in enumerate(runs):
        version_key = (span.plan.plan_id, span.version)
        seen[version_key] = seen.get(version_key, 0) + 1
        suffix = f"@{span.plan.plan_id}.v{span.version}"
        segments.append(
            UsageSegment(
                plan=span.plan,
                version=span.version,
                usage_from=start if index == 0 else covered_from,
                usage_to=runs[index + 1][1] if index + 1 < len(runs) else end,
                covered_seconds=covered,
                month_seconds=month_seconds,
                key_suffix=suffix + (f"#{seen[version_key]}" if seen[version_key] > 1 else ""),
            )
        )
    return segments


def segment_note(segment: UsageSegment) -> str:
    """What a split month's usage line adds to its description (dbt macro ``segment_note``):
    `` on Pro v2, 2026-09-16 12:00 to 2026-10-01 00:00 UTC``."""
    return (
        f" on {segment.plan.name} v{segment.version}, "
        f"{segment.usage_from:%Y-%m-%d %H:%M} to {segment.usage_to:%Y-%m-%d %H:%M} UTC"
    )
