"""Billing through Dagster: two monthly partitions backfilled in one run, re-run safely."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import stripe
from sqlalchemy import text

from meterline.core.installation import install_id
from meterline.core.periods import add_months


def _months_back(n: int) -> date:
    return add_months(date.today().replace(day=1), -n)


def _insert_usage(db, tenant: str, month: date, api_calls: int) -> None:
    with db.begin() as conn:
        conn.execute(
            text(
                """
                insert into raw.usage_events (tenant_id, event_id, meter, value, occurred_at, received_at)
                values (:t, :id, 'api_calls', :v, :at, :at)
                """
            ),
            {
                "t": tenant, "id": f"{tenant}-{month:%Y%m}", "v": api_calls,
                "at": datetime(month.year, month.month, 10, tzinfo=UTC),
            },
        )  # fmt: skip


def _range_tags(first: date, last: date) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def test_two_billing_months_backfill_in_one_run_and_rerun_is_safe(db, test_services):
    from meterline.cli.pipeline import load_definitions, run_job
    from meterline.core import tenants

    first, second = _months_back(3), _months_back(2)
    tenants.create_tenant(db, "umbrella", "payg", at=first - timedelta(days=40))
    tenants.create_tenant(db, "stark", "pro", at=first - timedelta(days=40))
    _insert_usage(
        db, "umbrella", first, 110_000
    )  # 10,000 free + 90,000 x $0.001 + 10,000 x $0.0005 = $95.00
    _insert_usage(db, "umbrella", second, 20_000)  # $10.00
    _insert_usage(db, "stark", first, 100)  # within the pro allowance: base fee only
    assert run_job("dbt_hourly").success

    job = load_definitions().resolve_job_def("monthly_billing")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, tags=_range_tags(first, second))
        assert result.success
        materialized = [
            e.event_specific_data.materialization.partition
            for e in result.get_asset_materialization_events()
            if e.event_specific_data.materialization.asset_key.path
            == ["billing", "stripe_invoices"]
        ]
        assert sorted(materialized) == [
            first.isoformat(),
            second.isoformat(),
        ]  # one run, two months

    with db.connect() as conn:
        invoices = conn.execute(
            text(
                "select tenant_id, period, amount_due from meterline.invoices order by period, tenant_id"
            )
        ).all()
        categories = (
            conn.execute(text("select distinct category from meterline.invoice_reconciliation"))
            .scalars()
            .all()
        )
    assert [(t, p, a) for t, p, a in invoices] == [
        ("stark", first, 9900), ("umbrella", first, 9500),
        ("stark", second, 9900), ("umbrella", second, 1000),
    ]  # fmt: skip
    assert categories == ["matched"]

    # A second backfill of the same range creates nothing new in Stripe.
    client = stripe.StripeClient(
        "sk_test_meterline_tests", base_addresses={"api": test_services.stripe_api_base}
    )
    periods = {f"{first:%Y-%m}", f"{second:%Y-%m}"}

    install = install_id(db)  # the emulator is shared by the whole run: count this install's

    def ours() -> list:
        invoices = client.v1.invoices.list(params={"limit": 100}).auto_paging_iter()
        tags = [i.metadata.to_dict() for i in invoices]
        return [
            t for t in tags
            if t.get("meterline_install") == install
            and t.get("meterline_tenant_id") in ("umbrella", "stark")
            and t.get("meterline_period") in periods
        ]  # fmt: skip

    assert len(ours()) == 4
    with dg.DagsterInstance.get() as instance:
        assert job.execute_in_process(instance=instance, tags=_range_tags(first, second)).success
    assert len(ours()) == 4
