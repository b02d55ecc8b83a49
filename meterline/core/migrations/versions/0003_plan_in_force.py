"""The plan in force at an instant: one view every query uses.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

``meterline.plan_in_force`` has one row per plan term (a subscription) with ``in_force``, the
half-open range ``[effective_from, effective_to)`` (unbounded while the term is open). "The
plan of tenant T at instant X" is ``where tenant_id = T and in_force @> X`` everywhere: quotas,
alerts, the portal, rating and MRR (dbt reads it as a source).
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create view meterline.plan_in_force as
        select
            s.subscription_id,
            s.tenant_id,
            s.plan_id,
            s.effective_from,
            s.effective_to,
            tstzrange(s.effective_from, s.effective_to, '[)') as in_force
        from meterline.subscriptions s;
        comment on view meterline.plan_in_force is
            'One row per plan term; the plan of a tenant at instant X is the row whose '
            'in_force range contains X (in_force @> X).';
        """
    )


def downgrade() -> None:
    op.execute("drop view if exists meterline.plan_in_force")
