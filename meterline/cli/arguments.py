"""Parsing of the date and month options the commands take."""

from __future__ import annotations

from datetime import date

import typer

from meterline.core import periods


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
        return periods.parse_month(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--month") from None
