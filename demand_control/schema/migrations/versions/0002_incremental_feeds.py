"""incremental feeds: extract mode, cursor and removals

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RAW_TABLES = [
    "raw_product", "raw_location", "raw_customer", "raw_supplier", "raw_sourcing", "raw_inventory_position",
    "raw_customer_order_line", "raw_purchase_order_line", "raw_demand_history", "raw_pipeline_opportunity",
]


def upgrade() -> None:
    with op.batch_alter_table("feed_load") as batch:
        batch.add_column(sa.Column(
            "mode", sa.String(16), nullable=False, server_default="snapshot",
            comment="snapshot: the feed is the whole object; incremental: only what changed since the cursor.",
        ))
        batch.add_column(sa.Column(
            "cursor", sa.Text(), nullable=True,
            comment="Source high-water mark after this extract (e.g. Tryton last_modified_at).",
        ))
        batch.add_column(sa.Column(
            "rows_removed", sa.Integer(), nullable=False, server_default="0", comment="Rows the source reported gone.",
        ))
    for table in RAW_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(
                "change", sa.String(8), nullable=False, server_default="upsert",
                comment="upsert: the row as the source holds it now; remove: the source no longer holds it as open.",
            ))


def downgrade() -> None:
    for table in RAW_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("change")
    with op.batch_alter_table("feed_load") as batch:
        batch.drop_column("rows_removed")
        batch.drop_column("cursor")
        batch.drop_column("mode")
