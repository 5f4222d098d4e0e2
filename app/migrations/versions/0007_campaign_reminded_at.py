"""a campaign's last reminder round, claimed by one process (compare-and-set on reminded_at)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 13:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import audit.tables

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminded_at', audit.tables.UTC_DT(timezone=True), nullable=True))
    # campaigns reminded before this column: their last reminder is the round already sent
    op.execute("UPDATE audit_campaigns SET reminded_at = (SELECT max(r.at) FROM audit_campaign_reminders r "
               "WHERE r.campaign_id = audit_campaigns.id)")


def downgrade() -> None:
    with op.batch_alter_table('audit_campaigns', schema=None) as batch_op:
        batch_op.drop_column('reminded_at')
