"""Installation id: the namespace of this database's objects in a shared Stripe account.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Upgrade note: invoices created before this revision carry no ``meterline_install`` metadata;
they stay recognised through ``meterline.invoices.stripe_invoice_id`` and their customers.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table meterline.installation (
            singleton   boolean primary key default true check (singleton),
            install_id  text not null check (install_id ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
            created_at  timestamptz not null default now()
        );
        comment on table meterline.installation is
            'One row: this installation''s id, stored as metadata.meterline_install on the '
            'Stripe objects it creates, so installs sharing a Stripe account stay apart.';
        """
    )


def downgrade() -> None:
    op.execute("drop table if exists meterline.installation")
