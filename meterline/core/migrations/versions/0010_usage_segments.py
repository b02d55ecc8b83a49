"""Usage segments: from which month a plan change splits the month's usage.

Revision ID: 0010_usage_segments
Revises: 0007_pricing_rules
Create Date: 2026-12-03

A mid-month plan change now splits the month's usage at the change instant, each part rated on
its own plan version (dbt ``int_usage_segments``). Months already invoiced were rated on the
plan in force at month end; re-rating them would put prior-period adjustment lines on the next
invoice although no usage arrived late. So ``meterline.rating_rules`` records, per rule, the
first month it applies to: this upgrade writes ``usage_segments`` = the month after the latest
month with an invoice in ``meterline.invoices`` (``-infinity`` on a database without invoices:
every month is split). Earlier months keep the month-end rule. No amount is changed here.
"""

from alembic import op

revision = "0010_usage_segments"
down_revision = "0008_adjustments_carried"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table meterline.rating_rules (
            rule           text primary key,
            effective_from date not null,
            description    text not null default ''
        );
        comment on table meterline.rating_rules is
            'First month each rating rule applies to (read by dbt int_usage_segments); months '
            'invoiced before an upgrade keep the rule they were invoiced under.';
        insert into meterline.rating_rules (rule, effective_from, description)
        select
            'usage_segments',
            coalesce(
                (select (max(period) + interval '1 month')::date from meterline.invoices),
                '-infinity'::date
            ),
            'a mid-month plan change splits the month''s usage at the change, each part rated '
            'on its plan version; earlier months are rated on the plan in force at month end';
        """
    )


def downgrade() -> None:
    op.execute("drop table meterline.rating_rules")
