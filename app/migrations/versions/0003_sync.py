"""identity sync: runs, record errors, conflicts, locks; account evidence and links; suspended grants

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sync_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('trigger', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('started_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.String(length=200), nullable=True),
    sa.Column('digest', sa.String(length=64), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('held_snapshot', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_runs'))
    )
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.create_index('ix_sync_runs_source_started', ['source', 'started_at'], unique=False)
    op.create_table('sync_locks',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=True),
    sa.Column('expires_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('source', name=op.f('pk_sync_locks'))
    )
    op.create_table('sync_record_errors',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['sync_runs.id'], name=op.f('fk_sync_record_errors_run_id_sync_runs'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_record_errors'))
    )
    with op.batch_alter_table('sync_record_errors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_record_errors_run_id'), ['run_id'], unique=False)
    op.create_table('sync_conflicts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('attribute', sa.String(length=32), nullable=False),
    sa.Column('master_source', sa.String(length=64), nullable=False),
    sa.Column('master_value', sa.Text(), nullable=True),
    sa.Column('other_source', sa.String(length=64), nullable=False),
    sa.Column('other_value', sa.Text(), nullable=True),
    sa.Column('first_seen', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_run_id', sa.Integer(), nullable=True),
    sa.Column('resolved_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['last_run_id'], ['sync_runs.id'], name=op.f('fk_sync_conflicts_last_run_id_sync_runs')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_sync_conflicts_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_conflicts'))
    )
    with op.batch_alter_table('sync_conflicts', schema=None) as batch_op:
        batch_op.create_index('ix_sync_conflicts_open', ['person_id', 'attribute', 'other_source', 'resolved_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_sync_conflicts_person_id'), ['person_id'], unique=False)
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('employee_no', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('mobile', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('email', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('department_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('position', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('manager_local_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('link_method', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('link_state', sa.String(length=16), nullable=False, server_default='auto'))
        batch_op.add_column(sa.Column('link_evidence', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_accounts_department_id_departments'), 'departments',
                                    ['department_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suspended_at', app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('suspend_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_column('suspend_reason')
        batch_op.drop_column('suspended_at')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_accounts_department_id_departments'), type_='foreignkey')
        for column in ('updated_at', 'link_evidence', 'link_state', 'link_method', 'manager_local_id', 'position',
                       'department_id', 'email', 'mobile', 'employee_no'):
            batch_op.drop_column(column)
    op.drop_table('sync_conflicts')
    op.drop_table('sync_record_errors')
    op.drop_table('sync_locks')
    op.drop_table('sync_runs')
