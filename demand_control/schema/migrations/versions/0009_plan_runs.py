"""plan runs: the as-of of every plan

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 21:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('plan_runs',
    sa.Column('plan_id', sa.Integer(), autoincrement=True, nullable=False, comment='Order of the plans.'),
    sa.Column('run_id', sa.String(length=64), nullable=True, comment='Dagster run that made the plan (empty outside Dagster).'),
    sa.Column('scope', sa.String(length=16), nullable=False, comment='full (every SKU-location) or scoped (the SKU-locations an event touched).'),
    sa.Column('sku_locations', sa.Integer(), nullable=False, comment='SKU-locations projected.'),
    sa.Column('as_of', sa.Date(), nullable=False, comment="The date the plan was made as of (the run's clock): today, for the plan."),
    sa.Column('horizon_start', sa.Date(), nullable=False, comment='First day projected; bucket 0 runs from here to the end of its week.'),
    sa.Column('bucket_days', sa.Integer(), nullable=False, comment='Length of a bucket in days.'),
    sa.Column('planned_at', sa.DateTime(timezone=True), nullable=False, comment="The planning clock's instant when the plan was made (UTC)."),
    sa.PrimaryKeyConstraint('plan_id', name=op.f('pk_plan_runs')),
    comment='One row per plan (full or event-scoped): the as-of it was made on, so every projection, exception and action can be traced to its date.'
    )
    with op.batch_alter_table('projected_inventory') as batch:
        batch.alter_column('forecast', existing_type=sa.Float(), existing_nullable=False,
                           comment="Forecast mean demand of the bucket's days still ahead (bucket 0: from the as-of date to the end of its week).",
                           existing_comment='Forecast mean demand of the bucket.')
        batch.alter_column('bucket', existing_type=sa.Integer(), existing_nullable=False,
                           comment='Bucket number from the current one (0, which covers only the days left of its week).',
                           existing_comment='Bucket number from the current one (0).')


def downgrade() -> None:
    with op.batch_alter_table('projected_inventory') as batch:
        batch.alter_column('forecast', existing_type=sa.Float(), existing_nullable=False,
                           comment='Forecast mean demand of the bucket.')
        batch.alter_column('bucket', existing_type=sa.Integer(), existing_nullable=False,
                           comment='Bucket number from the current one (0).')
    op.drop_table('plan_runs')
