"""Sync tables: runs and their per-record errors, recorded conflicts, per-source locks and snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

RUN_STATUSES = ("running", "applied", "unchanged", "held", "rejected", "failed", "discarded")


class SyncRun(Base):
    """One attempt to bring the directory up to one source: pulled, pushed, or confirmed after a hold."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_source_started", "source", "started_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(32))  # schedule | manual | push | events | confirm | cli
    actor: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="running")
    version: Mapped[str | None] = mapped_column(String(200))  # the pusher's version label
    digest: Mapped[str | None] = mapped_column(String(64))  # of the canonical snapshot
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    message: Mapped[str | None] = mapped_column(Text)
    held_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # a held run's snapshot, to confirm


class SyncRecordError(Base):
    """A record of a run that could not be applied (the rest of the run was)."""

    __tablename__ = "sync_record_errors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # department | account | role | assignment
    key: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)


class SyncConflict(Base):
    """Two sources disagree on one attribute of one person: the master's value was kept."""

    __tablename__ = "sync_conflicts"
    __table_args__ = (Index("ix_sync_conflicts_open", "person_id", "attribute", "other_source", "resolved_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    attribute: Mapped[str] = mapped_column(String(32))
    master_source: Mapped[str] = mapped_column(String(64))
    master_value: Mapped[str | None] = mapped_column(Text)
    other_source: Mapped[str] = mapped_column(String(64))
    other_value: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))
    resolved_at: Mapped[datetime | None]


class SyncLock(Base):
    """One run per source at a time, across processes and replicas (a lease that expires)."""

    __tablename__ = "sync_locks"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
