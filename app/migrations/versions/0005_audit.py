"""The audit's tables: runs, findings and their history, suppressions, field usage, the hash-chained trail;
the decision log's seal column

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 14:47:25.306429
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import audit.tables

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_finding_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('finding_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('at', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_finding_events'))
    )
    with op.batch_alter_table('audit_finding_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_finding_events_finding_id'), ['finding_id'], unique=False)

    op.create_table('audit_findings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=True),
    sa.Column('system', sa.String(length=32), nullable=True),
    sa.Column('account', sa.String(length=200), nullable=True),
    sa.Column('permission', sa.String(length=200), nullable=True),
    sa.Column('field', sa.String(length=64), nullable=True),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('evidence_quality', sa.String(length=16), nullable=False),
    sa.Column('recommendation', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('status_owner', sa.String(length=200), nullable=True),
    sa.Column('accepted_until', audit.tables.UTC_DT(timezone=True), nullable=True),
    sa.Column('suppression_id', sa.Integer(), nullable=True),
    sa.Column('quarters', sa.JSON(), nullable=False),
    sa.Column('first_run_id', sa.Integer(), nullable=False),
    sa.Column('last_run_id', sa.Integer(), nullable=False),
    sa.Column('first_seen_at', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.Column('last_seen_at', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.Column('resolved_at', audit.tables.UTC_DT(timezone=True), nullable=True),
    sa.Column('updated_at', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_findings')),
    sa.UniqueConstraint('key', name=op.f('uq_audit_findings_key'))
    )
    with op.batch_alter_table('audit_findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_findings_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_findings_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_findings_status'), ['status'], unique=False)

    op.create_table('audit_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_key', sa.String(length=120), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('quarter', sa.String(length=8), nullable=False),
    sa.Column('due_at', audit.tables.UTC_DT(timezone=True), nullable=True),
    sa.Column('started_at', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.Column('finished_at', audit.tables.UTC_DT(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('population', sa.JSON(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_runs')),
    sa.UniqueConstraint('run_key', name=op.f('uq_audit_runs_run_key'))
    )
    op.create_table('audit_suppressions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('match', sa.JSON(), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('expires_at', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.Column('revoked_at', audit.tables.UTC_DT(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_suppressions'))
    )
    op.create_table('audit_trail',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('source_table', sa.String(length=64), nullable=False),
    sa.Column('ref_first', sa.String(length=64), nullable=True),
    sa.Column('ref_last', sa.String(length=64), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('row_digests', sa.LargeBinary(), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_trail'))
    )
    with op.batch_alter_table('audit_trail', schema=None) as batch_op:
        batch_op.create_index('ix_audit_trail_source_table_ref_first', ['source_table', 'ref_first'], unique=False)

    op.create_table('audit_trail_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('retained_from', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_trail_head'))
    )
    op.create_table('field_usage',
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_used', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.Column('last_used', audit.tables.UTC_DT(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('person_id', 'resource_type', 'field', name=op.f('pk_field_usage'))
    )
    with op.batch_alter_table('decision_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seal', sa.Integer(), nullable=True))
        batch_op.create_index('ix_decision_log_seal', ['seal'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('decision_log', schema=None) as batch_op:
        batch_op.drop_index('ix_decision_log_seal')
        batch_op.drop_column('seal')

    op.drop_table('field_usage')
    op.drop_table('audit_trail_head')
    with op.batch_alter_table('audit_trail', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_trail_source_table_ref_first')

    op.drop_table('audit_trail')
    op.drop_table('audit_suppressions')
    op.drop_table('audit_runs')
    with op.batch_alter_table('audit_findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_findings_status'))
        batch_op.drop_index(batch_op.f('ix_audit_findings_person_id'))
        batch_op.drop_index(batch_op.f('ix_audit_findings_kind'))

    op.drop_table('audit_findings')
    with op.batch_alter_table('audit_finding_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_finding_events_finding_id'))

    op.drop_table('audit_finding_events')
