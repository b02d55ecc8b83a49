"""Moving the tenants of a plan to another version of it: explicit and dated.

A catalog change writes a new plan version and moves nobody. ``migrate_plan`` closes, at the
instant ``at``, every open subscription of the plan on another version and opens one on
``to_version``; the month of ``at`` is then prorated between the two versions by the usual
base-fee proration, and usage is rated on the version in force at the month's end. With
``dry_run`` nothing is written and the money effect per tenant is returned all the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, text

from billing.catalog import Plan
from billing.catalog_store import read_plan_versions
from billing.rating import rate_meter


class PlanMigrationError(ValueError):
    """The migration cannot be carried out; the message says why and what to do."""


@dataclass(frozen=True)
class TenantMigration:
    tenant_id: str
    from_version: int
    to_version: int
    currency: str
    base_fee_old: Decimal
    base_fee_new: Decimal
    usage_old: Decimal | None  # the month of `at`'s usage so far, rated on each version
    usage_new: Decimal | None  # (None when the usage marts are not built)


def _instant(at: date | datetime) -> datetime:
    if isinstance(at, datetime):
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    return datetime(at.year, at.month, at.day, tzinfo=UTC)


def migrate_plan(
    engine: Engine,
    plan_id: str,
    to_version: int,
    at: date | datetime,
    *,
    tenants: Iterable[str] | None = None,
    dry_run: bool = False,
) -> list[TenantMigration]:
    """Move every tenant paying another version of ``plan_id`` (or only ``tenants``) to
    ``to_version`` from ``at``; returns the tenants moved (or that would be, with ``dry_run``)
    and the money effect."""
    since = _instant(at)
    versions = read_plan_versions(engine)
    target = versions.get((plan_id, to_version))
    if target is None:
        known = sorted(v for p, v in versions if p == plan_id)
        hint = f"versions {', '.join(map(str, known))}" if known else "no such plan"
        raise PlanMigrationError(
            f"--to-version {to_version}: plan {plan_id!r} has {hint} "
            "(a changed catalog.yaml makes a new one with `meterline catalog load`)"
        )
    with engine.begin() as conn:
        terms = conn.execute(
            text(
                """
                select subscription_id, tenant_id, plan_version, effective_from
                from meterline.subscriptions
                where plan_id = :p and plan_version <> :v and effective_to is null
                  and (cast(:only as text[]) is null or tenant_id = any(cast(:only as text[])))
                order by tenant_id
                for update
                """
            ),
            {"p": plan_id, "v": to_version, "only": None if tenants is None else list(tenants)},
        ).all()
        missing = sorted(set(tenants or ()) - {t.tenant_id for t in terms})
        if missing:
            raise PlanMigrationError(
                f"--tenant {', '.join(missing)}: not subscribed to plan {plan_id!r} on a version "
                f"other than {to_version} (see `meterline tenants list`)"
            )
        _require_same_currency(plan_id, {t.plan_version for t in terms}, to_version, versions)
        late = [t.tenant_id for t in terms if t.effective_from >= since]
        if late:
            raise PlanMigrationError(
                f"--at {since:%Y-%m-%d %H:%M} is not after the start of the current term of "
                f"{', '.join(late)}: choose a later --at"
            )
        usage = _month_usage(conn, [t.tenant_id for t in terms], since)
        result = [
            _effect(t.tenant_id, versions[(plan_id, t.plan_version)], t.plan_version, target,
                    to_version, None if usage is None else usage[t.tenant_id])
            for t in terms
        ]  # fmt: skip
        if not dry_run:
            for term in terms:
                _move(conn, term, plan_id, to_version, since)
    return result


def _require_same_currency(
    plan_id: str, from_versions: set[int], to_version: int, versions: dict[tuple[str, int], Plan]
) -> None:
    target = versions[(plan_id, to_version)].currency
    for version in sorted(from_versions):
        if versions[(plan_id, version)].currency != target:
            raise PlanMigrationError(
                f"--to-version {to_version} prices plan {plan_id!r} in {target}, version "
                f"{version} in {versions[(plan_id, version)].currency}: a tenant keeps its "
                "currency; put the new prices in a plan of their own and use `tenants set-plan`"
            )


def _move(conn: Connection, term, plan_id: str, to_version: int, since: datetime) -> None:
    conn.execute(
        text("update meterline.subscriptions set effective_to = :at where subscription_id = :s"),
        {"at": since, "s": term.subscription_id},
    )
    conn.execute(
        text(
            "insert into meterline.subscriptions (tenant_id, plan_id, plan_version, effective_from) "
            "values (:t, :p, :v, :at)"
        ),
        {"t": term.tenant_id, "p": plan_id, "v": to_version, "at": since},
    )


def _effect(
    tenant_id: str,
    old: Plan,
    old_version: int,
    new: Plan,
    new_version: int,
    usage: dict[str, Decimal] | None,
) -> TenantMigration:
    def rated(plan: Plan) -> Decimal | None:
        if usage is None:
            return None
        return sum(
            (rate_meter(plan.meters[m], q) for m, q in usage.items() if m in plan.meters),
            Decimal(0),
        )

    return TenantMigration(
        tenant_id, old_version, new_version, new.currency,
        old.base_fee, new.base_fee, rated(old), rated(new),
    )  # fmt: skip


def _month_usage(
    conn: Connection, tenants: list[str], at: datetime
) -> dict[str, dict[str, Decimal]] | None:
    """Usage per tenant and meter in the month of ``at`` (``analytics.fct_usage_monthly``),
    None when the marts are not built yet."""
    if conn.execute(text("select to_regclass('analytics.fct_usage_monthly')")).scalar() is None:
        return None
    usage: dict[str, dict[str, Decimal]] = {t: {} for t in tenants}
    rows = conn.execute(
        text(
            "select tenant_id, meter, quantity from analytics.fct_usage_monthly "
            "where month = :m and tenant_id = any(:t)"
        ),
        {"m": date(at.year, at.month, 1), "t": tenants},
    )
    for r in rows:
        usage[r.tenant_id][r.meter] = Decimal(r.quantity)
    return usage
