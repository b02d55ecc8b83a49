"""Aggregation semantics of a meter (``meterline.meters.aggregation``) as SQL over raw events.

The one Python-side definition; ``dbt_project/macros/aggregation.sql`` (``aggregate_events``)
is the same rule for the dbt marts. Over the events of a period:

- ``sum``: ``sum(value)``; ``count``: ``count(*)``; ``max``: ``max(value)``
- ``last``: the value of the latest event (``occurred_at``, then ``event_id``, descending)
- ``unique_count``: the number of distinct ``dimensions ->> unique_dimension``

The Redis engine keeps the same numbers live (``ingestion/lua``); alerts' Postgres fallback
and the Redis/Postgres drift check build their queries from ``aggregated_quantity_sql``.
"""

from __future__ import annotations

from collections.abc import Sequence

AGGREGATIONS = ("sum", "count", "max", "last", "unique_count")

_EXPRESSIONS = {
    "sum": "sum({e}.value)",
    "count": "count(*)::numeric",
    "max": "max({e}.value)",
    "last": "(array_agg({e}.value order by {e}.occurred_at desc, {e}.event_id desc))[1]",
    "unique_count": "count(distinct {e}.dimensions ->> {m}.unique_dimension)::numeric",
}


def aggregated_quantity_sql(
    *, events: str = "e", meters: str = "m", kinds: Sequence[str] = AGGREGATIONS
) -> str:
    """``case <meters>.aggregation when 'sum' then sum(<events>.value) ... end`` for ``kinds``.

    ``events`` and ``meters`` are the aliases of ``raw.usage_events`` and ``meterline.meters``
    in the caller's query, which groups by ``<meters>.aggregation`` (and
    ``<meters>.unique_dimension`` when ``unique_count`` is among ``kinds``).
    """
    whens = "".join(
        f"\n    when '{kind}' then {_EXPRESSIONS[kind].format(e=events, m=meters)}"
        for kind in kinds
    )
    return f"case {meters}.aggregation{whens}\nend"
