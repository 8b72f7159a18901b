"""forecasts for short histories: category and seasonality source in the profile, the CRM pipeline apart
from the statistical forecast, bias correction in the accuracy table

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

PROFILE_COMMENTS = {
    'seasonal': (
        'True when the seasonality test passes (two seasons of history needed).',
        "True when the series is seasonal: its own test passes (two seasons of history) or its category's or class's pooled index is detected.",
    ),
    'is_new': (
        'Too little history to select a model: forecast by a moving average.',
        'Too little history since the first sale to select a model (see route new).',
    ),
}
ROUTE_COMMENTS = (
    "How the series is forecast: its class's candidates, or dead, new or short.",
    "How the series is forecast: its class's candidates (two seasons or more), short (methods that need no seasonal history), new (launch profile of its category's analogues) or dead (zero).",
)
MEAN_COMMENTS = (
    'Expected demand in the bucket (the unbiased mean replenishment uses).',
    'Expected demand in the bucket (the unbiased mean replenishment uses): base_mean plus pipeline_qty.',
)
ACCURACY_COMMENTS = {
    'scope': (
        sa.String(length=16),
        'series (one SKU-location), class or overall.',
        'series (one SKU-location), segment (route, length band, class and seasonality selected together), class or overall.',
    ),
    'subject': (
        sa.String(),
        "sku|location_id for a series, the class name, or 'all'.",
        "sku|location_id for a series, route:band:class[:seasonal] for a segment, the class name, or 'all'.",
    ),
    'bias_pct': (
        sa.Float(),
        '100 x sum(forecast - actual) / sum(|actual|) over the backtest.',
        '100 x sum(forecast - actual) / sum(|actual|) over the backtest, after the bias correction.',
    ),
}


def upgrade() -> None:
    with op.batch_alter_table('demand_profile') as batch:
        for name, (old, new) in PROFILE_COMMENTS.items():
            batch.alter_column(name, existing_type=sa.Boolean(), existing_nullable=False, comment=new, existing_comment=old)
        batch.alter_column('route', existing_type=sa.String(length=16), existing_nullable=False,
                           comment=ROUTE_COMMENTS[1], existing_comment=ROUTE_COMMENTS[0])
        batch.add_column(sa.Column('category', sa.String(), nullable=True,
                                   comment='Product category the series pools its seasonality and launch analogues in.'))
        batch.add_column(sa.Column('seasonal_source', sa.String(length=16), nullable=True,
                                   comment='Where its seasonality comes from: own, category, class or panel (pooled index); empty when not seasonal.'))
    with op.batch_alter_table('demand_forecast') as batch:
        batch.alter_column('mean', existing_type=sa.Float(), existing_nullable=False,
                           comment=MEAN_COMMENTS[1], existing_comment=MEAN_COMMENTS[0])
        batch.add_column(sa.Column('base_mean', sa.Float(), nullable=True,
                                   comment='Statistical forecast of the bucket, before the CRM pipeline adjustment.'))
        batch.add_column(sa.Column('pipeline_qty', sa.Float(), nullable=False, server_default='0',
                                   comment='Probability-weighted open CRM pipeline added in the bucket (capped; 0 when the pipeline signal is off).'))
    with op.batch_alter_table('forecast_accuracy') as batch:
        for name, (type_, old, new) in ACCURACY_COMMENTS.items():
            batch.alter_column(name, existing_type=type_, existing_nullable=name == 'bias_pct', comment=new, existing_comment=old)
        batch.add_column(sa.Column('route', sa.String(length=16), nullable=True,
                                   comment='Route of the series or segment: long, short (new and dead series are not backtested).'))
        batch.add_column(sa.Column('bias_pct_raw', sa.Float(), nullable=True, comment='The same bias before the correction.'))
        batch.add_column(sa.Column('bias_factor', sa.Float(), nullable=True,
                                   comment='Multiplicative bias correction applied (1: none; the bias was not systematic).'))
        batch.add_column(sa.Column('bias_systematic', sa.Boolean(), nullable=True,
                                   comment='Segment rows: the backtest bias had the same sign and at least 1% in every window.'))


def downgrade() -> None:
    with op.batch_alter_table('forecast_accuracy') as batch:
        for name in ('bias_systematic', 'bias_factor', 'bias_pct_raw', 'route'):
            batch.drop_column(name)
        for name, (type_, old, new) in ACCURACY_COMMENTS.items():
            batch.alter_column(name, existing_type=type_, existing_nullable=name == 'bias_pct', comment=old, existing_comment=new)
    with op.batch_alter_table('demand_forecast') as batch:
        batch.drop_column('pipeline_qty')
        batch.drop_column('base_mean')
        batch.alter_column('mean', existing_type=sa.Float(), existing_nullable=False,
                           comment=MEAN_COMMENTS[0], existing_comment=MEAN_COMMENTS[1])
    with op.batch_alter_table('demand_profile') as batch:
        batch.drop_column('seasonal_source')
        batch.drop_column('category')
        batch.alter_column('route', existing_type=sa.String(length=16), existing_nullable=False,
                           comment=ROUTE_COMMENTS[0], existing_comment=ROUTE_COMMENTS[1])
        for name, (old, new) in PROFILE_COMMENTS.items():
            batch.alter_column(name, existing_type=sa.Boolean(), existing_nullable=False, comment=old, existing_comment=new)
