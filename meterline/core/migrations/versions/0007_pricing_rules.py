"""Pricing rules on par with peers: spend floors/caps, flat fees from zero, tier blocks, rounding.

Revision ID: 0007_pricing_rules
Revises: 0006_plan_versions
Create Date: 2026-12-02

Columns added to the versioned catalog tables (written with a new plan version by
``billing.catalog_store``, read by the dbt intermediate pricing models; all nullable or
defaulted so today's rows rate as before). The rules are part of a plan version: ADD COLUMN
does not fire the row triggers that keep a version immutable, and nothing is updated here.
``meterline.plan_latest`` is recreated so the current catalog carries the new plan columns.

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
down_revision = "0006_plan_versions"
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
    _create_plan_latest()


def _create_plan_latest() -> None:
    """(Re)create the current catalog view: its ``*`` is expanded when it is created."""
    op.execute(
        """
        create or replace view meterline.plan_latest as
        select distinct on (plan_id) *
        from meterline.plans
        order by plan_id, plan_version desc;
        comment on view meterline.plan_latest is
            'The current catalog: the latest version of each plan (what a new subscription pays).';
        """
    )


def downgrade() -> None:
    """Drops the rule columns; dbt's staging views over these tables go with them (CASCADE,
    as in 0006's downgrade): the next dbt run rebuilds them."""
    op.execute(
        """
        drop view meterline.plan_latest;
        alter table meterline.plans
            drop constraint plans_commitment_le_cap,
            drop column maximum_spend cascade,
            drop column minimum_commitment cascade;
        alter table meterline.price_tiers drop column block_size cascade;
        alter table meterline.plan_meters
            drop constraint plan_meters_min_le_max,
            drop constraint plan_meters_pricing_model_check,
            add constraint plan_meters_pricing_model_check check (pricing_model in
                ('graduated', 'volume', 'package', 'flat', 'none')),
            drop column per_event_max cascade,
            drop column per_event_min cascade,
            drop column free_events cascade,
            drop column fixed_fee cascade,
            drop column percentage_rate cascade,
            drop column prorate cascade,
            drop column rounding cascade,
            drop column flat_fee_from_zero cascade,
            drop column max_amount cascade,
            drop column min_amount cascade;
        """
    )
    _create_plan_latest()
