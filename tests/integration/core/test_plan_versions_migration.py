"""Upgrading a database in use (tenants, plan changes, usage, finalized invoices) from
0005_usage_dead_letters to plan versions changes no amount: the invoices stay as they were,
the marts rebuilt on the upgraded schema rate every past month exactly as invoiced (so no
prior-period adjustment appears) and MRR history is what it was. That includes bolt's August,
invoiced with its usage on the plan in force at month end: the upgrade to usage segments
(0010_usage_segments) applies them only from the month after the last invoice."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from billing.invoicing.adjustments import compute_adjustments
from meterline.core.dbt_runner import dbt_build
from tests.integration.core.test_migrations import empty_database  # noqa: F401  (fixture)

PREVIOUS_HEAD = "0005_usage_dead_letters"
AUG, SEP, OCT = date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1)

# What the pre-versioning schema holds: two plans, two tenants (bolt moved from starter to pro
# on 16 August), 600,000 API calls a month each, and the finalized invoices of August and
# September. Amounts: pro $99 + 100,000 calls above the included 500,000 at $0.001 = $100;
# bolt's August base fee is $29 x 15/31 + $99 x 16/31 = $65.129 -> 6513 cents.
OLD_SCHEMA_ROWS = """
insert into meterline.meters (meter, aggregation, unit) values ('api_calls', 'sum', 'calls');
insert into meterline.plans (plan_id, name, base_fee, currency, upgrade_to) values
    ('starter', 'Starter', 29, 'USD', 'pro'), ('pro', 'Pro', 99, 'USD', null);
insert into meterline.plan_meters
    (plan_id, meter, limit_quantity, hard_limit, pricing_model, included_quantity) values
    ('starter', 'api_calls', 50000, true, 'none', 0),
    ('pro', 'api_calls', 500000, false, 'graduated', 500000);
insert into meterline.price_tiers (plan_id, meter, tier_index, up_to, unit_price, flat_fee)
    values ('pro', 'api_calls', 0, null, 0.001, 0);
insert into meterline.tenants (tenant_id, name, currency, created_at) values
    ('acme', 'Acme', 'USD', '2026-07-01T00:00Z'), ('bolt', 'Bolt', 'USD', '2026-07-01T00:00Z');
insert into meterline.subscriptions (tenant_id, plan_id, effective_from, effective_to) values
    ('acme', 'pro', '2026-07-01T00:00Z', null),
    ('bolt', 'starter', '2026-07-01T00:00Z', '2026-08-16T00:00Z'),
    ('bolt', 'pro', '2026-08-16T00:00Z', null);
insert into raw.usage_events (tenant_id, event_id, meter, value, occurred_at, received_at)
select t, t || m, 'api_calls', 600000, m::timestamptz, m::timestamptz
from unnest(array['acme', 'bolt']) as t,
     unnest(array['2026-08-10T00:00Z', '2026-09-10T00:00Z']) as m;
insert into meterline.invoices
    (tenant_id, period, stripe_invoice_id, status, currency, amount_due, finalized_at) values
    ('acme', '2026-08-01', 'in_a8', 'paid', 'USD', 19900, '2026-09-04T00:00Z'),
    ('acme', '2026-09-01', 'in_a9', 'open', 'USD', 19900, '2026-10-04T00:00Z'),
    ('bolt', '2026-08-01', 'in_b8', 'paid', 'USD', 16513, '2026-09-04T00:00Z'),
    ('bolt', '2026-09-01', 'in_b9', 'open', 'USD', 19900, '2026-10-04T00:00Z');
insert into meterline.invoice_lines
    (tenant_id, period, line_key, meter, description, quantity, amount, currency) values
    ('acme', '2026-08-01', 'base_fee', null, 'Pro plan base fee', 1, 9900, 'USD'),
    ('acme', '2026-08-01', 'usage:api_calls', 'api_calls', 'API calls', 600000, 10000, 'USD'),
    ('acme', '2026-09-01', 'base_fee', null, 'Pro plan base fee', 1, 9900, 'USD'),
    ('acme', '2026-09-01', 'usage:api_calls', 'api_calls', 'API calls', 600000, 10000, 'USD'),
    ('bolt', '2026-08-01', 'base_fee', null, 'Base fee, prorated', 1, 6513, 'USD'),
    ('bolt', '2026-08-01', 'usage:api_calls', 'api_calls', 'API calls', 600000, 10000, 'USD'),
    ('bolt', '2026-09-01', 'base_fee', null, 'Pro plan base fee', 1, 9900, 'USD'),
    ('bolt', '2026-09-01', 'usage:api_calls', 'api_calls', 'API calls', 600000, 10000, 'USD');
"""

MONEY = {
    "invoices": "select tenant_id, period, status, amount_due from meterline.invoices order by 1, 2",
    "lines": "select tenant_id, period, line_key, amount from meterline.invoice_lines "
    "order by 1, 2, 3",
    "plans": "select plan_id, name, base_fee, currency from meterline.plans order by 1",
    "tiers": "select plan_id, meter, tier_index, up_to, unit_price from meterline.price_tiers",
    "terms": "select tenant_id, plan_id, effective_from, effective_to "
    "from meterline.subscriptions order by 1, 3",
}


def money(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {k: [tuple(r) for r in conn.execute(text(q))] for k, q in MONEY.items()}


def test_upgrading_a_database_in_use_to_plan_versions_changes_no_amount(
    empty_database,  # noqa: F811
    tmp_path,
):
    from meterline.core.db import downgrade, get_engine, migrate

    migrate(empty_database, PREVIOUS_HEAD)
    engine = get_engine(empty_database)
    with engine.begin() as conn:
        conn.execute(text(OLD_SCHEMA_ROWS))
    before = money(engine)

    migrate(empty_database)
    assert money(engine) == before
    with engine.connect() as conn:
        versions = conn.execute(
            text("select distinct plan_version from meterline.plan_in_force")
        ).scalars()
        assert list(versions) == [1]
        split_from = conn.execute(
            text("select effective_from from meterline.rating_rules where rule = 'usage_segments'")
        ).scalar()
        assert split_from == OCT  # the month after the last invoiced one

    dbt_build(
        empty_database, "--select", "+fct_invoice_lines", "+fct_mrr_summary",
        "--exclude-resource-type", "test", "unit_test", "--full-refresh",
        vars={"as_of": "2026-10-05T00:00:00Z"}, target_path=tmp_path / "target",
    )  # fmt: skip
    with engine.connect() as conn:
        marts = [
            tuple(r)
            for r in conn.execute(
                text(
                    "select tenant_id, month, line_key, amount from analytics.fct_invoice_lines "
                    "where month in (:aug, :sep) order by 1, 2, 3"
                ),
                {"aug": AUG, "sep": SEP},
            )
        ]
        assert marts == before["lines"]  # every past month rated exactly as it was invoiced
        assert compute_adjustments(conn, "acme", OCT, "USD") == []
        assert compute_adjustments(conn, "bolt", OCT, "USD") == []
        mrr = conn.execute(
            text(
                "select tenant_id, month, mrr from analytics.fct_mrr where month < :o order by 1, 2"
            ),
            {"o": OCT},
        ).all()
        assert [tuple(r) for r in mrr] == [
            ("acme", date(2026, 7, 1), 9900), ("acme", AUG, 9900), ("acme", SEP, 9900),
            ("bolt", date(2026, 7, 1), 2900), ("bolt", AUG, 9900), ("bolt", SEP, 9900),
        ]  # fmt: skip

    downgrade(empty_database, PREVIOUS_HEAD)  # one version per plan: reversible, data intact
    assert money(engine) == before
    engine.dispose()
