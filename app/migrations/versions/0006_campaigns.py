"""Review campaigns: campaigns, the population at launch, items to review, reminders

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 15:10:31.237742
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import audit.tables

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_campaign_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=False),
    sa.Column('held_in', sa.String(length=1000), nullable=False),
    sa.Column('system', sa.String(length=32), nullable=True),
    sa.Column('finding_ids', sa.JSON(), nullable=False),
    sa.Column('recommendation', sa.String(length=16), nullable=False),
    sa.Column('risk', sa.String(length=16), nullable=False),
    sa.Column('reviewer_id', sa.String(length=64), nullable=True),
    sa.Column('reviewer_basis', sa.String(length=24), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('accept_until', audit.tables.UTC_DT(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', audit.tables.UTC_DT(timezone=True), nullable=True),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('apply_status', sa.String(length=16), nullable=False),
    sa.Column('apply_result', sa.JSON(), nullable=True),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_campaign_items'))
    )
    with op.batch_alter_table('audit_campaign_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_campaign_items_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_campaign_items_reviewer_id'), ['reviewer_id'], unique=False)

    op.create_table('audit_campaign_people',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('campaign_id', 'person_id', name=op.f('pk_audit_campaign_people'))
    )
    op.create_table('audit_campaign_reminders',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('reviewer_id', sa.String(length=64), nullable=False),
    sa.Column('pending', sa.Integer(), nullable=False),
    sa.Column('at', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_campaign_reminders'))
    )
    with op.batch_alter_table('audit_campaign_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_campaign_reminders_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('audit_campaigns',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('launched_at', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.Column('launched_by', sa.String(length=200), nullable=False),
    sa.Column('due_at', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.Column('no_response', sa.String(length=16), nullable=False),
    sa.Column('auto_revoke_cap', sa.Integer(), nullable=False),
    sa.Column('population', sa.JSON(), nullable=False),
    sa.Column('closed_at', audit.tables.UTC_DT(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=200), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_campaigns'))
    )


def downgrade() -> None:
    op.drop_table('audit_campaigns')
    with op.batch_alter_table('audit_campaign_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_campaign_reminders_campaign_id'))

    op.drop_table('audit_campaign_reminders')
    op.drop_table('audit_campaign_people')
    with op.batch_alter_table('audit_campaign_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_campaign_items_reviewer_id'))
        batch_op.drop_index(batch_op.f('ix_audit_campaign_items_campaign_id'))

    op.drop_table('audit_campaign_items')
