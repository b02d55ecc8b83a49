"""Usage, rollups, quota alerts, MRR, invoices and reconciliation at awkward instants.

The clock is frozen at a year end, a leap day, the last second of a 31-day month, the first
second of a month and the end of a 28-day February. At each, a small world goes through the
whole path (history import, live recording, load, dbt, alerts, invoicing, reconciliation) and
every date rule must name the right months: the open month is the clock's, the billed month is
the last closed one past its grace period, MRR runs up to the open month.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from meterline.core import periods
from tests.instants import PARAMS, frozen_at

GRACE = 72


def _event(eid: str, tenant: str, meter: str, value, at: datetime, user: str = "u1") -> dict:
    return {
        "id": eid,
        "tenant_id": tenant,
        "meter": meter,
        "value": value,
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "dimensions": {"user_id": user},
    }


@pytest.mark.parametrize("instant", **PARAMS)
def test_every_date_rule_names_the_right_month(instant, db, redis_client, test_services, tmp_path):
    from billing.invoicing import create_invoices
    from billing.reconciliation import reconcile
    from billing.stripe_client import make_stripe_client
    from ingestion.importer import import_events
    from ingestion.loader import load_stream
    from ingestion.recorder import UsageRecorder
    from meterline.core import tenants
    from meterline.core.dbt_runner import dbt_build
    from orchestration.defs.alerts.sensors import evaluate_quota_tick

    this_month = periods.month_start(instant)
    billed = periods.last_billable_month(instant, GRACE)
    history = periods.months_between(periods.add_months(this_month, -3), billed)
    prefix = test_services.redis_prefix

    with frozen_at(instant):
        # payg since long ago; "gamma" on free (hard 1,000 api_calls) to cross alert thresholds
        tenants.create_tenant(db, "acme", "payg", at=periods.add_months(this_month, -4))
        tenants.create_tenant(db, "gamma", "free", at=periods.add_months(this_month, -4))
        # a plan change in the middle of the last billed month: starter -> pro
        tenants.create_tenant(db, "beta", "starter", at=periods.add_months(this_month, -4))
        tenants.set_plan(db, "beta", "pro", at=periods.instant(billed) + timedelta(days=10))

        # History: 20,000 api_calls per closed month for acme, imported.
        lines = [
            json.dumps(
                _event(
                    f"h-{m:%Y%m}-{t}",
                    t,
                    "api_calls",
                    20_000,
                    periods.instant(m) + timedelta(hours=5),
                )
            )
            for m in history
            for t in ("acme", "beta")
        ]
        path = tmp_path / "history.jsonl"
        path.write_text("\n".join(lines) + "\n")
        stats = import_events(path, redis_client, db, prefix=prefix)
        assert stats.rejected == 0

        # Live: this month so far (at the first second of a month: the instant itself).
        live_at = max(periods.instant(this_month), instant - timedelta(hours=1))
        recorder = UsageRecorder(redis_client, db, prefix=prefix)
        live = [
            _event("l-acme-1", "acme", "api_calls", 1234, live_at),
            _event("l-gamma-1", "gamma", "api_calls", 960, live_at),  # 96 % of the free limit
            _event("l-gamma-2", "gamma", "active_users", 1, live_at, "u9"),
        ]
        result = recorder.record(live, now=instant)
        assert (result.accepted, result.rejected) == (3, 0)
        load_stream(redis_client, db, prefix=prefix)

        dbt_build(test_services.database_url, target_path=tmp_path / "dbt")

        with db.connect() as conn:
            monthly = {
                (r.tenant_id, r.month): r.quantity
                for r in conn.execute(
                    text(
                        "select tenant_id, month, quantity from analytics.fct_usage_monthly "
                        "where meter = 'api_calls'"
                    )
                )
            }
            daily = conn.execute(
                text(
                    "select day, quantity from analytics.fct_usage_daily "
                    "where tenant_id = 'acme' and meter = 'api_calls' and day >= :m"
                ),
                {"m": this_month},
            ).all()
            overview_month = (
                conn.execute(
                    text(
                        "select distinct month from analytics.fct_quota_status where tenant_id = 'gamma'"
                    )
                )
                .scalars()
                .all()
            )
            mrr_months = conn.execute(
                text("select min(month), max(month) from analytics.fct_mrr")
            ).one()
            beta_mrr = dict(
                conn.execute(
                    text("select month, mrr from analytics.fct_mrr where tenant_id = 'beta'")
                ).all()
            )
            open_invoice = conn.execute(
                text(
                    "select month, is_closed from analytics.fct_invoices "
                    "where tenant_id = 'acme' and month = :m"
                ),
                {"m": this_month},
            ).one_or_none()

        for month in history:
            assert monthly[("acme", month)] == Decimal(20_000), month
        assert monthly[("acme", this_month)] == Decimal(1234)
        assert daily == [(live_at.date(), Decimal(1234))]
        assert this_month in overview_month
        assert mrr_months == (periods.add_months(this_month, -4), this_month)
        assert beta_mrr[this_month] == 9900  # pro, the plan in force at the end of the month
        assert open_invoice is None or open_invoice.is_closed is False

        # What tenants see: the live usage of the clock's month, and its trend up to today.
        from fastapi.testclient import TestClient

        from meterline.server import create_app

        key = tenants.issue_api_key(db, "acme")
        app = create_app(db, redis_client, prefix=prefix, admin_key="calendar-admin-key")
        with TestClient(app) as http:
            usage = http.get("/v1/usage", headers={"Authorization": f"Bearer {key}"}).json()
            summary = http.get(
                "/v1/dashboard/summary", headers={"Authorization": f"Bearer {key}"}
            ).json()
        assert usage["month"] == f"{instant:%Y-%m}"
        calls = {m["meter"]: m for m in usage["meters"]}["api_calls"]
        assert Decimal(str(calls["quantity"])) == Decimal(1234)
        assert summary["tenant_id"] == "acme" and summary["month"] == f"{instant:%Y-%m}"

        # Alerts: the thresholds crossed this month, keyed by this month.
        tick = evaluate_quota_tick(db, redis_client, prefix=prefix, cursor=None, now=instant)
        keys = sorted(r.run_key for r in tick.run_requests)
        assert keys and all(k.endswith(f":{instant:%Y-%m}") for k in keys), keys
        assert ("gamma", "api_calls", "95") in {tuple(k.split(":")[1:4]) for k in keys}

        # Billing: the last closed month past its grace period, once; reconciliation matches.
        client = make_stripe_client("sk_test_calendar", test_services.stripe_api_base, timeout=10)
        cutoff = periods.usage_cutoff(billed, GRACE)
        assert cutoff <= instant < periods.usage_cutoff(periods.add_months(billed, 1), GRACE)
        invoices = create_invoices(db, client, billed, usage_cutoff=cutoff)
        by_tenant = {i.tenant_id: i for i in invoices.invoices}
        # acme payg: 20,000 calls = 10,000 free + 10,000 x $0.001 = $10.00
        assert by_tenant["acme"].amount_due == 1000
        assert "gamma" not in by_tenant or by_tenant["gamma"].amount_due == 0
        again = create_invoices(db, client, billed, usage_cutoff=cutoff)
        assert again.count("created") == 0
        rec = reconcile(db, client, billed, reports_dir=tmp_path / "reports")
        assert not rec.has_unexplained_differences, rec.markdown()
        assert rec.counts()["matched"] >= 2
