"""SCIM store: the users and groups an IdP pushed (with their SCIM JSON) and group members

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scim_groups',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=256), nullable=False),
    sa.Column('display_name_key', sa.String(length=256), nullable=False),
    sa.Column('external_id', sa.String(length=256), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_groups')),
    sa.UniqueConstraint('source', 'display_name_key', name=op.f('uq_scim_groups_source'))
    )
    with op.batch_alter_table('scim_groups', schema=None) as batch_op:
        batch_op.create_index('ix_scim_groups_source_external_id', ['source', 'external_id'], unique=False)

    op.create_table('scim_users',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('user_name', sa.String(length=256), nullable=False),
    sa.Column('user_name_key', sa.String(length=256), nullable=False),
    sa.Column('external_id', sa.String(length=256), nullable=True),
    sa.Column('display_name', sa.String(length=256), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_users')),
    sa.UniqueConstraint('source', 'user_name_key', name=op.f('uq_scim_users_source'))
    )
    with op.batch_alter_table('scim_users', schema=None) as batch_op:
        batch_op.create_index('ix_scim_users_source_external_id', ['source', 'external_id'], unique=False)

    op.create_table('scim_group_members',
    sa.Column('group_id', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=64), nullable=False),
    sa.Column('member_type', sa.String(length=16), nullable=False),
    sa.Column('display', sa.String(length=256), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['scim_groups.id'], name=op.f('fk_scim_group_members_group_id_scim_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'member_id', name=op.f('pk_scim_group_members'))
    )
    with op.batch_alter_table('scim_group_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scim_group_members_member_id'), ['member_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('scim_group_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scim_group_members_member_id'))

    op.drop_table('scim_group_members')
    with op.batch_alter_table('scim_users', schema=None) as batch_op:
        batch_op.drop_index('ix_scim_users_source_external_id')

    op.drop_table('scim_users')
    with op.batch_alter_table('scim_groups', schema=None) as batch_op:
        batch_op.drop_index('ix_scim_groups_source_external_id')

    op.drop_table('scim_groups')
