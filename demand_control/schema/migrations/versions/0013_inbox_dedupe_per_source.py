"""inbox dedupe per source: (source, webhook_id) is the inbox's unique key instead of webhook_id alone, so an
id another source already used no longer hides this source's event

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 01:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_OLD_COMMENT = "Sender's webhook-id: the dedupe key (a redelivery is stored once)."
_NEW_COMMENT = "Sender's webhook-id: with the source, the dedupe key (a redelivery is stored once)."
_OLD_TABLE_COMMENT = 'Durable inbox of verified webhook events: committed before the gateway answers 2xx, one row per webhook-id.'
_NEW_TABLE_COMMENT = 'Durable inbox of verified webhook events: committed before the gateway answers 2xx, one row per (source, webhook-id).'


def upgrade() -> None:
    # Every stored row is unique on webhook_id, so it is unique on (source, webhook_id) too: no data to fix.
    with op.batch_alter_table('inbox_events') as batch:
        batch.drop_constraint('uq_inbox_events_webhook_id', type_='unique')
        batch.create_unique_constraint('uq_inbox_events_source_webhook_id', ['source', 'webhook_id'])
        batch.alter_column('webhook_id', existing_type=sa.String(length=255), existing_nullable=False,
                           comment=_NEW_COMMENT, existing_comment=_OLD_COMMENT)
    if op.get_bind().dialect.name == 'postgresql':  # SQLite keeps no comments
        op.create_table_comment('inbox_events', _NEW_TABLE_COMMENT, existing_comment=_OLD_TABLE_COMMENT)


def downgrade() -> None:
    # Fails (unique violation) once two sources have used the same webhook-id: their events would have to go.
    if op.get_bind().dialect.name == 'postgresql':
        op.create_table_comment('inbox_events', _OLD_TABLE_COMMENT, existing_comment=_NEW_TABLE_COMMENT)
    with op.batch_alter_table('inbox_events') as batch:
        batch.alter_column('webhook_id', existing_type=sa.String(length=255), existing_nullable=False,
                           comment=_OLD_COMMENT, existing_comment=_NEW_COMMENT)
        batch.drop_constraint('uq_inbox_events_source_webhook_id', type_='unique')
        batch.create_unique_constraint('uq_inbox_events_webhook_id', ['webhook_id'])
