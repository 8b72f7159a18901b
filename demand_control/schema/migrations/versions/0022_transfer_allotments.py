"""transfer_sources carries each short DC's allotment: a SKU's spare shared among the DCs short of it (fair
share), so no sender is promised more than it can spare

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 22:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

COMMENTS = {
    'from_location_id': (
        'DC that should send the units: the largest surplus of the SKU in any region.',
        "DC that should send the units: of any region, the one with the most of the SKU's spare left when this DC's turn came.",
    ),
    'surplus': (
        'Units the sending DC can spare.',
        'Units the sending DC can spare (its whole spare, before any DC takes a share).',
    ),
}
TABLE_COMMENTS = (
    "The cross-region step's decision: which DC (of any region) supplies each short SKU-location; the regions' actions propose the transfers.",
    "The cross-region step's decision: each SKU's spare shared among the DCs (of any region) short of it, with the sender and the units allotted to each; the regions' actions propose the transfers.",
)
ALLOTTED = "Units this DC may take from the sender: its fair share of the SKU's spare across the network (shortfall × min(1, spare ÷ shortfall, summed over the SKU's DCs))."


def upgrade() -> None:
    with op.batch_alter_table('transfer_sources') as batch:
        batch.add_column(sa.Column('allotted', sa.Float(), nullable=True, comment=ALLOTTED))
        batch.alter_column('from_location_id', existing_type=sa.String(), existing_nullable=False,
                           comment=COMMENTS['from_location_id'][1], existing_comment=COMMENTS['from_location_id'][0])
        batch.alter_column('surplus', existing_type=sa.Float(), existing_nullable=False,
                           comment=COMMENTS['surplus'][1], existing_comment=COMMENTS['surplus'][0])
    if op.get_bind().dialect.name != 'sqlite':  # SQLite keeps no table comments
        op.create_table_comment('transfer_sources', TABLE_COMMENTS[1], existing_comment=TABLE_COMMENTS[0])


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        op.create_table_comment('transfer_sources', TABLE_COMMENTS[0], existing_comment=TABLE_COMMENTS[1])
    with op.batch_alter_table('transfer_sources') as batch:
        batch.alter_column('surplus', existing_type=sa.Float(), existing_nullable=False,
                           comment=COMMENTS['surplus'][0], existing_comment=COMMENTS['surplus'][1])
        batch.alter_column('from_location_id', existing_type=sa.String(), existing_nullable=False,
                           comment=COMMENTS['from_location_id'][0], existing_comment=COMMENTS['from_location_id'][1])
        batch.drop_column('allotted')
