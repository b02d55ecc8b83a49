"""Threshold evaluation, routing, the sensor cursor and message text (no services)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alerts.context import AlertContext
from alerts.messages import build_notification, run_failure_notification
from alerts.thresholds import ADMIN_EMAIL, EMAIL, REDIS, WEBHOOK, UsageRow, evaluate, route
from meterline.core import periods


def row(quantity, limit="1000", tenant="acme", meter="api_calls") -> UsageRow:
    return UsageRow(tenant, meter, Decimal(quantity), Decimal(limit))


def test_threshold_is_reached_exactly_not_by_rounding():
    assert not row("799.999999").reached(80)
    assert row("800").reached(80)
    assert row("999.999999").percent == Decimal("99.99")  # never shown as 100 before it is
    assert not row("999.999999").reached(100)
    assert row("1050").percent == Decimal("105.00")


def test_evaluate_fires_each_threshold_once_and_groups_a_jump():
    period = "2026-11"
    fired: dict = {}
    assert evaluate([row("790")], fired, period=period) == []
    [c] = evaluate([row("805")], fired, period=period)
    assert (c.thresholds, c.highest, c.run_key) == ((80,), 80, "quota:acme:api_calls:80:2026-11")
    fired[("acme", "api_calls")] = 80
    assert evaluate([row("850")], fired, period=period) == []  # still 80: nothing new
    [c] = evaluate([row("970")], fired, period=period)  # jumps over 90 and 95 in one tick
    assert c.thresholds == (90, 95) and c.run_key == "quota:acme:api_calls:95:2026-11"
    fired[("acme", "api_calls")] = 95
    [c] = evaluate([row("1200")], fired, period=period)
    assert c.thresholds == (100,) and c.percent == Decimal("120.00")


def test_meters_without_a_positive_limit_never_alert():
    assert evaluate([row("5", limit="0")], {}, period="2026-11") == []


def test_custom_thresholds_are_validated():
    assert [
        c.thresholds for c in evaluate([row("600")], {}, period="2026-11", thresholds=[50, 75])
    ] == [(50,)]
    with pytest.raises(ValueError, match="between 1 and 1000"):
        evaluate([row("1")], {}, period="2026-11", thresholds=[0, 80])


def test_routing_as_users_expect():
    assert set(route(80)) == {EMAIL, REDIS}
    assert set(route(90)) == set(route(95)) == {EMAIL, WEBHOOK, REDIS}
    assert set(route(100)) == {EMAIL, WEBHOOK, ADMIN_EMAIL, REDIS}


def test_periods_are_utc_calendar_months_half_open():
    start, end = periods.month_bounds(periods.parse_month("2026-12"))
    assert (start.isoformat(), end.isoformat()) == (
        "2026-12-01T00:00:00+00:00",
        "2027-01-01T00:00:00+00:00",
    )
    with pytest.raises(ValueError, match="YYYY-MM"):
        periods.parse_month("2026-13")


def _ctx(**kw) -> AlertContext:
    base = dict(
        tenant_id="acme", meter="api_calls", tenant_name="Acme Inc", email="ops@acme.test",
        plan_id="free", plan_name="Free", currency="USD", unit="calls", hard_limit=True,
        upgrade_to="starter", upgrade_name="Starter", upgrade_limit=Decimal("50000"),
    )  # fmt: skip
    base.update(kw)
    return AlertContext(**base)


def test_message_names_tenant_meter_usage_limit_percent_and_upgrade():
    n = build_notification(
        _ctx(), period="2026-11", threshold=90, quantity=Decimal("912"),
        limit=Decimal("1000"), percent=Decimal("91.20"),
    )  # fmt: skip
    assert n.key == "quota-acme-api_calls-2026-11-90"
    assert "acme" in n.subject and "90 % alert" in n.subject
    for part in ("Acme Inc", "api_calls", "912 of 1,000 calls", "91.20 %", "Starter plan",
                 "50,000 calls", "refused (HTTP 402)"):  # fmt: skip
        assert part in n.text
    assert n.payload["threshold"] == 90 and n.payload["severity"] == "warning"
    body = n.json_body()
    assert b'"text":"[Meterline]' in body and b'"id":"quota-acme-api_calls-2026-11-90"' in body


def test_message_for_top_plan_and_soft_limit():
    n = build_notification(
        _ctx(plan_id="enterprise", plan_name="Enterprise", upgrade_to=None, upgrade_name=None,
             upgrade_limit=None, hard_limit=False),
        period="2026-11", threshold=100, quantity=Decimal("5000001.5"),
        limit=Decimal("5000000"), percent=Decimal("100.00"),
    )  # fmt: skip
    assert "contact sales" in n.text and "overage" in n.text and "5,000,001.5" in n.text
    assert n.payload["severity"] == "critical"


def test_run_failure_message():
    n = run_failure_notification("meterline_pipeline", "abcdef12-3456", "boom: disk full")
    assert "meterline_pipeline" in n.subject and "abcdef12" in n.subject
    assert "abcdef12-3456" in n.text and "boom: disk full" in n.text
    assert n.payload["type"] == "run.failure"


def test_sensor_cursor_roundtrip():
    from orchestration.defs.alerts.sensors import QuotaCursor

    cursor = QuotaCursor(period="2026-11", fired={("acme", "api_calls"): 90, ("b.c", "x"): 100})
    again = QuotaCursor.parse(cursor.dumps())
    assert again == cursor
    assert QuotaCursor.parse(None) == QuotaCursor()
