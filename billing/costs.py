"""Infrastructure costs per month and cost pool, the input of cost allocation.

CSV columns: ``month,cost_pool,driver_meter,amount`` (``month`` as YYYY-MM; an empty
``driver_meter`` means "allocate by revenue share"). The whole file is validated first; an
error names the line and the field, and nothing is written. Re-importing a month and pool
replaces it, so a corrected file can simply be imported again.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import Engine, text

from meterline.core import periods

COLUMNS = ("month", "cost_pool", "driver_meter", "amount")


class CostImportError(ValueError):
    pass


def _month(value: str, where: str) -> date:
    """``YYYY-MM`` (or the month's first day, ``YYYY-MM-01``, as spreadsheets write it)."""
    text = value.strip()
    if len(text) == 10 and text.endswith("-01"):
        text = text[:7]
    try:
        return periods.parse_month(text)
    except ValueError:
        raise CostImportError(f"{where}.month: {value!r} is not a month, use YYYY-MM") from None


def parse_costs(path: Path, known_meters: set[str]) -> list[dict]:
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise CostImportError(f"cannot read {path}: {exc.strerror}") from None
    rows: list[dict] = []
    seen: set[tuple[date, str]] = set()
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CostImportError(
                f"{path.name}: missing column(s) {', '.join(missing)}; expected header {','.join(COLUMNS)}"
            )
        for line_no, raw in enumerate(reader, start=2):
            where = f"{path.name} line {line_no}"
            month = _month(raw["month"] or "", where)
            pool = (raw["cost_pool"] or "").strip()
            if not pool:
                raise CostImportError(f"{where}.cost_pool: must not be empty")
            driver = (raw["driver_meter"] or "").strip() or None
            if driver is not None and driver not in known_meters:
                raise CostImportError(
                    f"{where}.driver_meter: unknown meter {driver!r} (known: {', '.join(sorted(known_meters))}; "
                    "leave empty to allocate by revenue)"
                )
            try:
                amount = Decimal((raw["amount"] or "").strip())
            except InvalidOperation:
                raise CostImportError(
                    f"{where}.amount: {raw['amount']!r} is not a number"
                ) from None
            if not amount.is_finite() or amount < 0:
                raise CostImportError(
                    f"{where}.amount: must be a finite number >= 0, got {raw['amount']!r}"
                )
            if (month, pool) in seen:
                raise CostImportError(
                    f"{where}: cost pool {pool!r} appears twice for {month:%Y-%m}"
                )
            seen.add((month, pool))
            rows.append({"month": month, "pool": pool, "driver": driver, "amount": amount})
    return rows


def import_costs(engine: Engine, path: Path) -> int:
    with engine.connect() as conn:
        meters = {r[0] for r in conn.execute(text("select meter from meterline.meters"))}
    rows = parse_costs(Path(path), meters)
    with engine.begin() as conn:
        for row in rows:
            conn.execute(
                text(
                    """
                    insert into raw.infra_costs (month, cost_pool, driver_meter, amount)
                    values (:month, :pool, :driver, :amount)
                    on conflict (month, cost_pool) do update set
                        driver_meter = excluded.driver_meter, amount = excluded.amount,
                        imported_at = now()
                    """
                ),
                row,
            )
    return len(rows)
