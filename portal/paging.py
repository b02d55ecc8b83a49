"""One page of a list, as every paginated portal endpoint returns it."""

from __future__ import annotations


def page_of(items: list, page: int, per_page: int) -> dict:
    """``{"items", "page", "per_page", "total", "pages"}`` (at least one page, even empty)."""
    total = len(items)
    pages = max(1, -(-total // per_page))
    start = (page - 1) * per_page
    return {
        "items": items[start : start + per_page],
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": pages,
    }
