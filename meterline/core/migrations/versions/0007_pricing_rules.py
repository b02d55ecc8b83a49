"""Pricing rules on par with peers: spend floors/caps, flat fees from zero, tier blocks, rounding.

Revision ID: 0007_pricing_rules
Revises: 0005_usage_dead_letters (the lead re-chains after plan versions)
Create Date: 2026-12-02

Columns added to the existing catalog tables (written by ``billing.pricing_rules_store``, read
by the dbt intermediate pricing models; all nullable or defaulted so today's rows rate as before):

- ``plan_meters.min_amount`` / ``max_amount``: floor / cap of the meter's monthly charge.
- ``plan_meters.flat_fee_from_zero``: the first tier's flat fee is charged even at 0 billable.
- ``plan_meters.rounding``: ``up`` (default) or ``down`` for package and tier blocks.
- ``plan_meters.prorate``: included units and tier bounds scale with the days in force.
- ``plan_meters.pricing_model`` may be ``percentage``, with ``percentage_rate`` (percent of
  each event's value), ``fixed_fee`` (per event), ``free_events``, ``per_event_min``/``max``.
- ``price_tiers.block_size``: units in the tier are priced per started (or completed) block.
- ``plans.minimum_commitment`` / ``maximum_spend``: floor / cap of the month's invoice total.
"""

from alembic import op

revision = "0007_pricing_rules"
down_revision = "0005_usage_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table meterline.plan_meters
            add column min_amount numeric check (min_amount >= 0),
            add column max_amount numeric check (max_amount >= 0),
            add column flat_fee_from_zero boolean not null default false,
            add column rounding text not null default 'up' check (rounding in ('up', 'down')),
            add column prorate boolean not null default false,
            add column percentage_rate numeric check (percentage_rate >= 0),
            add column fixed_fee numeric not null default 0 check (fixed_fee >= 0),
            add column free_events integer not null default 0 check (free_events >= 0),
            add column per_event_min numeric check (per_event_min >= 0),
            add column per_event_max numeric check (per_event_max >= per_event_min),
            drop constraint plan_meters_pricing_model_check,
            add constraint plan_meters_pricing_model_check check (pricing_model in
                ('graduated', 'volume', 'package', 'flat', 'percentage', 'none')),
            add constraint plan_meters_min_le_max check (min_amount <= max_amount);
        alter table meterline.price_tiers
            add column block_size numeric check (block_size > 0);
        alter table meterline.plans
            add column minimum_commitment numeric check (minimum_commitment >= 0),
            add column maximum_spend numeric check (maximum_spend >= 0),
            add constraint plans_commitment_le_cap check (minimum_commitment <= maximum_spend);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        alter table meterline.plans
            drop constraint plans_commitment_le_cap,
            drop column maximum_spend,
            drop column minimum_commitment;
        alter table meterline.price_tiers drop column block_size;
        alter table meterline.plan_meters
            drop constraint plan_meters_min_le_max,
            drop constraint plan_meters_pricing_model_check,
            add constraint plan_meters_pricing_model_check check (pricing_model in
                ('graduated', 'volume', 'package', 'flat', 'none')),
            drop column per_event_max,
            drop column per_event_min,
            drop column free_events,
            drop column fixed_fee,
            drop column percentage_rate,
            drop column prorate,
            drop column rounding,
            drop column flat_fee_from_zero,
            drop column max_amount,
            drop column min_amount;
        """
    )
