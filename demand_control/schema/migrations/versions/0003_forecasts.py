"""forecasts: demand profile, demand forecast and forecast accuracy tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

QUANTILE_COMMENT = "Forecast quantile at {pct}%: demand is at most this with {pct}% probability."


def upgrade() -> None:
    op.create_table('demand_profile',
    sa.Column('sku', sa.String(), nullable=False, comment='SKU profiled.'),
    sa.Column('location_id', sa.String(), nullable=False, comment='Location of the SKU-location profiled.'),
    sa.Column('history_periods', sa.Integer(), nullable=False, comment='Buckets of demand history (from the first one on record).'),
    sa.Column('nonzero_periods', sa.Integer(), nullable=False, comment='Buckets with non-zero demand.'),
    sa.Column('zero_share', sa.Float(), nullable=False, comment='Share of buckets without demand.'),
    sa.Column('adi', sa.Float(), nullable=False, comment='Average demand interval: buckets per non-zero bucket (inf without demand).'),
    sa.Column('cv2', sa.Float(), nullable=True, comment='Squared coefficient of variation of the non-zero demand sizes.'),
    sa.Column('demand_class', sa.String(length=16), nullable=False, comment='Syntetos-Boylan class: smooth, erratic, intermittent or lumpy.'),
    sa.Column('seasonality_strength', sa.Float(), nullable=True, comment='Autocorrelation at the season lag of the detrended history.'),
    sa.Column('seasonal', sa.Boolean(), nullable=False, comment='True when the seasonality test passes (two seasons of history needed).'),
    sa.Column('periods_since_demand', sa.Integer(), nullable=False, comment='Buckets since the last non-zero demand.'),
    sa.Column('mean_demand', sa.Float(), nullable=False, comment='Mean demand per bucket over the history.'),
    sa.Column('is_new', sa.Boolean(), nullable=False, comment='Too little history to select a model: forecast by a moving average.'),
    sa.Column('is_dead', sa.Boolean(), nullable=False, comment='No demand for a long stretch: forecast zero, flagged for review.'),
    sa.Column('route', sa.String(length=16), nullable=False, comment="How the series is forecast: its class's candidates, or dead, new or short."),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False, comment='When the profile was computed (UTC).'),
    sa.PrimaryKeyConstraint('sku', 'location_id', name=op.f('pk_demand_profile')),
    comment='Demand profile per SKU-location: history, intermittency, variability, seasonality and the forecast route.'
    )
    op.create_table('demand_forecast',
    sa.Column('sku', sa.String(), nullable=False, comment='SKU forecast.'),
    sa.Column('location_id', sa.String(), nullable=False, comment='Location of the SKU-location forecast.'),
    sa.Column('period_start', sa.Date(), nullable=False, comment='First day of the forecast bucket (Monday for weeks).'),
    sa.Column('mean', sa.Float(), nullable=False, comment='Expected demand in the bucket (the unbiased mean replenishment uses).'),
    *[
        sa.Column(f'q{pct:02d}', sa.Float(), nullable=False, comment=QUANTILE_COMMENT.format(pct=pct))
        for pct in (5, 10, 25, 50, 75, 90, 95)
    ],
    sa.Column('model', sa.String(length=128), nullable=False, comment='Model or equal-weight combination (a+b) that produced the mean.'),
    sa.Column('demand_class', sa.String(length=16), nullable=False, comment='Syntetos-Boylan class of the series.'),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False, comment='When the forecast was made (UTC).'),
    sa.PrimaryKeyConstraint('sku', 'location_id', 'period_start', name=op.f('pk_demand_forecast')),
    comment='Demand forecast per SKU-location and bucket over the horizon: mean and quantiles q05..q95.'
    )
    op.create_table('forecast_accuracy',
    sa.Column('scope', sa.String(length=16), nullable=False, comment='series (one SKU-location), class or overall.'),
    sa.Column('subject', sa.String(), nullable=False, comment="sku|location_id for a series, the class name, or 'all'."),
    sa.Column('sku', sa.String(), nullable=True, comment='SKU, for series rows.'),
    sa.Column('location_id', sa.String(), nullable=True, comment='Location, for series rows.'),
    sa.Column('demand_class', sa.String(length=16), nullable=True, comment='Syntetos-Boylan class (series and class rows).'),
    sa.Column('series', sa.Integer(), nullable=False, comment='Series the row summarises (1 for a series row).'),
    sa.Column('points', sa.Integer(), nullable=False, comment='Backtest points (series x windows x horizon).'),
    sa.Column('rmsse', sa.Float(), nullable=True, comment='Root mean squared scaled error of the mean forecast (mean over series).'),
    sa.Column('mase', sa.Float(), nullable=True, comment='Mean absolute scaled error of the median forecast q50 (mean over series).'),
    sa.Column('spl', sa.Float(), nullable=True, comment='Scaled pinball loss over q10, q25, q50, q75, q90 (mean over series).'),
    sa.Column('bias_pct', sa.Float(), nullable=True, comment='100 x sum(forecast - actual) / sum(|actual|) over the backtest.'),
    sa.Column('cover80', sa.Float(), nullable=True, comment='Share of actuals inside the 80% interval [q10, q90].'),
    sa.Column('benchmark_rmsse', sa.Float(), nullable=True, comment='RMSSE of the seasonal-naive benchmark on the same windows.'),
    sa.Column('recent_rmsse', sa.Float(), nullable=True, comment='RMSSE on the most recent backtest window.'),
    sa.Column('earlier_rmsse', sa.Float(), nullable=True, comment='RMSSE on the earlier backtest windows.'),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False, comment='When the backtest ran (UTC).'),
    sa.PrimaryKeyConstraint('scope', 'subject', name=op.f('pk_forecast_accuracy')),
    comment='Rolling-origin backtest of the demand forecast per series, per demand class and overall.'
    )


def downgrade() -> None:
    op.drop_table('forecast_accuracy')
    op.drop_table('demand_forecast')
    op.drop_table('demand_profile')
