"""API key lifecycle: every key gets a public id, so it can be listed, revoked and rotated.

Revision ID: 0004_api_key_lifecycle
Revises: 0003
Create Date: 2026-12-02

``meterline.api_keys`` already stored only the SHA-256 of each key (``key_hash``), a display
prefix and ``revoked_at``. This adds ``key_id`` (``key_`` + 12 hex digits, never secret): the
name a key is listed, revoked and rotated by, and what a portal session made from a key
carries, so revoking the key ends the session too. Existing keys get a random id.
"""

from alembic import op

revision = "0004_api_key_lifecycle"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table meterline.api_keys add column key_id text;
        update meterline.api_keys
           set key_id = 'key_' || substr(md5(random()::text || key_hash), 1, 12);
        alter table meterline.api_keys
            alter column key_id set not null,
            add constraint api_keys_key_id_format check (key_id ~ '^key_[0-9a-f]{12}$'),
            add constraint api_keys_key_id_unique unique (key_id);
        create index api_keys_by_tenant on meterline.api_keys (tenant_id, created_at);
        comment on column meterline.api_keys.key_id is
            'Public id of the key (listed, revoked and rotated by it); the key itself is '
            'never stored, only key_hash (SHA-256).';
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop index if exists meterline.api_keys_by_tenant;
        alter table meterline.api_keys drop column if exists key_id;
        """
    )
