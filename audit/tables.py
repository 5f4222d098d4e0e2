"""The audit's own tables (SQLAlchemy Core, their own metadata: the audit never imports ``app``).

The service's Alembic migrations create them along with the service's tables.  Everything here is
written by the audit: runs, findings and their history, suppressions, and the tamper-evident trail
(a hash chain over the decision log, the change log, audit runs and review decisions).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

# The same naming convention as the service's tables, so that migrations name constraints alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


class UTC_DT(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# One audit run.  ``run_key`` is unique: a scheduled run's key names its due time
# ("schedule:2026-10-01T00:00+08:00"), so two processes due at the same time insert one row and the
# second fails on the key (exactly once).  Manual runs get a fresh key.
runs = Table(
    "audit_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_key", String(120), nullable=False, unique=True),
    Column("trigger", String(16), nullable=False),  # schedule | catchup | manual | cli
    Column("actor", String(200), nullable=False),
    Column("quarter", String(8), nullable=False),  # 2026Q4, the quarter the run belongs to (Asia/Shanghai)
    Column("due_at", UTC_DT(), nullable=True),  # a scheduled run's due time
    Column("started_at", UTC_DT(), nullable=False),
    Column("finished_at", UTC_DT(), nullable=True),
    Column("status", String(16), nullable=False),  # running | done | failed
    Column("params", JSON, nullable=False),  # window, thresholds: what the run was asked to do
    Column("population", JSON, nullable=False),  # counts of people, accounts, grants at the run
    Column("counts", JSON, nullable=False),  # findings by kind and severity, new / seen again / resolved
    Column("message", Text, nullable=True),
)

# One finding, identified across runs by ``key`` (kind + what it is about), so that a problem seen
# again next quarter is the same finding, remembering the quarters it was seen in.
findings = Table(
    "audit_findings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(400), nullable=False, unique=True),
    Column("kind", String(48), nullable=False, index=True),
    Column("severity", String(16), nullable=False),  # low | medium | high | critical
    Column("person_id", String(64), nullable=True, index=True),
    Column("system", String(32), nullable=True),  # crm | oa | idp | accessgov
    Column("account", String(200), nullable=True),  # the account's id in its system
    Column("permission", String(200), nullable=True),  # crm.contract:approve, a role, a grant
    Column("field", String(64), nullable=True),
    Column("grant_id", Integer, nullable=True),
    Column("evidence", JSON, nullable=False),
    Column("evidence_quality", String(16), nullable=False),  # usage | no_usage_data | directory
    Column("recommendation", JSON, nullable=False),  # {action, grant_id?, ...}
    Column("status", String(16), nullable=False, index=True),  # open | accepted | remediated | resolved | suppressed
    Column("status_reason", Text, nullable=True),
    Column("status_owner", String(200), nullable=True),
    Column("accepted_until", UTC_DT(), nullable=True),
    Column("suppression_id", Integer, nullable=True),
    Column("quarters", JSON, nullable=False),  # ["2026Q3", "2026Q4"]
    Column("first_run_id", Integer, nullable=False),
    Column("last_run_id", Integer, nullable=False),
    Column("first_seen_at", UTC_DT(), nullable=False),
    Column("last_seen_at", UTC_DT(), nullable=False),
    Column("resolved_at", UTC_DT(), nullable=True),
    Column("updated_at", UTC_DT(), nullable=False),
)

# Every status change of a finding, who made it and why (append-only; sealed into the trail).
finding_events = Table(
    "audit_finding_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("finding_id", Integer, nullable=False, index=True),
    Column("run_id", Integer, nullable=True),
    Column("at", UTC_DT(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
)

# A suppression: findings matching ``match`` (kind and any of person, system, permission, field)
# are recorded as suppressed instead of open until ``expires_at``.
suppressions = Table(
    "audit_suppressions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(48), nullable=False),
    Column("match", JSON, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("expires_at", UTC_DT(), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTC_DT(), nullable=False),
    Column("revoked_at", UTC_DT(), nullable=True),
    Column("revoked_by", String(200), nullable=True),
)

# Per person x resource type x field: how often a classified field came back visible or masked.
# Folded in by the decision-log writer, next to the usage aggregate; the audit's "unused sensitive
# field access" reads it.
field_usage = Table(
    "field_usage", metadata,
    Column("person_id", String(64), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("first_used", UTC_DT(), nullable=False),
    Column("last_used", UTC_DT(), nullable=False),
)

# The tamper-evident trail: one entry per sealed batch of records, chained by hash.
#   hash = sha256(prev_hash | seq | kind | table | ref_first | ref_last | count | digest)
# ``digest`` is the SHA-256 of the batch's records in canonical form (in ``ref`` order);
# ``row_digests`` holds 8 bytes of each record's own SHA-256, in the same order, so that ``verify``
# names the record that was edited or deleted, not only the batch.
trail = Table(
    "audit_trail", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UTC_DT(), nullable=False),
    Column("kind", String(32), nullable=False),  # decisions | change | audit_run | finding_event | review | retention
    Column("source_table", String(64), nullable=False),
    Column("ref_first", String(64), nullable=True),
    Column("ref_last", String(64), nullable=True),
    Column("count", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("row_digests", LargeBinary, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_trail_source_table_ref_first", "source_table", "ref_first"),
)

# The chain's head: one row, locked by whoever appends (SELECT ... FOR UPDATE on PostgreSQL; SQLite
# serialises writers anyway), so that concurrent writers in several processes build one chain.
trail_head = Table(
    "audit_trail_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("retained_from", Integer, nullable=False),  # the first seq kept after retention purges
)

# A review campaign: a population snapshotted at launch, items to review, reviewers, a rule for
# items nobody decided, a cap on automatic revocations.
campaigns = Table(
    "audit_campaigns", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # active | closed
    Column("scope", JSON, nullable=False),  # departments, systems, roles, only_findings
    Column("launched_at", UTC_DT(), nullable=False),
    Column("launched_by", String(200), nullable=False),
    Column("due_at", UTC_DT(), nullable=False),
    Column("no_response", String(16), nullable=False),  # keep | revoke | recommendation
    Column("auto_revoke_cap", Integer, nullable=False),
    Column("population", JSON, nullable=False),  # counts at launch
    Column("closed_at", UTC_DT(), nullable=True),
    Column("closed_by", String(200), nullable=True),
    Column("result", JSON, nullable=True),
    # the last reminder round, claimed by one process (compare-and-set: processes never remind twice at once)
    Column("reminded_at", UTC_DT(), nullable=True),
)

# The people in a campaign's scope as they were at launch (the report's "population at launch").
campaign_people = Table(
    "audit_campaign_people", metadata,
    Column("campaign_id", Integer, primary_key=True),
    Column("person_id", String(64), primary_key=True),
    Column("snapshot", JSON, nullable=False),  # name, department, position, status, accounts, grants
)

# One thing to review: a person's grant, with the finding behind it if any.
campaign_items = Table(
    "audit_campaign_items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", Integer, nullable=False, index=True),
    Column("person_id", String(64), nullable=False),
    Column("grant_id", Integer, nullable=False),
    Column("role", String(64), nullable=False),
    Column("held_in", String(1000), nullable=False),
    Column("system", String(32), nullable=True),
    Column("finding_ids", JSON, nullable=False),
    Column("recommendation", String(16), nullable=False),  # keep | revoke | reduce
    Column("risk", String(16), nullable=False),  # low | medium | high | critical
    Column("reviewer_id", String(64), nullable=True, index=True),
    Column("reviewer_basis", String(24), nullable=False),  # manager | system_owner | security_officer | none
    Column("decision", String(16), nullable=True),  # keep | revoke | reduce | accept_risk
    Column("reason", Text, nullable=True),
    Column("accept_until", UTC_DT(), nullable=True),
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", UTC_DT(), nullable=True),
    Column("automatic", Boolean, nullable=False),  # decided by the no-response rule
    Column("apply_status", String(16), nullable=False),  # none | applied | failed | rolled_back
    Column("apply_result", JSON, nullable=True),
    Column("snapshot", JSON, nullable=False),  # the grant at launch
)

# Reminders sent: only to reviewers with pending items, with how many were pending.
campaign_reminders = Table(
    "audit_campaign_reminders", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", Integer, nullable=False, index=True),
    Column("reviewer_id", String(64), nullable=False),
    Column("pending", Integer, nullable=False),
    Column("at", UTC_DT(), nullable=False),
    Column("channel", String(32), nullable=False),
)
