"""one child per policy version: two concurrent edits of the same version cannot both land

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:50:00
"""

from __future__ import annotations

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_versions_parent_id'), ['parent_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_versions_parent_id'))
