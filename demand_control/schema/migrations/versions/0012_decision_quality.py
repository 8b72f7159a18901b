"""decision quality: cases held back or linked to a root cause, who must act, expected loss and priority;
planned receipts in the projection

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-06 23:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None

_CASE_COLUMNS = (
    ('cause_key', sa.String(), 'The case this one is a symptom of (one case per root cause); empty for a root cause.'),
    ('suppressed_reason', sa.Text(), 'Why a tolerance of the policy holds the case back from people (recorded, not sent); empty otherwise.'),
    ('for_person', sa.Boolean(), 'Whether a person must act: not held back, not a symptom, and its recommended action awaits approval (or nothing automatic can act).'),
    ('loss_kind', sa.String(length=16), 'shortage, excess or none: what expected_loss measures.'),
    ('expected_loss', sa.Float(), 'Shortage: lost margin of the units short, weighted by customer tier (strategic 3, key 2, standard 1); excess: the holding cost of the stock beyond need until it is used.'),
    ('act_by', sa.DateTime(timezone=True), 'When the recommended action must be taken to still help (its order-by or need date, else the SLA).'),
    ('priority', sa.Float(), 'Expected loss × urgency (1 when act_by is now, halving each week later): the order of the worklist.'),
)


# One status per recommended action, from what the tables say happened to it since it was recommended.
ACTION_STATUS_VIEW = """
CREATE VIEW action_status AS
SELECT a.action_id, a.exception_key, a.occurrence, a.exception_type, a.action_type, a.rank, a.sku, a.location_id,
       a.quantity, a.value, a.policy_decision, a.approver_role, a.owner_team,
       d.decision, d.decided_by, d.decided_at,
       o.status AS erp_status, o.updated_at AS erp_updated_at, o.reconciled AS erp_reconciled,
       l.state AS exception_state,
       CASE
         WHEN o.status = 'done' THEN 'written_to_erp'
         WHEN o.status = 'dead_letter' THEN 'erp_write_failed'
         WHEN o.status IN ('pending', 'in_progress', 'failed') THEN 'queued_for_erp'
         WHEN d.decision IN ('approved', 'auto_approved') THEN 'approved'
         WHEN d.decision IS NOT NULL THEN d.decision
         WHEN l.state IN ('resolved', 'auto_resolved') THEN 'no_longer_needed'
         ELSE a.policy_decision
       END AS status
FROM recommended_actions a
LEFT JOIN action_decisions d ON d.action_id = a.action_id
LEFT JOIN erp_outbox o ON o.action_id = a.action_id
LEFT JOIN exception_lifecycle l ON l.exception_key = a.exception_key
"""


def upgrade() -> None:
    for table in ('exception_lifecycle', 'planning_exceptions'):
        with op.batch_alter_table(table) as batch:
            for name, kind, comment in _CASE_COLUMNS:
                batch.add_column(sa.Column(name, kind, nullable=True, comment=comment))
    with op.batch_alter_table('projected_inventory') as batch:
        batch.add_column(sa.Column('planned_receipts', sa.Float(), nullable=True,
                                   comment='Of the receipts, what is planned but not yet sent to the supplier: draft purchase lines and approved replenishments not yet in the ERP.'))
        batch.alter_column('receipts', existing_type=sa.Float(), existing_nullable=False,
                           comment='Open purchase-order quantity due in the bucket (confirmed, else expected date), planned receipts included.',
                           existing_comment='Open purchase-order quantity due in the bucket (confirmed, else expected date).')
    op.execute(ACTION_STATUS_VIEW)


def downgrade() -> None:
    op.execute('DROP VIEW action_status')
    with op.batch_alter_table('projected_inventory') as batch:
        batch.alter_column('receipts', existing_type=sa.Float(), existing_nullable=False,
                           comment='Open purchase-order quantity due in the bucket (confirmed, else expected date).')
        batch.drop_column('planned_receipts')
    for table in ('planning_exceptions', 'exception_lifecycle'):
        with op.batch_alter_table(table) as batch:
            for name, _, _ in reversed(_CASE_COLUMNS):
                batch.drop_column(name)
