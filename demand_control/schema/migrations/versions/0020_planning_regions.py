"""planning regions: indexes on location_id for the tables a region's run reads and replaces, the
regions' balance summaries and the cross-region step's transfer sources

Revision ID: 0020
Revises: 0015
Create Date: 2026-12-07 04:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

REGION_FILTERED_TABLES = (
    'demand_forecast', 'forecast_accuracy', 'inventory_policy', 'projected_inventory', 'exception_lifecycle',
    'planning_exceptions', 'recommended_actions', 'allocation_scenarios', 'allocation_lines',
    'customer_order_line', 'purchase_order_line', 'inventory_position', 'demand_history',
)


def upgrade() -> None:
    for name in REGION_FILTERED_TABLES:
        op.create_index(f'ix_{name}_location_id', name, ['location_id'])
    op.create_index('ix_location_region', 'location', ['region'])
    op.create_table('sku_location_balance',
    sa.Column('sku', sa.String(), nullable=False, comment='SKU.'),
    sa.Column('location_id', sa.String(), nullable=False, comment='DC.'),
    sa.Column('region', sa.String(), nullable=False, comment='Planning region of the DC (location.region).'),
    sa.Column('surplus', sa.Float(), nullable=False, comment='Units it could give away and never fall below safety stock over the horizon (0: none).'),
    sa.Column('shortfall', sa.Float(), nullable=False, comment='Units it lacks below safety stock at its worst bucket (0: none).'),
    sa.Column('forecast_value', sa.Float(), nullable=False, comment="The horizon's forecast units × unit price (else unit cost)."),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False, comment="When its region's projection was made."),
    sa.PrimaryKeyConstraint('sku', 'location_id', name=op.f('pk_sku_location_balance')),
    comment="Each region's summary for the others, one row per SKU-location: stock to spare, shortfall below safety stock, forecast value; written by the region's projection."
    )
    op.create_table('forecast_value_ranks',
    sa.Column('sku', sa.String(), nullable=False, comment='SKU.'),
    sa.Column('location_id', sa.String(), nullable=False, comment='DC.'),
    sa.Column('forecast_value', sa.Float(), nullable=False, comment="The horizon's forecast units × unit price (else unit cost)."),
    sa.Column('share_before', sa.Float(), nullable=False, comment="Share of the whole panel's forecast value held by the SKU-locations worth more (class A: below 0.8)."),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False, comment='When the global step ranked it.'),
    sa.PrimaryKeyConstraint('sku', 'location_id', name=op.f('pk_forecast_value_ranks')),
    comment="The cross-region step's ranking of every SKU-location's forecast value across all regions: the ABC class a region's plan grades degraded forecasts by."
    )
    op.create_index('ix_forecast_value_ranks_location_id', 'forecast_value_ranks', ['location_id'])
    op.create_index('ix_sku_location_balance_region', 'sku_location_balance', ['region'])
    op.create_table('transfer_sources',
    sa.Column('sku', sa.String(), nullable=False, comment='SKU short at the receiving DC.'),
    sa.Column('location_id', sa.String(), nullable=False, comment='Receiving DC (short of safety stock).'),
    sa.Column('region', sa.String(), nullable=False, comment='Region of the receiving DC.'),
    sa.Column('from_location_id', sa.String(), nullable=False, comment='DC that should send the units: the largest surplus of the SKU in any region.'),
    sa.Column('from_region', sa.String(), nullable=False, comment='Region of the sending DC.'),
    sa.Column('surplus', sa.Float(), nullable=False, comment='Units the sending DC can spare.'),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False, comment='When the global step decided it.'),
    sa.PrimaryKeyConstraint('sku', 'location_id', name=op.f('pk_transfer_sources')),
    comment="The cross-region step's decision: which DC (of any region) supplies each short SKU-location; the regions' actions propose the transfers."
    )


def downgrade() -> None:
    op.drop_table('transfer_sources')
    op.drop_index('ix_forecast_value_ranks_location_id', table_name='forecast_value_ranks')
    op.drop_table('forecast_value_ranks')
    op.drop_index('ix_sku_location_balance_region', table_name='sku_location_balance')
    op.drop_table('sku_location_balance')
    op.drop_index('ix_location_region', table_name='location')
    for name in REGION_FILTERED_TABLES:
        op.drop_index(f'ix_{name}_location_id', table_name=name)
