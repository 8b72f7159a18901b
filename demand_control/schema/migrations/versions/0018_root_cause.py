"""root cause of every case: the classifier's cause, its confidence and the evidence, on the lifecycle and
the active snapshot

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-07 04:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

_COLUMNS = (
    ('root_cause', sa.String(32), 'Why it happened, from the fixed vocabulary (supplier_chronic_lateness, supplier_one_off_delay, single_customer_order, broad_demand_shift, seasonal_peak, forecast_bias, new_item, data_error, unknown).'),
    ('root_cause_confidence', sa.Float(), '0..1: how clearly the evidence decided the root cause (0 for unknown).'),
    ('root_cause_evidence', sa.Text(), 'The evidence that decided the root cause, with its numbers.'),
)
_TABLES = ('exception_lifecycle', 'planning_exceptions')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            for name, kind, comment in _COLUMNS:
                batch.add_column(sa.Column(name, kind, nullable=True, comment=comment))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            for name, _, _ in reversed(_COLUMNS):
                batch.drop_column(name)
