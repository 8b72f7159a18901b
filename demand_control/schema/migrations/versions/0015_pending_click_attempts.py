"""pending clicks: how often deciding a stored click failed, when the sweeper tries again, the last error and
when the operations channel was told

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-07 01:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_COLUMNS = (
    ('decide_attempts', sa.Integer(), 'How often deciding this click failed (e.g. the policy file was invalid); 0 or empty: never.'),
    ('next_decide_at', sa.DateTime(timezone=True), 'When the pending-click sweeper tries to decide it again (backoff after a failure); empty: now.'),
    ('last_error', sa.Text(), 'Why the last attempt to decide it failed.'),
    ('alerted_at', sa.DateTime(timezone=True), 'When the operations channel was told the click is stuck (once per click).'),
)


def upgrade() -> None:
    with op.batch_alter_table('approval_clicks') as batch:
        for name, kind, comment in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True, comment=comment))


def downgrade() -> None:
    with op.batch_alter_table('approval_clicks') as batch:
        for name, _, _ in reversed(_COLUMNS):
            batch.drop_column(name)
