"""Collection terms per plan version, Stripe webhook events in, invoice events out.

Revision ID: 0011_invoice_collection
Revises: 0010_usage_segments
Create Date: 2026-12-03

- ``meterline.plans`` gains the collection terms of a version (``billing.collection``):
  ``collection_method`` (``send_invoice`` | ``charge_automatically``), ``days_until_due``
  (1..365, only with ``send_invoice``) and ``auto_advance``. Existing versions get today's
  behaviour (``send_invoice``, 30 days, no auto-advance), which stay the column defaults
  so a plan row written without terms is valid too: ADD COLUMN with a default does not
  fire the row triggers that keep a version immutable, and nothing is updated.
  ``meterline.plan_latest`` is recreated so the current catalog carries them.
- ``meterline.invoices`` gains ``due_at``, ``paid_at`` and ``status_changed_at`` (set by Stripe
  webhooks and invoice runs); ``status`` may now also be ``payment_failed``.
  ``meterline.next_invoice_status(current, incoming)`` is the one rule for moving it: a paid or
  void invoice never changes again, a failed payment or an uncollectible mark is not undone by
  a late ``open``, nothing goes back to draft once finalized (out-of-order webhooks).
- ``meterline.invoice_reconciliation.amount_paid``: what Stripe reports as paid.
- ``meterline.stripe_webhook_events``: every Stripe event id processed once (idempotency).
- ``meterline.invoice_events``: signed invoice events for the alert webhook, delivered with
  the alerts' bookkeeping (``delivery_status``, ``attempts``, ``last_error``).

No amount changes.
"""

from alembic import op

revision = "0011_invoice_collection"
down_revision = "0010_usage_segments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table meterline.plans
            add column collection_method text not null default 'send_invoice'
                check (collection_method in ('send_invoice', 'charge_automatically')),
            add column days_until_due integer default 30
                check (days_until_due between 1 and 365),
            add column auto_advance boolean not null default false,
            add constraint plans_days_until_due_with_send_invoice check (
                (collection_method = 'send_invoice') = (days_until_due is not null));

        alter table meterline.invoice_reconciliation
            add column amount_paid bigint not null default 0;
        comment on column meterline.invoice_reconciliation.amount_paid is
            'What Stripe reports as paid on the invoice (minor units) when reconciled.';
        alter table meterline.invoices
            add column due_at timestamptz,
            add column paid_at timestamptz,
            add column status_changed_at timestamptz;

        create function meterline.next_invoice_status(current_status text, incoming text)
        returns text language sql immutable as $$
            select case
                when current_status is null or current_status = incoming then incoming
                when current_status in ('paid', 'void') then current_status
                when incoming in ('paid', 'void') then incoming
                when current_status = 'uncollectible' then current_status
                when incoming in ('uncollectible', 'payment_failed') then incoming
                when current_status = 'payment_failed' then current_status
                when incoming = 'open' then incoming
                when current_status = 'open' then current_status
                else incoming
            end
        $$;
        comment on function meterline.next_invoice_status(text, text) is
            'The status an invoice moves to when told `incoming` (a Stripe webhook, an invoice '
            'run): paid and void are final, a late open never undoes a later status.';

        create table meterline.stripe_webhook_events (
            event_id      text primary key,
            event_type    text not null,
            stripe_created timestamptz not null,
            object_id     text,
            outcome       text not null,
            received_at   timestamptz not null default now()
        );
        comment on table meterline.stripe_webhook_events is
            'Stripe events processed by POST /v1/stripe/webhook, once each (replays are ignored).';

        create table meterline.invoice_events (
            event_id          bigserial primary key,
            event_key         text not null unique,
            event_type        text not null,
            tenant_id         text not null references meterline.tenants on delete cascade,
            period            date not null,
            stripe_invoice_id text not null,
            payload           jsonb not null,
            delivery_status   text not null default 'pending'
                check (delivery_status in ('pending', 'sent', 'failed', 'skipped')),
            attempts          integer not null default 0,
            last_error        text,
            created_at        timestamptz not null default now(),
            delivered_at      timestamptz
        );
        comment on table meterline.invoice_events is
            'invoice.finalized / paid / payment_failed sent to ALERT_WEBHOOK_URL, exactly once each.';
        """
    )
    _create_plan_latest()


def _create_plan_latest() -> None:
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
    """Drops the collection terms and the webhook tables; a ``payment_failed`` invoice goes
    back to ``open`` (what Stripe still says of it)."""
    op.execute(
        """
        drop table meterline.invoice_events;
        drop table meterline.stripe_webhook_events;
        drop function meterline.next_invoice_status(text, text);
        update meterline.invoices set status = 'open' where status = 'payment_failed';
        alter table meterline.invoice_reconciliation drop column amount_paid;
        alter table meterline.invoices
            drop column status_changed_at,
            drop column paid_at,
            drop column due_at;
        drop view meterline.plan_latest;
        alter table meterline.plans
            drop constraint plans_days_until_due_with_send_invoice,
            drop column auto_advance cascade,
            drop column days_until_due cascade,
            drop column collection_method cascade;
        """
    )
    _create_plan_latest()
