"""inventory policy and projection

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inventory_policy',
    sa.Column('sku', sa.String(), nullable=False, comment='SKU planned.'),
    sa.Column('location_id', sa.String(), nullable=False, comment='DC planned.'),
    sa.Column('demand_class', sa.String(length=16), nullable=True, comment='Syntetos-Boylan class of the series (decides the safety-stock method).'),
    sa.Column('tier', sa.String(length=16), nullable=True, comment='Strictest customer tier waiting on the SKU-location (sets the service level).'),
    sa.Column('category', sa.String(), nullable=True, comment='Merchandise category of the SKU.'),
    sa.Column('service_level', sa.Float(), nullable=True, comment='Cycle service level aimed at (share of cycles without a stockout).'),
    sa.Column('z', sa.Float(), nullable=True, comment='Standard normal quantile of the service level.'),
    sa.Column('mean_daily_demand', sa.Float(), nullable=True, comment='Forecast mean demand per day over lead time plus review period.'),
    sa.Column('demand_std_per_bucket', sa.Float(), nullable=True, comment='Forecast-error standard deviation per bucket, from the 80% interval.'),
    sa.Column('lead_time_days', sa.Float(), nullable=True, comment='Mean lead time of the primary sourcing lane, days.'),
    sa.Column('lead_time_std_days', sa.Float(), nullable=True, comment='Standard deviation of that lead time, days.'),
    sa.Column('safety_stock', sa.Float(), nullable=True, comment='Units held against forecast error and lead-time variability.'),
    sa.Column('reorder_point', sa.Float(), nullable=True, comment='Mean lead-time demand plus safety stock: order when the position falls to it.'),
    sa.Column('order_up_to', sa.Float(), nullable=True, comment='Reorder point plus mean demand over the review period.'),
    sa.Column('method', sa.String(length=32), nullable=True, comment='normal (smooth, erratic) or lead_time_quantile (intermittent, lumpy).'),
    sa.Column('supplier_id', sa.String(), nullable=True, comment='Supplier of the lane the policy uses.'),
    sa.Column('moq', sa.Float(), nullable=True, comment='Minimum order quantity of that lane.'),
    sa.Column('pack_size', sa.Float(), nullable=True, comment='Order multiple of that lane.'),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False, comment='When the policy was computed (UTC).'),
    sa.PrimaryKeyConstraint('sku', 'location_id', name=op.f('pk_inventory_policy')),
    comment='Inventory policy per SKU-location: service level, safety stock, reorder point and order-up-to level.'
    )
    op.create_table('projected_inventory',
    sa.Column('sku', sa.String(), nullable=False, comment='SKU projected.'),
    sa.Column('location_id', sa.String(), nullable=False, comment='DC projected.'),
    sa.Column('period_start', sa.Date(), nullable=False, comment='First day of the bucket.'),
    sa.Column('bucket', sa.Integer(), nullable=False, comment='Bucket number from the current one (0).'),
    sa.Column('opening', sa.Float(), nullable=False, comment='Projected available balance at the start of the bucket.'),
    sa.Column('receipts', sa.Float(), nullable=False, comment='Open purchase-order quantity due in the bucket (confirmed, else expected date).'),
    sa.Column('forecast', sa.Float(), nullable=False, comment='Forecast mean demand of the bucket.'),
    sa.Column('committed', sa.Float(), nullable=False, comment='Open customer-order quantity promised in the bucket.'),
    sa.Column('demand', sa.Float(), nullable=False, comment='max(forecast, committed): orders consume the forecast.'),
    sa.Column('closing', sa.Float(), nullable=False, comment='Projected available balance (PAB) at the end of the bucket.'),
    sa.Column('safety_stock', sa.Float(), nullable=False, comment='Safety stock of the SKU-location.'),
    sa.Column('below_safety_stock', sa.Boolean(), nullable=False, comment='closing < safety_stock.'),
    sa.Column('stockout', sa.Boolean(), nullable=False, comment='closing < 0.'),
    sa.Column('days_of_cover', sa.Float(), nullable=True, comment='max(closing, 0) / average daily forecast; empty when there is no forecast demand.'),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False, comment='When the projection was computed (UTC).'),
    sa.PrimaryKeyConstraint('sku', 'location_id', 'period_start', name=op.f('pk_projected_inventory')),
    comment='Projected available balance per SKU-location and bucket over the forecast horizon.'
    )


def downgrade() -> None:
    op.drop_table('projected_inventory')
    op.drop_table('inventory_policy')
