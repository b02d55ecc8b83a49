"""Dead letters: stream rows the loader could not load, kept with the reason.

Revision ID: 0005_usage_dead_letters
Revises: 0004_api_key_lifecycle
Create Date: 2026-12-02

One row per refused COPY line (``line_no`` >= 1) or per malformed stream entry (``line_no``
0): the raw bytes exactly as they sat in the stream, Postgres's reason, when it was first
seen and how many times loading it was tried. ``meterline dead-letters replay`` loads them
(``ON CONFLICT`` on the event key, so never twice) and deletes them in the same transaction.
"""

from alembic import op

revision = "0005_usage_dead_letters"
down_revision = "0004_api_key_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table raw.usage_dead_letters (
            dead_letter_id   bigserial primary key,
            stream           text not null,
            entry_id         text not null,
            line_no          integer not null check (line_no >= 0),
            tenant_id        text,
            event_id         text,
            payload          bytea not null,
            reason           text not null,
            first_seen       timestamptz not null,
            last_attempt_at  timestamptz not null,
            attempts         integer not null default 1 check (attempts >= 1),
            unique (stream, entry_id, line_no)
        );
        comment on table raw.usage_dead_letters is
            'Stream rows the loader could not load (line_no 0: a malformed entry), with the '
            'reason; replay with `meterline dead-letters replay`.';
        """
    )


def downgrade() -> None:
    op.execute("drop table if exists raw.usage_dead_letters")
