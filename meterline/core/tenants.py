"""Tenants and their plan history (``meterline.tenants`` / ``meterline.subscriptions``).

A plan change closes the current subscription at the change time and opens a new one, so
MRR and proration can be computed from the history. ``at`` dates a change in the past.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import NamedTuple

from sqlalchemy import Connection, Engine, text

from meterline.core import clock

TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class TenantError(ValueError):
    """A tenant command cannot be carried out; the message says why and what to do."""


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    email: str | None
    currency: str
    status: str
    plan_id: str | None
    plan_version: int | None
    plan_since: datetime | None
    created_at: datetime


def _as_instant(at: date | datetime | None) -> datetime:
    if at is None:
        return clock.now()
    if isinstance(at, datetime):
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    return datetime(at.year, at.month, at.day, tzinfo=UTC)


class PlanInForce(NamedTuple):
    plan_id: str
    plan_version: int


def _require_plan(conn, plan_id: str) -> tuple[str, int]:
    """The currency and latest version of ``plan_id`` (what a new subscription pays)."""
    row = conn.execute(
        text("select currency, plan_version from meterline.plan_latest where plan_id = :p"),
        {"p": plan_id},
    ).first()
    if row is None:
        plans = [
            r[0] for r in conn.execute(text("select plan_id from meterline.plan_latest order by 1"))
        ]
        hint = f"one of {', '.join(plans)}" if plans else "run `meterline catalog load` first"
        raise TenantError(f"unknown plan {plan_id!r}: use {hint}")
    return row[0], row[1]


def plan_in_force(
    conn: Connection, tenant_id: str, at: date | datetime | None = None
) -> PlanInForce | None:
    """The plan and plan version ``tenant_id`` pays at ``at`` (default: now), None when it has
    none (not yet created, or canceled). The rule itself is the view ``meterline.plan_in_force``."""
    row = conn.execute(
        text(
            "select plan_id, plan_version from meterline.plan_in_force "
            "where tenant_id = :t and in_force @> cast(:at as timestamptz)"
        ),
        {"t": tenant_id, "at": _as_instant(at)},
    ).first()
    return PlanInForce(row.plan_id, row.plan_version) if row else None


def create_tenant(
    engine: Engine,
    tenant_id: str,
    plan_id: str,
    *,
    name: str | None = None,
    email: str | None = None,
    currency: str | None = None,
    at: date | datetime | None = None,
) -> None:
    if not TENANT_ID.match(tenant_id):
        raise TenantError(
            f"tenant id {tenant_id!r} is invalid: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    if email is not None and not EMAIL.match(email):
        raise TenantError(f"--email {email!r} is not an email address")
    since = _as_instant(at)
    with engine.begin() as conn:
        plan_currency, version = _require_plan(conn, plan_id)
        currency = (currency or plan_currency).upper()
        if currency != plan_currency.strip():
            raise TenantError(
                f"--currency {currency} differs from plan {plan_id!r}'s currency {plan_currency}; "
                "choose a plan priced in that currency"
            )
        inserted = conn.execute(
            text(
                """
                insert into meterline.tenants (tenant_id, name, email, currency, created_at)
                values (:id, :name, :email, :currency, :at)
                on conflict (tenant_id) do nothing
                returning tenant_id
                """
            ),
            {
                "id": tenant_id,
                "name": name or tenant_id,
                "email": email,
                "currency": currency,
                "at": since,
            },
        ).first()
        if inserted is None:
            raise TenantError(
                f"tenant {tenant_id!r} already exists: use `meterline tenants set-plan` to change its plan"
            )
        _open_term(conn, tenant_id, plan_id, version, since)


def _open_term(conn: Connection, tenant_id: str, plan_id: str, version: int, since) -> None:
    conn.execute(
        text(
            "insert into meterline.subscriptions (tenant_id, plan_id, plan_version, effective_from) "
            "values (:id, :plan, :v, :at)"
        ),
        {"id": tenant_id, "plan": plan_id, "v": version, "at": since},
    )


def set_plan(
    engine: Engine, tenant_id: str, plan_id: str, *, at: date | datetime | None = None
) -> str:
    """Move a tenant to ``plan_id`` from ``at``; returns the previous plan."""
    since = _as_instant(at)
    with engine.begin() as conn:
        _, version = _require_plan(conn, plan_id)
        current = conn.execute(
            text(
                """
                select s.subscription_id, s.plan_id, s.effective_from, t.status
                from meterline.tenants t
                left join meterline.subscriptions s
                  on s.tenant_id = t.tenant_id and s.effective_to is null
                where t.tenant_id = :id
                for update of t
                """
            ),
            {"id": tenant_id},
        ).first()
        if current is None:
            raise TenantError(
                f"unknown tenant {tenant_id!r}: create it with `meterline tenants create`"
            )
        previous = current.plan_id
        if current.subscription_id is not None:
            if current.plan_id == plan_id:
                raise TenantError(
                    f"tenant {tenant_id!r} is already on plan {plan_id!r}: to move it to a newer "
                    f"version use `meterline plans migrate {plan_id} --to-version N --at DATE`"
                )
            if since <= current.effective_from:
                raise TenantError(
                    f"--at {since:%Y-%m-%d} must be after the current plan's start "
                    f"({current.effective_from:%Y-%m-%d})"
                )
            conn.execute(
                text(
                    "update meterline.subscriptions set effective_to = :at where subscription_id = :s"
                ),
                {"at": since, "s": current.subscription_id},
            )
        _open_term(conn, tenant_id, plan_id, version, since)
        conn.execute(
            text(
                "update meterline.tenants set status = 'active', canceled_at = null where tenant_id = :id"
            ),
            {"id": tenant_id},
        )
    return previous


def cancel_tenant(engine: Engine, tenant_id: str, *, at: date | datetime | None = None) -> None:
    since = _as_instant(at)
    with engine.begin() as conn:
        current = conn.execute(
            text(
                """
                select s.subscription_id, s.effective_from from meterline.tenants t
                left join meterline.subscriptions s
                  on s.tenant_id = t.tenant_id and s.effective_to is null
                where t.tenant_id = :id
                """
            ),
            {"id": tenant_id},
        ).first()
        if current is None:
            raise TenantError(f"unknown tenant {tenant_id!r}")
        if current.subscription_id is None:
            raise TenantError(f"tenant {tenant_id!r} is already canceled")
        if since <= current.effective_from:
            raise TenantError(
                f"--at must be after the current plan's start ({current.effective_from:%Y-%m-%d})"
            )
        conn.execute(
            text(
                "update meterline.subscriptions set effective_to = :at where subscription_id = :s"
            ),
            {"at": since, "s": current.subscription_id},
        )
        conn.execute(
            text(
                "update meterline.tenants set status = 'canceled', canceled_at = :at where tenant_id = :id"
            ),
            {"id": tenant_id, "at": since},
        )


def list_tenants(engine: Engine) -> list[Tenant]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                select t.tenant_id, t.name, t.email, t.currency, t.status,
                       s.plan_id, s.plan_version, s.effective_from as plan_since, t.created_at
                from meterline.tenants t
                left join meterline.subscriptions s
                  on s.tenant_id = t.tenant_id and s.effective_to is null
                order by t.tenant_id
                """
            )
        )
        return [Tenant(**row._mapping) for row in rows]


def issue_api_key(engine: Engine, tenant_id: str) -> str:
    """A new API key for a tenant (the secret; shown once, only its hash is stored).
    Keys live in :mod:`meterline.core.api_keys`; this is the short form callers use."""
    from meterline.core.api_keys import issue_key

    return issue_key(engine, tenant_id).key
