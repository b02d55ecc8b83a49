"""Plan versions: prices never change in place; a subscription names the version it pays.

Revision ID: 0006_plan_versions
Revises: 0005_usage_dead_letters
Create Date: 2026-12-02

``meterline.plans``, ``plan_meters`` and ``price_tiers`` gain ``plan_version`` (every existing
row becomes version 1) and are keyed by it; a trigger refuses any UPDATE or DELETE of them, so
a written version is immutable (``meterline catalog load`` of a changed plan writes a new one).
``meterline.subscriptions.plan_version`` names the version a term pays (existing terms: 1; a
new term without one takes the plan's latest version). ``meterline.plan_latest`` is the
current catalog (the latest version of each plan) and ``meterline.plan_in_force`` exposes
``plan_version``. No amount changes: every existing term keeps paying exactly what it paid.
"""

from alembic import op

revision = "0006_plan_versions"
down_revision = "0005_usage_dead_letters"
branch_labels = None
depends_on = None

IMMUTABLE = ("plans", "plan_meters", "price_tiers")


def upgrade() -> None:
    op.execute(
        """
        alter table meterline.price_tiers drop constraint price_tiers_plan_id_meter_fkey;
        alter table meterline.plan_meters drop constraint plan_meters_plan_id_fkey;
        alter table meterline.subscriptions drop constraint subscriptions_plan_id_fkey;

        alter table meterline.plans
            add column plan_version integer not null default 1 check (plan_version >= 1),
            drop constraint plans_pkey,
            add primary key (plan_id, plan_version);
        alter table meterline.plan_meters
            add column plan_version integer not null default 1,
            drop constraint plan_meters_pkey,
            add primary key (plan_id, plan_version, meter),
            add foreign key (plan_id, plan_version) references meterline.plans;
        alter table meterline.price_tiers
            add column plan_version integer not null default 1,
            drop constraint price_tiers_pkey,
            add primary key (plan_id, plan_version, meter, tier_index),
            add foreign key (plan_id, plan_version, meter) references meterline.plan_meters;
        alter table meterline.subscriptions
            add column plan_version integer;
        update meterline.subscriptions set plan_version = 1;
        alter table meterline.subscriptions
            alter column plan_version set not null,
            add foreign key (plan_id, plan_version) references meterline.plans;

        create function meterline.refuse_plan_version_change() returns trigger
        language plpgsql as $$
        begin
            raise exception 'plan % version % is immutable (table meterline.%): change '
                'billing/catalog.yaml and run `meterline catalog load` to write a new version',
                old.plan_id, old.plan_version, tg_table_name;
        end $$;

        create function meterline.subscription_latest_version() returns trigger
        language plpgsql as $$
        begin
            if new.plan_version is null then
                select max(plan_version) into new.plan_version
                from meterline.plans where plan_id = new.plan_id;
            end if;
            return new;
        end $$;
        create trigger subscriptions_latest_version before insert on meterline.subscriptions
            for each row execute function meterline.subscription_latest_version();

        create view meterline.plan_latest as
        select distinct on (plan_id) *
        from meterline.plans
        order by plan_id, plan_version desc;
        comment on view meterline.plan_latest is
            'The current catalog: the latest version of each plan (what a new subscription pays).';

        create or replace view meterline.plan_in_force as
        select
            s.subscription_id,
            s.tenant_id,
            s.plan_id,
            s.effective_from,
            s.effective_to,
            tstzrange(s.effective_from, s.effective_to, '[)') as in_force,
            s.plan_version
        from meterline.subscriptions s;
        """
    )
    for table in IMMUTABLE:
        op.execute(
            f"create trigger {table}_immutable before update or delete on meterline.{table} "
            "for each row execute function meterline.refuse_plan_version_change()"
        )


def downgrade() -> None:
    """Back to one row per plan, refused while a plan has several versions. dbt's staging
    views over these tables are dropped with them (CASCADE); the next dbt run rebuilds them."""
    op.execute(
        """
        do $$ begin
            if exists (select 1 from meterline.plans where plan_version > 1) then
                raise exception 'cannot downgrade below 0006_plan_versions: some plans have '
                    'several versions (meterline.plans.plan_version > 1)';
            end if;
        end $$;
        drop view meterline.plan_in_force cascade;
        create view meterline.plan_in_force as
        select
            s.subscription_id,
            s.tenant_id,
            s.plan_id,
            s.effective_from,
            s.effective_to,
            tstzrange(s.effective_from, s.effective_to, '[)') as in_force
        from meterline.subscriptions s;
        drop view meterline.plan_latest;
        drop trigger subscriptions_latest_version on meterline.subscriptions;
        drop function meterline.subscription_latest_version();
        drop trigger plans_immutable on meterline.plans;
        drop trigger plan_meters_immutable on meterline.plan_meters;
        drop trigger price_tiers_immutable on meterline.price_tiers;
        drop function meterline.refuse_plan_version_change();

        alter table meterline.subscriptions drop column plan_version cascade;
        alter table meterline.price_tiers drop column plan_version cascade;
        alter table meterline.plan_meters drop column plan_version cascade;
        alter table meterline.plans drop column plan_version cascade;
        alter table meterline.plans add primary key (plan_id);
        alter table meterline.plan_meters
            add primary key (plan_id, meter),
            add foreign key (plan_id) references meterline.plans on delete cascade;
        alter table meterline.price_tiers
            add primary key (plan_id, meter, tier_index),
            add foreign key (plan_id, meter) references meterline.plan_meters on delete cascade;
        alter table meterline.subscriptions add foreign key (plan_id) references meterline.plans;
        """
    )
