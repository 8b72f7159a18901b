"""initial warehouse: contracts, raw extracts, feed loads, quarantine

Revision ID: 0001
Revises: 
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customer',
    sa.Column('customer_id', sa.String(), nullable=False, comment='Customer code.'),
    sa.Column('name', sa.String(), nullable=False, comment='Customer name.'),
    sa.Column('tier', sa.String(), nullable=False, comment='Service tier; sets service level and allocation priority.'),
    sa.Column('region', sa.String(), nullable=False, comment='Sales region of the customer.'),
    sa.Column('notify_email', sa.String(), nullable=True, comment='Address for delay and allocation notices.'),
    sa.Column('source_system', sa.String(), nullable=False, comment='System the row was extracted from (file_drop, tryton, gateway).'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When demand-control loaded the row (UTC).'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customer')),
    comment='Ship-to customers with their service tier and where to notify them.'
    )
    op.create_table('customer_order_line',
    sa.Column('order_id', sa.String(), nullable=False, comment='Sales order number.'),
    sa.Column('line_no', sa.Integer(), nullable=False, comment='Line number within the order.'),
    sa.Column('customer_id', sa.String(), nullable=False, comment='Ordering customer.'),
    sa.Column('sku', sa.String(), nullable=False, comment='SKU ordered.'),
    sa.Column('location_id', sa.String(), nullable=False, comment='Shipping location.'),
    sa.Column('qty_open', sa.Float(), nullable=False, comment='Units still to ship.'),
    sa.Column('promise_date', sa.Date(), nullable=False, comment='Date promised to the customer.'),
    sa.Column('priority', sa.Integer(), nullable=False, comment='Order priority, 1 (highest) to 5.'),
    sa.Column('status', sa.String(), nullable=False, comment='Line status.'),
    sa.Column('source_system', sa.String(), nullable=False, comment='System the row was extracted from (file_drop, tryton, gateway).'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When demand-control loaded the row (UTC).'),
    sa.PrimaryKeyConstraint('order_id', 'line_no', name=op.f('pk_customer_order_line')),
    comment='Open customer order lines: what each customer is waiting for and the date promised.'
    )
    op.create_table('demand_history',
    sa.Column('sku', sa.String(), nullable=False, comment='SKU demanded.'),
    sa.Column('location_id', sa.String(), nullable=False, comment='Location that served the demand.'),
    sa.Column('period_start', sa.Date(), nullable=False, comment='First day of the bucket (Monday for weeks).'),
    sa.Column('qty', sa.Float(), nullable=False, comment='Units demanded in the bucket.'),
    sa.Column('source_system', sa.String(), nullable=False, comment='System the row was extracted from (file_drop, tryton, gateway).'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When demand-control loaded the row (UTC).'),
    sa.PrimaryKeyConstraint('sku', 'location_id', 'period_start', name=op.f('pk_demand_history')),
    comment='Demand per SKU-location and bucket (shipped or ordered units), the forecasting input.'
    )
    op.create_table('feed_load',
    sa.Column('load_id', sa.Integer(), autoincrement=True, nullable=False, comment='Load number.'),
    sa.Column('object', sa.String(length=64), nullable=False, comment='Canonical object loaded.'),
    sa.Column('source_system', sa.String(length=32), nullable=False, comment='System the feed came from.'),
    sa.Column('source_uri', sa.Text(), nullable=False, comment='File or endpoint the feed was read from.'),
    sa.Column('source_modified_at', sa.DateTime(timezone=True), nullable=True, comment='When the source last changed the feed.'),
    sa.Column('extracted_at', sa.DateTime(timezone=True), nullable=False, comment='When the raw extract was taken.'),
    sa.Column('rows_extracted', sa.Integer(), nullable=False, comment='Rows in the delivered feed.'),
    sa.Column('columns_found', sa.Text(), nullable=False, comment='Columns the feed delivered, comma-separated.'),
    sa.Column('staged_at', sa.DateTime(timezone=True), nullable=True, comment='When validation and staging finished.'),
    sa.Column('rows_staged', sa.Integer(), nullable=True, comment='Rows that passed every rule and were staged.'),
    sa.Column('rows_quarantined', sa.Integer(), nullable=True, comment='Rows held back in quarantine.'),
    sa.Column('structural_errors', sa.Text(), nullable=True, comment='Feed-level problems that blocked the load, one per line.'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='extracted, staged or rejected.'),
    sa.PrimaryKeyConstraint('load_id', name=op.f('pk_feed_load')),
    comment='One row per feed extract: where it came from, how fresh it is and what validation did with it.'
    )
    with op.batch_alter_table('feed_load', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_load_object'), ['object'], unique=False)

    op.create_table('inventory_position',
    sa.Column('sku', sa.String(), nullable=False, comment='SKU counted.'),
    sa.Column('location_id', sa.String(), nullable=False, comment='Location holding the stock.'),
    sa.Column('as_of', sa.Date(), nullable=False, comment='Date of the snapshot.'),
    sa.Column('on_hand', sa.Float(), nullable=False, comment='Physical units on hand.'),
    sa.Column('allocated', sa.Float(), nullable=False, comment='Units reserved for released orders.'),
    sa.Column('in_transit', sa.Float(), nullable=False, comment='Units shipped to this location, not yet received.'),
    sa.Column('source_system', sa.String(), nullable=False, comment='System the row was extracted from (file_drop, tryton, gateway).'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When demand-control loaded the row (UTC).'),
    sa.PrimaryKeyConstraint('sku', 'location_id', 'as_of', name=op.f('pk_inventory_position')),
    comment='Stock on hand, allocated and in transit per SKU-location at a point in time.'
    )
    op.create_table('location',
    sa.Column('location_id', sa.String(), nullable=False, comment='Location code.'),
    sa.Column('name', sa.String(), nullable=False, comment='Location name.'),
    sa.Column('region', sa.String(), nullable=False, comment='Sales region the location serves.'),
    sa.Column('type', sa.String(), nullable=False, comment='Kind of location.'),
    sa.Column('source_system', sa.String(), nullable=False, comment='System the row was extracted from (file_drop, tryton, gateway).'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When demand-control loaded the row (UTC).'),
    sa.PrimaryKeyConstraint('location_id', name=op.f('pk_location')),
    comment='Distribution centres, stores and supplier sites that hold or ship stock.'
    )
    op.create_table('order_event',
    sa.Column('event_id', sa.String(), nullable=False, comment="Sender's event id (the webhook id)."),
    sa.Column('type', sa.String(), nullable=False, comment='What happened.'),
    sa.Column('order_id', sa.String(), nullable=False, comment='Sales order concerned.'),
    sa.Column('line_no', sa.Integer(), nullable=False, comment='Order line concerned.'),
    sa.Column('changes', sa.Text(), nullable=True, comment='Changed fields and their new values.'),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False, comment='When the order system recorded the event.'),
    sa.Column('source_system', sa.String(), nullable=False, comment='System the row was extracted from (file_drop, tryton, gateway).'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When demand-control loaded the row (UTC).'),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_order_event')),
    comment='A customer order created, changed or cancelled outside the nightly extract.'
    )
    op.create_table('pipeline_opportunity',
    sa.Column('opportunity_id', sa.String(), nullable=False, comment='CRM opportunity id.'),
    sa.Column('sku', sa.String(), nullable=False, comment='SKU quoted.'),
    sa.Column('customer_id', sa.String(), nullable=False, comment='Prospective customer.'),
    sa.Column('qty', sa.Float(), nullable=False, comment='Units quoted.'),
    sa.Column('probability', sa.Float(), nullable=False, comment='Chance of winning (0..1).'),
    sa.Column('expected_date', sa.Date(), nullable=False, comment='Date the order would be placed.'),
    sa.Column('stage', sa.String(), nullable=False, comment='Sales stage.'),
    sa.Column('source_system', sa.String(), nullable=False, comment='System the row was extracted from (file_drop, tryton, gateway).'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When demand-control loaded the row (UTC).'),
    sa.PrimaryKeyConstraint('opportunity_id', 'sku', name=op.f('pk_pipeline_opportunity')),
    comment='CRM opportunities: demand customers may place, with its probability and timing.'
    )
    op.create_table('product',
    sa.Column('sku', sa.String(), nullable=False, comment="Stock-keeping unit, the item's code."),
    sa.Column('description', sa.String(), nullable=False, comment='Item name as the customer sees it.'),
    sa.Column('category', sa.String(), nullable=False, comment='Merchandise category; drives ownership and service level.'),
    sa.Column('unit', sa.String(), nullable=False, comment='Unit of measure of every quantity of this SKU.'),
    sa.Column('unit_cost', sa.Float(), nullable=False, comment='Standard cost per unit.'),
    sa.Column('unit_price', sa.Float(), nullable=False, comment='List price per unit.'),
    sa.Column('substitute_skus', sa.String(), nullable=True, comment="SKUs that may replace this one, separated by ';'."),
    sa.Column('active', sa.Boolean(), nullable=False, comment='False once the SKU is discontinued.'),
    sa.Column('source_system', sa.String(), nullable=False, comment='System the row was extracted from (file_drop, tryton, gateway).'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When demand-control loaded the row (UTC).'),
    sa.PrimaryKeyConstraint('sku', name=op.f('pk_product')),
    comment='Sellable items (SKUs) with their category, unit economics and allowed substitutes.'
    )
    op.create_table('purchase_order_line',
    sa.Column('po_id', sa.String(), nullable=False, comment='Purchase order number.'),
    sa.Column('line_no', sa.Integer(), nullable=False, comment='Line number within the order.'),
    sa.Column('supplier_id', sa.String(), nullable=False, comment='Supplier delivering.'),
    sa.Column('sku', sa.String(), nullable=False, comment='SKU ordered.'),
    sa.Column('location_id', sa.String(), nullable=False, comment='Receiving location.'),
    sa.Column('qty_open', sa.Float(), nullable=False, comment='Units still to receive.'),
    sa.Column('order_date', sa.Date(), nullable=False, comment='Date the order was placed.'),
    sa.Column('expected_date', sa.Date(), nullable=False, comment='Date the buyer expects the goods (order date + lead time).'),
    sa.Column('confirmed_date', sa.Date(), nullable=True, comment='Delivery date the supplier confirmed.'),
    sa.Column('status', sa.String(), nullable=False, comment='Line status.'),
    sa.Column('source_system', sa.String(), nullable=False, comment='System the row was extracted from (file_drop, tryton, gateway).'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When demand-control loaded the row (UTC).'),
    sa.PrimaryKeyConstraint('po_id', 'line_no', name=op.f('pk_purchase_order_line')),
    comment='Open purchase order lines: supply on its way with the expected and confirmed dates.'
    )
    op.create_table('quarantine',
    sa.Column('quarantine_id', sa.Integer(), autoincrement=True, nullable=False, comment='Row number.'),
    sa.Column('load_id', sa.Integer(), nullable=False, comment='feed_load row that delivered the bad row.'),
    sa.Column('object', sa.String(length=64), nullable=False, comment='Canonical object of the bad row.'),
    sa.Column('key', sa.Text(), nullable=False, comment="Key of the bad row, key columns joined by '|'."),
    sa.Column('rule', sa.String(length=128), nullable=False, comment='Rule the row broke (e.g. min_value, references:product.sku).'),
    sa.Column('column', sa.String(length=64), nullable=False, comment='Column holding the offending value.'),
    sa.Column('offending_value', sa.Text(), nullable=True, comment='The value that broke the rule, as text.'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When the row was quarantined.'),
    sa.PrimaryKeyConstraint('quarantine_id', name=op.f('pk_quarantine')),
    comment='Rows held back from staged tables, with the rule they broke; the good rows of the feed went on.'
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_load_id'), ['load_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quarantine_object'), ['object'], unique=False)

    op.create_table('raw_customer',
    sa.Column('load_id', sa.Integer(), nullable=False, comment='feed_load row this extract belongs to.'),
    sa.Column('row_number', sa.Integer(), nullable=False, comment='Position of the row in the delivered file (1-based).'),
    sa.Column('customer_id', sa.Text(), nullable=True, comment='As delivered: Customer code.'),
    sa.Column('name', sa.Text(), nullable=True, comment='As delivered: Customer name.'),
    sa.Column('tier', sa.Text(), nullable=True, comment='As delivered: Service tier; sets service level and allocation priority.'),
    sa.Column('region', sa.Text(), nullable=True, comment='As delivered: Sales region of the customer.'),
    sa.Column('notify_email', sa.Text(), nullable=True, comment='As delivered: Address for delay and allocation notices.'),
    comment='Latest raw extract of customer, as delivered (text), before validation.'
    )
    op.create_table('raw_customer_order_line',
    sa.Column('load_id', sa.Integer(), nullable=False, comment='feed_load row this extract belongs to.'),
    sa.Column('row_number', sa.Integer(), nullable=False, comment='Position of the row in the delivered file (1-based).'),
    sa.Column('order_id', sa.Text(), nullable=True, comment='As delivered: Sales order number.'),
    sa.Column('line_no', sa.Text(), nullable=True, comment='As delivered: Line number within the order.'),
    sa.Column('customer_id', sa.Text(), nullable=True, comment='As delivered: Ordering customer.'),
    sa.Column('sku', sa.Text(), nullable=True, comment='As delivered: SKU ordered.'),
    sa.Column('location_id', sa.Text(), nullable=True, comment='As delivered: Shipping location.'),
    sa.Column('qty_open', sa.Text(), nullable=True, comment='As delivered: Units still to ship.'),
    sa.Column('promise_date', sa.Text(), nullable=True, comment='As delivered: Date promised to the customer.'),
    sa.Column('priority', sa.Text(), nullable=True, comment='As delivered: Order priority, 1 (highest) to 5.'),
    sa.Column('status', sa.Text(), nullable=True, comment='As delivered: Line status.'),
    comment='Latest raw extract of customer_order_line, as delivered (text), before validation.'
    )
    op.create_table('raw_demand_history',
    sa.Column('load_id', sa.Integer(), nullable=False, comment='feed_load row this extract belongs to.'),
    sa.Column('row_number', sa.Integer(), nullable=False, comment='Position of the row in the delivered file (1-based).'),
    sa.Column('sku', sa.Text(), nullable=True, comment='As delivered: SKU demanded.'),
    sa.Column('location_id', sa.Text(), nullable=True, comment='As delivered: Location that served the demand.'),
    sa.Column('period_start', sa.Text(), nullable=True, comment='As delivered: First day of the bucket (Monday for weeks).'),
    sa.Column('qty', sa.Text(), nullable=True, comment='As delivered: Units demanded in the bucket.'),
    comment='Latest raw extract of demand_history, as delivered (text), before validation.'
    )
    op.create_table('raw_inventory_position',
    sa.Column('load_id', sa.Integer(), nullable=False, comment='feed_load row this extract belongs to.'),
    sa.Column('row_number', sa.Integer(), nullable=False, comment='Position of the row in the delivered file (1-based).'),
    sa.Column('sku', sa.Text(), nullable=True, comment='As delivered: SKU counted.'),
    sa.Column('location_id', sa.Text(), nullable=True, comment='As delivered: Location holding the stock.'),
    sa.Column('as_of', sa.Text(), nullable=True, comment='As delivered: Date of the snapshot.'),
    sa.Column('on_hand', sa.Text(), nullable=True, comment='As delivered: Physical units on hand.'),
    sa.Column('allocated', sa.Text(), nullable=True, comment='As delivered: Units reserved for released orders.'),
    sa.Column('in_transit', sa.Text(), nullable=True, comment='As delivered: Units shipped to this location, not yet received.'),
    comment='Latest raw extract of inventory_position, as delivered (text), before validation.'
    )
    op.create_table('raw_location',
    sa.Column('load_id', sa.Integer(), nullable=False, comment='feed_load row this extract belongs to.'),
    sa.Column('row_number', sa.Integer(), nullable=False, comment='Position of the row in the delivered file (1-based).'),
    sa.Column('location_id', sa.Text(), nullable=True, comment='As delivered: Location code.'),
    sa.Column('name', sa.Text(), nullable=True, comment='As delivered: Location name.'),
    sa.Column('region', sa.Text(), nullable=True, comment='As delivered: Sales region the location serves.'),
    sa.Column('type', sa.Text(), nullable=True, comment='As delivered: Kind of location.'),
    comment='Latest raw extract of location, as delivered (text), before validation.'
    )
    op.create_table('raw_pipeline_opportunity',
    sa.Column('load_id', sa.Integer(), nullable=False, comment='feed_load row this extract belongs to.'),
    sa.Column('row_number', sa.Integer(), nullable=False, comment='Position of the row in the delivered file (1-based).'),
    sa.Column('opportunity_id', sa.Text(), nullable=True, comment='As delivered: CRM opportunity id.'),
    sa.Column('sku', sa.Text(), nullable=True, comment='As delivered: SKU quoted.'),
    sa.Column('customer_id', sa.Text(), nullable=True, comment='As delivered: Prospective customer.'),
    sa.Column('qty', sa.Text(), nullable=True, comment='As delivered: Units quoted.'),
    sa.Column('probability', sa.Text(), nullable=True, comment='As delivered: Chance of winning (0..1).'),
    sa.Column('expected_date', sa.Text(), nullable=True, comment='As delivered: Date the order would be placed.'),
    sa.Column('stage', sa.Text(), nullable=True, comment='As delivered: Sales stage.'),
    comment='Latest raw extract of pipeline_opportunity, as delivered (text), before validation.'
    )
    op.create_table('raw_product',
    sa.Column('load_id', sa.Integer(), nullable=False, comment='feed_load row this extract belongs to.'),
    sa.Column('row_number', sa.Integer(), nullable=False, comment='Position of the row in the delivered file (1-based).'),
    sa.Column('sku', sa.Text(), nullable=True, comment="As delivered: Stock-keeping unit, the item's code."),
    sa.Column('description', sa.Text(), nullable=True, comment='As delivered: Item name as the customer sees it.'),
    sa.Column('category', sa.Text(), nullable=True, comment='As delivered: Merchandise category; drives ownership and service level.'),
    sa.Column('unit', sa.Text(), nullable=True, comment='As delivered: Unit of measure of every quantity of this SKU.'),
    sa.Column('unit_cost', sa.Text(), nullable=True, comment='As delivered: Standard cost per unit.'),
    sa.Column('unit_price', sa.Text(), nullable=True, comment='As delivered: List price per unit.'),
    sa.Column('substitute_skus', sa.Text(), nullable=True, comment="As delivered: SKUs that may replace this one, separated by ';'."),
    sa.Column('active', sa.Text(), nullable=True, comment='As delivered: False once the SKU is discontinued.'),
    comment='Latest raw extract of product, as delivered (text), before validation.'
    )
    op.create_table('raw_purchase_order_line',
    sa.Column('load_id', sa.Integer(), nullable=False, comment='feed_load row this extract belongs to.'),
    sa.Column('row_number', sa.Integer(), nullable=False, comment='Position of the row in the delivered file (1-based).'),
    sa.Column('po_id', sa.Text(), nullable=True, comment='As delivered: Purchase order number.'),
    sa.Column('line_no', sa.Text(), nullable=True, comment='As delivered: Line number within the order.'),
    sa.Column('supplier_id', sa.Text(), nullable=True, comment='As delivered: Supplier delivering.'),
    sa.Column('sku', sa.Text(), nullable=True, comment='As delivered: SKU ordered.'),
    sa.Column('location_id', sa.Text(), nullable=True, comment='As delivered: Receiving location.'),
    sa.Column('qty_open', sa.Text(), nullable=True, comment='As delivered: Units still to receive.'),
    sa.Column('order_date', sa.Text(), nullable=True, comment='As delivered: Date the order was placed.'),
    sa.Column('expected_date', sa.Text(), nullable=True, comment='As delivered: Date the buyer expects the goods (order date + lead time).'),
    sa.Column('confirmed_date', sa.Text(), nullable=True, comment='As delivered: Delivery date the supplier confirmed.'),
    sa.Column('status', sa.Text(), nullable=True, comment='As delivered: Line status.'),
    comment='Latest raw extract of purchase_order_line, as delivered (text), before validation.'
    )
    op.create_table('raw_sourcing',
    sa.Column('load_id', sa.Integer(), nullable=False, comment='feed_load row this extract belongs to.'),
    sa.Column('row_number', sa.Integer(), nullable=False, comment='Position of the row in the delivered file (1-based).'),
    sa.Column('sku', sa.Text(), nullable=True, comment='As delivered: SKU sourced.'),
    sa.Column('location_id', sa.Text(), nullable=True, comment='As delivered: Receiving location.'),
    sa.Column('supplier_id', sa.Text(), nullable=True, comment='As delivered: Supplier of the lane.'),
    sa.Column('lead_time_days', sa.Text(), nullable=True, comment='As delivered: Mean lead time of the lane in days.'),
    sa.Column('lead_time_std_days', sa.Text(), nullable=True, comment="As delivered: Standard deviation of the lane's lead time in days."),
    sa.Column('moq', sa.Text(), nullable=True, comment='As delivered: Minimum order quantity in units.'),
    sa.Column('pack_size', sa.Text(), nullable=True, comment='As delivered: Order multiple in units.'),
    sa.Column('unit_cost', sa.Text(), nullable=True, comment='As delivered: Purchase price per unit on this lane.'),
    sa.Column('primary', sa.Text(), nullable=True, comment='As delivered: True for the default supplier of the SKU-location.'),
    comment='Latest raw extract of sourcing, as delivered (text), before validation.'
    )
    op.create_table('raw_supplier',
    sa.Column('load_id', sa.Integer(), nullable=False, comment='feed_load row this extract belongs to.'),
    sa.Column('row_number', sa.Integer(), nullable=False, comment='Position of the row in the delivered file (1-based).'),
    sa.Column('supplier_id', sa.Text(), nullable=True, comment='As delivered: Supplier code.'),
    sa.Column('name', sa.Text(), nullable=True, comment='As delivered: Supplier name.'),
    sa.Column('contact', sa.Text(), nullable=True, comment='As delivered: Contact address for follow-ups.'),
    sa.Column('reliability', sa.Text(), nullable=True, comment='As delivered: Share of receipts delivered on time (0..1), derived.'),
    sa.Column('lead_time_mean_days', sa.Text(), nullable=True, comment='As delivered: Typical quoted lead time in days.'),
    sa.Column('lead_time_std_days', sa.Text(), nullable=True, comment='As delivered: Spread of the actual lead time in days.'),
    comment='Latest raw extract of supplier, as delivered (text), before validation.'
    )
    op.create_table('sourcing',
    sa.Column('sku', sa.String(), nullable=False, comment='SKU sourced.'),
    sa.Column('location_id', sa.String(), nullable=False, comment='Receiving location.'),
    sa.Column('supplier_id', sa.String(), nullable=False, comment='Supplier of the lane.'),
    sa.Column('lead_time_days', sa.Float(), nullable=False, comment='Mean lead time of the lane in days.'),
    sa.Column('lead_time_std_days', sa.Float(), nullable=False, comment="Standard deviation of the lane's lead time in days."),
    sa.Column('moq', sa.Float(), nullable=False, comment='Minimum order quantity in units.'),
    sa.Column('pack_size', sa.Float(), nullable=False, comment='Order multiple in units.'),
    sa.Column('unit_cost', sa.Float(), nullable=False, comment='Purchase price per unit on this lane.'),
    sa.Column('primary', sa.Boolean(), nullable=False, comment='True for the default supplier of the SKU-location.'),
    sa.Column('source_system', sa.String(), nullable=False, comment='System the row was extracted from (file_drop, tryton, gateway).'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When demand-control loaded the row (UTC).'),
    sa.PrimaryKeyConstraint('sku', 'location_id', 'supplier_id', name=op.f('pk_sourcing')),
    comment='Which supplier replenishes which SKU at which location, with lead time and order rules.'
    )
    op.create_table('supplier',
    sa.Column('supplier_id', sa.String(), nullable=False, comment='Supplier code.'),
    sa.Column('name', sa.String(), nullable=False, comment='Supplier name.'),
    sa.Column('contact', sa.String(), nullable=True, comment='Contact address for follow-ups.'),
    sa.Column('reliability', sa.Float(), nullable=False, comment='Share of receipts delivered on time (0..1), derived.'),
    sa.Column('lead_time_mean_days', sa.Float(), nullable=True, comment='Typical quoted lead time in days.'),
    sa.Column('lead_time_std_days', sa.Float(), nullable=True, comment='Spread of the actual lead time in days.'),
    sa.Column('source_system', sa.String(), nullable=False, comment='System the row was extracted from (file_drop, tryton, gateway).'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When demand-control loaded the row (UTC).'),
    sa.PrimaryKeyConstraint('supplier_id', name=op.f('pk_supplier')),
    comment='Vendors, their contact and how reliably they deliver on time.'
    )
    op.create_table('supplier_event',
    sa.Column('event_id', sa.String(), nullable=False, comment="Sender's event id (the webhook id)."),
    sa.Column('supplier_id', sa.String(), nullable=False, comment='Supplier that sent the event.'),
    sa.Column('type', sa.String(), nullable=False, comment='What happened.'),
    sa.Column('po_id', sa.String(), nullable=False, comment='Purchase order concerned.'),
    sa.Column('line_no', sa.Integer(), nullable=False, comment='Purchase order line concerned.'),
    sa.Column('new_date', sa.Date(), nullable=True, comment='New delivery date, for delays and confirmations.'),
    sa.Column('new_qty', sa.Float(), nullable=True, comment='New quantity, for shortfalls.'),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False, comment='When the supplier recorded the event.'),
    sa.Column('source_system', sa.String(), nullable=False, comment='System the row was extracted from (file_drop, tryton, gateway).'),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False, comment='When demand-control loaded the row (UTC).'),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_supplier_event')),
    comment="A supplier's signal about a purchase order line: delay, confirmation, shortfall, cancellation."
    )


def downgrade() -> None:
    op.drop_table('supplier_event')
    op.drop_table('supplier')
    op.drop_table('sourcing')
    op.drop_table('raw_supplier')
    op.drop_table('raw_sourcing')
    op.drop_table('raw_purchase_order_line')
    op.drop_table('raw_product')
    op.drop_table('raw_pipeline_opportunity')
    op.drop_table('raw_location')
    op.drop_table('raw_inventory_position')
    op.drop_table('raw_demand_history')
    op.drop_table('raw_customer_order_line')
    op.drop_table('raw_customer')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_object'))
        batch_op.drop_index(batch_op.f('ix_quarantine_load_id'))

    op.drop_table('quarantine')
    op.drop_table('purchase_order_line')
    op.drop_table('product')
    op.drop_table('pipeline_opportunity')
    op.drop_table('order_event')
    op.drop_table('location')
    op.drop_table('inventory_position')
    with op.batch_alter_table('feed_load', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_load_object'))

    op.drop_table('feed_load')
    op.drop_table('demand_history')
    op.drop_table('customer_order_line')
    op.drop_table('customer')
