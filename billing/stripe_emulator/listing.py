"""Lists and search: Stripe's ``list`` pages (cursor) and ``search_result`` pages (token),
and the search query applied to customers or invoices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from billing.stripe_emulator.failures import StripeFailure
from billing.stripe_emulator.params import ParamError, as_int, parse_search_query
from billing.stripe_emulator.state import EmulatorState
from meterline.core import clock

Render = Callable[[dict[str, Any]], dict[str, Any]]

SEARCH_FIELDS = {
    "customers": {"email", "name", "phone"},
    "invoices": {"customer", "status", "number", "currency"},
}


def same(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _limit(params: dict[str, Any]) -> int:
    limit = as_int(params, "limit", 10)
    if not 1 <= limit <= 100:
        raise ParamError("Invalid limit: must be between 1 and 100", "limit")
    return limit


def paginate(
    objects: list[dict[str, Any]], params: dict[str, Any], url: str, render: Render
) -> dict:
    """A ``list`` page: ``limit`` objects after ``starting_after`` or before ``ending_before``."""
    limit = _limit(params)
    ids = [o["id"] for o in objects]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after:
        if after not in ids:
            raise StripeFailure(
                404, f"No such object: '{after}'", code="resource_missing", param="starting_after"
            )
        objects = objects[ids.index(after) + 1 :]
        page = objects[:limit]
    elif before:
        if before not in ids:
            raise StripeFailure(
                404, f"No such object: '{before}'", code="resource_missing", param="ending_before"
            )
        objects = objects[: ids.index(before)]
        page = objects[-limit:]
    else:
        page = objects[:limit]
    return {
        "object": "list",
        "data": [render(o) for o in page],
        "has_more": len(objects) > limit,
        "url": url,
    }


def search_page(
    objects: list[dict[str, Any]], params: dict[str, Any], url: str, render: Render
) -> dict:
    """A ``search_result`` page: ``limit`` objects from the ``page`` token (``page_<offset>``);
    ``total_count`` only when asked for with ``expand[]=total_count``, as Stripe."""
    limit = _limit(params)
    page_token = params.get("page") or ""
    start = 0
    if page_token:
        if not page_token.startswith("page_") or not page_token[5:].isdigit():
            raise ParamError(f"Invalid page token: {page_token}", "page")
        start = int(page_token[5:])
    chunk = objects[start : start + limit]
    more = len(objects) > start + limit
    page = {
        "object": "search_result",
        "data": [render(o) for o in chunk],
        "has_more": more,
        "next_page": f"page_{start + limit}" if more else None,
        "url": url,
    }
    if "total_count" in (params.get("expand") or []):
        page["total_count"] = len(objects)
    return page


def search(state: EmulatorState, kind: str, query: str) -> list[dict[str, Any]]:
    """The ``kind`` objects matching ``query``, newest first, that the index has caught up with."""
    joiner, clauses = parse_search_query(query, SEARCH_FIELDS[kind])

    def matches(obj: dict[str, Any]) -> bool:
        results = []
        for field, value in clauses:
            if field.startswith("metadata."):
                results.append(obj["metadata"].get(field[9:]) == value)
            else:
                results.append(str(obj.get(field) or "") == value)
        return all(results) if joiner == "AND" else any(results)

    # Stripe's search index lags behind writes: only objects older than the lag are found.
    indexed_before = clock.timestamp() - state.data["config"]["search_lag_seconds"]
    return [
        obj
        for obj in state.data[kind].values()
        if obj["created"] <= indexed_before and matches(obj)
    ][::-1]
