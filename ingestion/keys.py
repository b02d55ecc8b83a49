"""Redis key layout. Every key starts with ``<prefix>:`` and every per-tenant key carries the
``{tenant}`` hash tag, so one tenant's keys live in one Redis Cluster slot and one Lua script
can touch them all.

Per tenant ``t`` (``B = <prefix>:{t}:``):

=============================  ==========================================================
``B plan``                     hash: cached plan history (the terms of meterline.plan_in_force
                               from a recent instant on, with limits and tenant status; TTL,
                               invalidated on a plan change; see ingestion/plans.py)
``B id:<event id>``            string: dedupe marker, ``SET NX EX <window>``
``B m:<YYYYMM>``               hash: month counters (``<meter>`` quantity in micro-units,
                               ``<meter>:n`` events, ``<meter>:r``/``:rn`` refused, ``:t``)
``B h:<YYYYMMDDHH>``           hash: hour counters, same fields
``B u:<meter>:<YYYYMM>``       HyperLogLog of the unique dimension (month)
``B hu:<meter>:<YYYYMMDDHH>``  HyperLogLog of the unique dimension (hour)
``B us:<meter>:<YYYYMM>``      set: exact members, only for unique meters with a hard limit
``B events``                   stream: accepted raw events, COPY-ready rows
``B rl``                       hash: HTTP request token bucket
``B eb``                       hash: event budget token bucket (spent by the record script)
=============================  ==========================================================

Global: ``<prefix>:streams`` (set of tenant ids that have a stream; a hint for the loader).
"""

from __future__ import annotations

GROUP = "loader"
MICRO = 1_000_000


def base(prefix: str, tenant_id: str) -> str:
    return f"{prefix}:{{{tenant_id}}}:"


def plan_key(prefix: str, tenant_id: str) -> str:
    return base(prefix, tenant_id) + "plan"


def stream_key(prefix: str, tenant_id: str) -> str:
    return base(prefix, tenant_id) + "events"


def month_key(prefix: str, tenant_id: str, month: str) -> str:
    return base(prefix, tenant_id) + "m:" + month


def hour_key(prefix: str, tenant_id: str, hour: str) -> str:
    return base(prefix, tenant_id) + "h:" + hour


def unique_month_key(prefix: str, tenant_id: str, meter: str, month: str) -> str:
    return base(prefix, tenant_id) + f"u:{meter}:{month}"


def unique_hour_key(prefix: str, tenant_id: str, meter: str, hour: str) -> str:
    return base(prefix, tenant_id) + f"hu:{meter}:{hour}"


def rate_key(prefix: str, tenant_id: str) -> str:
    return base(prefix, tenant_id) + "rl"


def streams_registry(prefix: str) -> str:
    return f"{prefix}:streams"
