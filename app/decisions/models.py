"""The decision log and the usage aggregate the audit reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ColumnElement, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class DecisionRecord(Base):
    """One decision, as answered."""

    __tablename__ = "decision_log"
    __table_args__ = (
        Index("ix_decision_log_at", "at"),
        Index("ix_decision_log_person_at", "person_id", "at"),
        Index("ix_decision_log_seal", "seal"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    at: Mapped[datetime]
    caller: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(400))
    person_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(400))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    allowed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    policy_version: Mapped[str] = mapped_column(String(32))
    seal: Mapped[int | None] = mapped_column(Integer)  # the audit trail entry that sealed this record


def log_filter(*, person_id: str | None = None, resource_type: str | None = None, resource_id: str | None = None,
               system: str | None = None, action: str | None = None, allowed: bool | None = None,
               since: datetime | None = None, until: datetime | None = None) -> list[ColumnElement[bool]]:
    """The decision log search's conditions (``GET /v1/decisions`` and the console): the time end exclusive,
    a system as its resource types' prefix."""
    r = DecisionRecord
    where: list[ColumnElement[bool]] = []
    if person_id:
        where.append(r.person_id == person_id)
    if resource_type:
        where.append(r.resource_type == resource_type)
    if resource_id:
        where.append(r.resource_id == resource_id)
    if system:
        where.append(r.resource_type.startswith(f"{system}.", autoescape=True))
    if action:
        where.append(r.action == action)
    if allowed is not None:
        where.append(r.allowed == allowed)
    if since is not None:
        where.append(r.at >= since)
    if until is not None:
        where.append(r.at < until)
    return where


class Usage(Base):
    """Per person x resource type x action: how often asked, allowed, denied, first and last use."""

    __tablename__ = "usage"
    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    action: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    allows: Mapped[int] = mapped_column(Integer, default=0)
    denies: Mapped[int] = mapped_column(Integer, default=0)
    first_used: Mapped[datetime]
    last_used: Mapped[datetime]
