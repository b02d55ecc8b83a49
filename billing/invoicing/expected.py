"""What a tenant owes for a month: the rated lines of ``analytics.fct_invoice_lines``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from billing.invoicing.errors import InvoicingError
from billing.rating import describe_usage

LINES_TABLE = "analytics.fct_invoice_lines"
# in a line key, what names a usage segment of a month with a plan change: 'usage:<meter>@<plan>.v<n>'
SEGMENT_MARK = "@"


@dataclass(frozen=True)
class ExpectedLine:
    line_key: str
    line_type: str
    meter: str | None
    plan_id: str | None
    quantity: Decimal
    amount: int
    currency: str
    description: str


def set_utc(conn: Connection) -> None:
    conn.execute(text("set time zone 'UTC'"))


def require_lines_table(conn: Connection) -> None:
    if conn.execute(text("select to_regclass(:t)"), {"t": LINES_TABLE}).scalar() is None:
        raise InvoicingError(
            f"{LINES_TABLE} does not exist: build the dbt marts first "
            "(`meterline pipeline run` or `dbt build`), then invoice"
        )


def meter_units(conn: Connection) -> dict[str, str]:
    """Each meter's unit as the catalog names it (``calls``, ``GB``...)."""
    return dict(conn.execute(text("select meter, unit from meterline.meters")).all())


def read_expected_lines(
    conn: Connection, period: date, tenants: Iterable[str] | None = None
) -> dict[str, list[ExpectedLine]]:
    """The month's rated lines per tenant from ``analytics.fct_invoice_lines`` (amount != 0)."""
    require_lines_table(conn)
    set_utc(conn)
    units = meter_units(conn)
    plan_names = dict(conn.execute(text("select plan_id, name from meterline.plan_latest")).all())
    rows = conn.execute(
        text(
            f"""
            select tenant_id, line_key, line_type, meter, plan_id, quantity, amount,
                   upper(trim(currency)) as currency, description
            from {LINES_TABLE}
            where month::date = :period
            order by tenant_id, line_type <> 'base_fee', line_key
            """
        ),
        {"period": period},
    ).all()
    wanted = set(tenants) if tenants is not None else None
    result: dict[str, list[ExpectedLine]] = defaultdict(list)
    for row in rows:
        if wanted is not None and row.tenant_id not in wanted:
            continue
        amount = int(row.amount)
        if amount == 0:
            continue
        quantity = Decimal(row.quantity or 0)
        result[row.tenant_id].append(
            ExpectedLine(
                line_key=row.line_key,
                line_type=row.line_type,
                meter=row.meter,
                plan_id=row.plan_id,
                quantity=quantity,
                amount=amount,
                currency=row.currency,
                description=_description(row, quantity, units, plan_names),
            )
        )
    return dict(result)


def _description(
    row: Any, quantity: Decimal, units: dict[str, str], plan_names: dict[str, str]
) -> str:
    if row.meter and row.line_type != "base_fee":
        if SEGMENT_MARK in row.line_key:  # a usage segment: the mart's text names its period
            return row.description
        return describe_usage(row.meter, quantity, units.get(row.meter))
    if row.line_type == "base_fee" and row.plan_id in plan_names:
        return row.description or f"{plan_names[row.plan_id]} plan base fee"
    return row.description or row.line_key


def mart_lines_by_key(conn: Connection, tenant_id: str, period: date) -> dict[str, Any]:
    """The tenant's mart rows of ``period`` as they are *now*, by ``line_key``."""
    rows = conn.execute(
        text(
            f"""
            select line_key, line_type, meter, quantity, amount, upper(trim(currency)) as currency
            from {LINES_TABLE} where tenant_id = :t and month::date = :p
            """
        ),
        {"t": tenant_id, "p": period},
    ).all()
    return {r.line_key: r for r in rows}
