"""replan log: one row per event-scoped replan, what it applied and changed

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-07 04:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('replan_log',
    sa.Column('replan_id', sa.Integer(), autoincrement=True, nullable=False, comment='Order of the replans.'),
    sa.Column('run_id', sa.String(length=64), nullable=True, comment='Dagster run of the replan job (empty outside Dagster).'),
    sa.Column('inbox_from', sa.Integer(), nullable=False, comment='First inbox_id of the batch the replan applied (inclusive).'),
    sa.Column('inbox_to', sa.Integer(), nullable=False, comment='Last inbox_id of the batch the replan applied (inclusive).'),
    sa.Column('events', sa.Integer(), nullable=False, comment='Inbox events applied (events already processed by an earlier run are skipped).'),
    sa.Column('erp_sku_locations', sa.Integer(), nullable=False, comment="SKU-locations re-planned because they changed in the ERP (the ERP sync's request), besides the events'."),
    sa.Column('sku_locations', sa.Integer(), nullable=True, comment='SKU-locations re-planned; empty: all of them (the scope was too large, so the whole panel was re-planned).'),
    sa.Column('exceptions_opened', sa.Integer(), nullable=False, comment='Exceptions the replan opened or reopened.'),
    sa.Column('exceptions_updated', sa.Integer(), nullable=False, comment='Open exceptions whose figures the replan changed.'),
    sa.Column('exceptions_resolved', sa.Integer(), nullable=False, comment='Exceptions the replan found cleared (auto-resolved).'),
    sa.Column('actions', sa.Integer(), nullable=False, comment='Recommended actions of the re-planned SKU-locations after the replan.'),
    sa.Column('replanned_at', sa.DateTime(timezone=True), nullable=False, comment="The planning clock's instant of the replan (UTC)."),
    sa.PrimaryKeyConstraint('replan_id', name=op.f('pk_replan_log')),
    comment="One row per event-scoped replan (the replan job): what it applied and changed. The full plan's tables keep every SKU-location; this says which ones an event re-planned since."
    )


def downgrade() -> None:
    op.drop_table('replan_log')
