"""Parsing of the date and month options the commands take."""

from __future__ import annotations

from datetime import date, datetime

import typer


def parse_day(value: str | None, option: str = "--at") -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date: use YYYY-MM-DD", param_hint=option
        ) from None


def parse_month(value: str) -> date:
    try:
        parsed = datetime.strptime(value, "%Y-%m")
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a month: use YYYY-MM", param_hint="--month"
        ) from None
    return parsed.date().replace(day=1)
