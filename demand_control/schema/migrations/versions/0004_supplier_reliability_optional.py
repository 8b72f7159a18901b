"""supplier reliability is derived from receipts and may be unknown

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


OLD_RAW = "As delivered: Share of receipts delivered on time (0..1), derived."
NEW_RAW = "As delivered: Share of receipts delivered on time (0..1), derived; empty until receipts have been seen."


def upgrade() -> None:
    with op.batch_alter_table("raw_supplier") as batch:
        batch.alter_column("reliability", existing_type=sa.Text(), existing_nullable=True, comment=NEW_RAW, existing_comment=OLD_RAW)
    with op.batch_alter_table("supplier") as batch:
        batch.alter_column(
            "reliability",
            existing_type=sa.Float(),
            nullable=True,
            comment="Share of receipts delivered on time (0..1), derived; empty until receipts have been seen.",
            existing_comment="Share of receipts delivered on time (0..1), derived.",
        )


def downgrade() -> None:
    with op.batch_alter_table("raw_supplier") as batch:
        batch.alter_column("reliability", existing_type=sa.Text(), existing_nullable=True, comment=OLD_RAW, existing_comment=NEW_RAW)
    with op.batch_alter_table("supplier") as batch:
        batch.alter_column(
            "reliability",
            existing_type=sa.Float(),
            nullable=False,
            comment="Share of receipts delivered on time (0..1), derived.",
            existing_comment="Share of receipts delivered on time (0..1), derived; empty until receipts have been seen.",
        )
