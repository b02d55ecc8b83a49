"""Initial schema: catalog, tenants and plan history, raw usage, control tables for billing.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
create schema if not exists raw;
create schema if not exists meterline;

-- Price catalog (loaded from billing/catalog.yaml by `meterline catalog load`) ----------
create table meterline.meters (
    meter             text primary key,
    aggregation       text not null check (aggregation in ('sum','count','max','last','unique_count')),
    unit              text not null,
    unique_dimension  text,
    description       text not null default '',
    updated_at        timestamptz not null default now()
);

create table meterline.plans (
    plan_id      text primary key,
    name         text not null,
    base_fee     numeric(20, 6) not null default 0 check (base_fee >= 0),
    currency     char(3) not null default 'USD',
    upgrade_to   text,
    description  text not null default '',
    updated_at   timestamptz not null default now()
);

create table meterline.plan_meters (
    plan_id            text not null references meterline.plans on delete cascade,
    meter              text not null references meterline.meters,
    limit_quantity     numeric(24, 6) check (limit_quantity >= 0),
    hard_limit         boolean not null default false,
    pricing_model      text not null check (pricing_model in ('graduated','volume','package','flat','none')),
    included_quantity  numeric(24, 6) not null default 0 check (included_quantity >= 0),
    package_size       numeric(24, 6) check (package_size > 0),
    primary key (plan_id, meter)
);

create table meterline.price_tiers (
    plan_id     text not null,
    meter       text not null,
    tier_index  integer not null check (tier_index >= 0),
    up_to       numeric(24, 6),
    unit_price  numeric(24, 12) not null default 0 check (unit_price >= 0),
    flat_fee    numeric(20, 6) not null default 0 check (flat_fee >= 0),
    primary key (plan_id, meter, tier_index),
    foreign key (plan_id, meter) references meterline.plan_meters on delete cascade
);

-- Tenants and their plan history ---------------------------------------------------------
create table meterline.tenants (
    tenant_id    text primary key check (tenant_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name         text not null,
    email        text,
    currency     char(3) not null default 'USD',
    status       text not null default 'active' check (status in ('active','canceled')),
    created_at   timestamptz not null default now(),
    canceled_at  timestamptz
);

create table meterline.subscriptions (
    subscription_id  bigserial primary key,
    tenant_id        text not null references meterline.tenants on delete cascade,
    plan_id          text not null references meterline.plans,
    effective_from   timestamptz not null,
    effective_to     timestamptz,
    created_at       timestamptz not null default now(),
    check (effective_to is null or effective_to > effective_from),
    unique (tenant_id, effective_from)
);
create index subscriptions_current on meterline.subscriptions (tenant_id) where effective_to is null;

create table meterline.api_keys (
    key_hash    text primary key,
    tenant_id   text not null references meterline.tenants on delete cascade,
    key_prefix  text not null,
    created_at  timestamptz not null default now(),
    revoked_at  timestamptz
);

-- Raw usage (loaded from the Redis stream) and live-counter snapshots ---------------------
create table raw.usage_events (
    tenant_id    text not null,
    event_id     text not null,
    meter        text not null,
    value        numeric(24, 6) not null,
    occurred_at  timestamptz not null,
    dimensions   jsonb not null default '{}'::jsonb,
    received_at  timestamptz not null,
    loaded_at    timestamptz not null default now(),
    primary key (tenant_id, event_id)
);
create index usage_events_occurred_at on raw.usage_events (occurred_at);
create index usage_events_loaded_at on raw.usage_events (loaded_at);

create table raw.counter_snapshots (
    snapshot_at   timestamptz not null,
    tenant_id     text not null,
    meter         text not null,
    period_kind   text not null check (period_kind in ('month','hour')),
    period_start  timestamptz not null,
    quantity      numeric(24, 6) not null,
    refused       numeric(24, 6) not null default 0,
    primary key (snapshot_at, tenant_id, meter, period_kind, period_start)
);

create table raw.infra_costs (
    month         date not null check (extract(day from month) = 1),
    cost_pool     text not null,
    driver_meter  text,
    amount        numeric(20, 6) not null check (amount >= 0),
    currency      char(3) not null default 'USD',
    imported_at   timestamptz not null default now(),
    primary key (month, cost_pool)
);

-- Alerts, invoices and reconciliation -------------------------------------------------------
create table meterline.alerts (
    alert_id         bigserial primary key,
    tenant_id        text not null references meterline.tenants on delete cascade,
    meter            text not null,
    period_start     date not null,
    threshold        integer not null check (threshold between 1 and 1000),
    usage_percent    numeric(10, 2) not null,
    quantity         numeric(24, 6) not null,
    limit_quantity   numeric(24, 6) not null,
    channel          text not null,
    notified         boolean not null default true,
    delivery_status  text not null default 'pending' check (delivery_status in ('pending','sent','failed','skipped')),
    attempts         integer not null default 0,
    last_error       text,
    fired_at         timestamptz not null default now(),
    delivered_at     timestamptz,
    unique (tenant_id, meter, period_start, threshold, channel)
);

create table meterline.stripe_customers (
    tenant_id           text primary key references meterline.tenants on delete cascade,
    stripe_customer_id  text not null unique,
    synced_at           timestamptz not null default now()
);

create table meterline.invoices (
    tenant_id          text not null references meterline.tenants,
    period             date not null check (extract(day from period) = 1),
    stripe_invoice_id  text unique,
    stripe_customer_id text,
    status             text not null default 'pending',
    currency           char(3) not null,
    amount_due         bigint not null default 0,
    usage_cutoff       timestamptz,
    created_at         timestamptz not null default now(),
    finalized_at       timestamptz,
    primary key (tenant_id, period)
);

create table meterline.invoice_lines (
    tenant_id               text not null,
    period                  date not null,
    line_key                text not null,
    meter                   text,
    description             text not null,
    quantity                numeric(24, 6) not null default 0,
    amount                  bigint not null,
    currency                char(3) not null,
    stripe_invoice_item_id  text,
    primary key (tenant_id, period, line_key),
    foreign key (tenant_id, period) references meterline.invoices on delete cascade
);

create table meterline.invoice_reconciliation (
    reconciliation_id  bigserial primary key,
    period             date not null,
    tenant_id          text not null,
    stripe_invoice_id  text,
    currency           char(3) not null,
    expected_amount    bigint not null default 0,
    stripe_amount      bigint not null default 0,
    difference         bigint not null default 0,
    category           text not null,
    explanation        text not null default '',
    checked_at         timestamptz not null default now()
);
create unique index invoice_reconciliation_key
    on meterline.invoice_reconciliation (period, tenant_id, coalesce(stripe_invoice_id, ''));
"""

DOWNGRADE = """
drop table if exists meterline.invoice_reconciliation;
drop table if exists meterline.invoice_lines;
drop table if exists meterline.invoices;
drop table if exists meterline.stripe_customers;
drop table if exists meterline.alerts;
drop table if exists raw.infra_costs;
drop table if exists raw.counter_snapshots;
drop table if exists raw.usage_events;
drop table if exists meterline.api_keys;
drop table if exists meterline.subscriptions;
drop table if exists meterline.tenants;
drop table if exists meterline.price_tiers;
drop table if exists meterline.plan_meters;
drop table if exists meterline.plans;
drop table if exists meterline.meters;
drop schema if exists raw;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
