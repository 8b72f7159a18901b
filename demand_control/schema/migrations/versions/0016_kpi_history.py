"""kpi history: every coordination KPI of every plan, so each figure has a history

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 04:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kpi_history',
    sa.Column('plan_id', sa.Integer(), autoincrement=False, nullable=False, comment='The plan (plan_runs.plan_id) the figures describe; re-measuring the same plan replaces its rows.'),
    sa.Column('kpi', sa.String(length=64), nullable=False, comment='Indicator, as in coordination_kpis.'),
    sa.Column('dimension', sa.String(length=32), nullable=False, comment="What the row is broken down by ('all' for totals)."),
    sa.Column('member', sa.String(), nullable=False, comment="The value of the dimension ('all' for totals)."),
    sa.Column('as_of', sa.Date(), nullable=False, comment="The plan's as-of date: the x axis of a KPI's history."),
    sa.Column('plan_run_id', sa.String(length=64), nullable=True, comment='Dagster run that made the plan (empty outside Dagster).'),
    sa.Column('value', sa.Float(), nullable=True, comment='The figure (empty when there is nothing to measure yet).'),
    sa.Column('unit', sa.String(length=16), nullable=False, comment='count, money, share, hours or rmsse.'),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False, comment='When the figures were measured (UTC).'),
    sa.PrimaryKeyConstraint('plan_id', 'kpi', 'dimension', 'member', name=op.f('pk_kpi_history')),
    comment='Every coordination KPI of every plan (kpi x dimension x member x plan), append-only by plan: coordination_kpis is its latest slice.'
    )


def downgrade() -> None:
    op.drop_table('kpi_history')
