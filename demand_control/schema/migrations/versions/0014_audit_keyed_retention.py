"""audit keyed and append-only on SQLite too; retention marks on the tables holding personal data

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-07 01:00:00.000000

Rows already in audit_log keep their plain SHA-256 links: they are not rewritten (that is what the chain
forbids). Once DEMAND_CONTROL_AUDIT_KEY is set, new rows are keyed; run `demand-control audit anchor` right
after setting it, so the checkpoint file records where the keyed part begins (the re-anchor).
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

ROW_HASH_COMMENT = ("HMAC-SHA256 under the audit key (plain SHA-256 for rows written without one) over prev_hash "
                    "and this row's fields: the chain link.")
OLD_ROW_HASH_COMMENT = "SHA-256 over prev_hash and this row's fields: the chain link."
TABLE_COMMENT = "Append-only audit trail with a keyed hash chain; triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL)."
OLD_TABLE_COMMENT = "Append-only audit trail with a hash chain; on PostgreSQL a trigger refuses UPDATE and DELETE."
REDACTED_COMMENT = "When the retention job removed the personal data from this row (empty: not yet)."
REDACTED_TABLES = ('inbox_events', 'notifications', 'customer_notices')


def upgrade() -> None:
    for table in REDACTED_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('redacted_at', sa.DateTime(timezone=True), nullable=True, comment=REDACTED_COMMENT))
    if op.get_bind().dialect.name == 'sqlite':
        # The same guard PostgreSQL has had since 0007 (SQLite has no TRUNCATE; DELETE covers it).
        op.execute("CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                   "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END")
        op.execute("CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
                   "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END")
    else:
        op.alter_column('audit_log', 'row_hash', existing_type=sa.String(length=64), existing_nullable=False,
                        comment=ROW_HASH_COMMENT, existing_comment=OLD_ROW_HASH_COMMENT)
        op.create_table_comment('audit_log', TABLE_COMMENT, existing_comment=OLD_TABLE_COMMENT)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    else:
        op.create_table_comment('audit_log', OLD_TABLE_COMMENT, existing_comment=TABLE_COMMENT)
        op.alter_column('audit_log', 'row_hash', existing_type=sa.String(length=64), existing_nullable=False,
                        comment=OLD_ROW_HASH_COMMENT, existing_comment=ROW_HASH_COMMENT)
    for table in reversed(REDACTED_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('redacted_at')
