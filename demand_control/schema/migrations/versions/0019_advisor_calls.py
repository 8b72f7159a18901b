"""advisor: every call of the optional model-backed advisor (advisor_calls), and who proposed a recommended action
(recommended_actions.source: planner or advisor)

Revision ID: 0019
Revises: 0015
Create Date: 2026-12-07 04:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'advisor_calls',
        sa.Column('call_id', sa.String(length=64), nullable=False, comment="Random id of the call: one row per call."),
        sa.Column('exception_key', sa.String(), nullable=False, comment='The case the advisor was asked about.'),
        sa.Column('occurrence', sa.Integer(), nullable=False, comment='Its occurrence.'),
        sa.Column('called_at', sa.DateTime(timezone=True), nullable=False, comment='When the call started (planning clock).'),
        sa.Column('model', sa.String(length=128), nullable=False, comment='Model name as configured (DEMAND_CONTROL_ADVISOR_MODEL).'),
        sa.Column('prompt_hash', sa.String(length=64), nullable=False, comment='SHA-256 of the instructions and the case prompt sent.'),
        sa.Column('facts_hash', sa.String(length=64), nullable=False, comment="SHA-256 of the case's facts: an unchanged case is not asked again."),
        sa.Column('tool_calls', sa.Text(), nullable=False, comment='The read-only lookups the model made: tool, arguments, what it returned or why it was refused, as JSON.'),
        sa.Column('output', sa.Text(), nullable=True, comment="The model's structured answer as JSON (empty when it gave none)."),
        sa.Column('input_tokens', sa.Integer(), nullable=False, comment='Prompt tokens the server reported.'),
        sa.Column('output_tokens', sa.Integer(), nullable=False, comment='Completion tokens the server reported.'),
        sa.Column('cost', sa.Float(), nullable=False, comment='Tokens priced at DEMAND_CONTROL_ADVISOR_COST_PER_1K_INPUT / _OUTPUT (company currency).'),
        sa.Column('latency_ms', sa.Integer(), nullable=False, comment='Wall time of the call, milliseconds.'),
        sa.Column('outcome', sa.String(length=16), nullable=False, comment='used (some part accepted), rejected (every part refused) or failed (timeout, error, malformed).'),
        sa.Column('narrative_used', sa.Boolean(), nullable=False, comment='Whether its case narrative passed grounding and is shown.'),
        sa.Column('followup_used', sa.Boolean(), nullable=False, comment='Whether its supplier follow-up draft passed grounding and replaced the template.'),
        sa.Column('root_cause', sa.String(length=32), nullable=True, comment='Root cause it proposed, when accepted (from the vocabulary).'),
        sa.Column('proposal_action_id', sa.String(), nullable=True, comment='Action id of its accepted proposal in recommended_actions (source advisor).'),
        sa.Column('narrative', sa.Text(), nullable=True, comment='The accepted case narrative.'),
        sa.Column('reasons', sa.Text(), nullable=False, comment="Why each part was used or rejected, '; '-separated."),
        sa.PrimaryKeyConstraint('call_id', name=op.f('pk_advisor_calls')),
        comment='Every call of the optional model-backed advisor: what was asked (hashed), what it answered, cost, latency and what was used.',
    )
    op.create_index(op.f('ix_advisor_calls_exception_key'), 'advisor_calls', ['exception_key'], unique=False)
    with op.batch_alter_table('recommended_actions') as batch:
        batch.add_column(sa.Column('source', sa.String(length=16), nullable=False, server_default='planner',
                                   comment='Who proposed it: planner (the deterministic rules) or advisor (the optional model, under the policy\'s advisor limits).'))


def downgrade() -> None:
    with op.batch_alter_table('recommended_actions') as batch:
        batch.drop_column('source')
    op.drop_index(op.f('ix_advisor_calls_exception_key'), table_name='advisor_calls')
    op.drop_table('advisor_calls')
