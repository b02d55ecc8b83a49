"""Charts as small inline SVG, rendered on the server (no chart library, no network).

A daily bar chart is one ``<path>`` (one sub-path per non-zero day) scaled into a fixed
viewBox and stretched to the container's width by CSS, so 90 bars cost ~1.5 KB before gzip.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

WIDTH = 300
HEIGHT = 48


def _n(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def bar_chart(values: Sequence[Decimal | float | int], *, label: str) -> str:
    """Bars for ``values`` (one per day, oldest first); ``label`` becomes the accessible name."""
    count = len(values)
    peak = max((float(v) for v in values), default=0.0)
    parts = []
    if count and peak > 0:
        step = WIDTH / count
        gap = min(1.0, step * 0.2)
        for i, value in enumerate(values):
            height = float(value) / peak * (HEIGHT - 2)
            if height <= 0:
                continue
            height = max(height, 0.8)
            x = i * step
            parts.append(f"M{_n(x)} {HEIGHT}V{_n(HEIGHT - height)}h{_n(step - gap)}V{HEIGHT}z")
    path = f'<path d="{"".join(parts)}"/>' if parts else ""
    return (
        f'<svg class="bars" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>'
        f'<line x1="0" y1="{HEIGHT - 0.5}" x2="{WIDTH}" y2="{HEIGHT - 0.5}"/>{path}</svg>'
    )
