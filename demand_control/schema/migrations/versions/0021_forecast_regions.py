"""forecasts partitioned by planning region: demand_profile filtered on location_id (an index), and the
additive sums behind bias_pct in forecast_accuracy, so the class and overall rows roll up exactly across
regions forecast in separate runs

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 07:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

SUBJECT_COMMENTS = (
    "sku|location_id for a series, route:band:class[:seasonal] for a segment, the class name, or 'all'.",
    "sku|location_id for a series, route:band:class[:seasonal] for a segment (region/route:band:class[:seasonal] when one planning region was forecast alone), the class name, or 'all'.",
)
ACCURACY_SUMS = (
    ('actual_units', 'sum(|actual|) over the backtest points: the denominator of bias_pct (rolled up across regions).'),
    ('bias_units', 'sum(forecast - actual) over the backtest points, after the bias correction.'),
    ('bias_units_raw', 'The same sum before the correction.'),
)


def upgrade() -> None:
    op.create_index('ix_demand_profile_location_id', 'demand_profile', ['location_id'])
    with op.batch_alter_table('forecast_accuracy') as batch:
        batch.alter_column('subject', existing_type=sa.String(), existing_nullable=False,
                           comment=SUBJECT_COMMENTS[1], existing_comment=SUBJECT_COMMENTS[0])
        for name, comment in ACCURACY_SUMS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True, comment=comment))


def downgrade() -> None:
    with op.batch_alter_table('forecast_accuracy') as batch:
        for name, _comment in reversed(ACCURACY_SUMS):
            batch.drop_column(name)
        batch.alter_column('subject', existing_type=sa.String(), existing_nullable=False,
                           comment=SUBJECT_COMMENTS[0], existing_comment=SUBJECT_COMMENTS[1])
    op.drop_index('ix_demand_profile_location_id', table_name='demand_profile')
