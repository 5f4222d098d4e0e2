"""Directory tables: departments, people, their source-system accounts, roles, grants, delegations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

SYSTEMS = ("crm", "idp", "oa")
PERSON_STATUSES = ("active", "disabled", "left")


class Department(Base):
    """A department; ``path`` (``hq/sales/east/``) is its Casbin domain."""

    __tablename__ = "departments"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), index=True)
    path: Mapped[str] = mapped_column(String(1000), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DepartmentSourceId(Base):
    """A source system's own id of one of our departments."""

    __tablename__ = "department_source_ids"
    __table_args__ = (UniqueConstraint("system", "source_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), index=True)
    system: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(200))


class Person(Base):
    """A person of the company."""

    __tablename__ = "people"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idp_subject: Mapped[str | None] = mapped_column(String(200), unique=True)
    employee_no: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    mobile: Mapped[str | None] = mapped_column(String(64), index=True)
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), index=True)
    position: Mapped[str | None] = mapped_column(String(200))
    manager_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    hired_on: Mapped[date | None] = mapped_column(Date)
    left_on: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Account(Base):
    """A person's account in a source system; ``person_id`` None is an orphan."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("system", "local_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(32))
    local_id: Mapped[str] = mapped_column(String(200))
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    display_name: Mapped[str | None] = mapped_column(String(200))
    last_login_at: Mapped[datetime | None]
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the source says of the person behind the account (the evidence linking goes by).
    employee_no: Mapped[str | None] = mapped_column(String(64))
    mobile: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id", ondelete="SET NULL"))
    position: Mapped[str | None] = mapped_column(String(200))
    manager_local_id: Mapped[str | None] = mapped_column(String(200))
    # How the account was linked: employee_no | mobile | email | created | admin | demo; None = unlinked.
    link_method: Mapped[str | None] = mapped_column(String(16))
    link_state: Mapped[str] = mapped_column(String(16), default="auto")  # auto | confirmed | broken
    link_evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)


class Role(Base):
    """A central role (mirrors roles.yaml of the active policy version)."""

    __tablename__ = "roles"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    privileged: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")


class Grant(Base):
    """A central role granted to a person within a department scope, for a time window."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_person_active", "person_id", "revoked_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    role: Mapped[str] = mapped_column(ForeignKey("roles.name"))
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"))
    include_subtree: Mapped[bool] = mapped_column(Boolean, default=False)
    source_system: Mapped[str] = mapped_column(String(32), default="manual")
    source_role: Mapped[str | None] = mapped_column(String(200))
    granted_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    # Suspended (e.g. the holder moved department): not in force until an officer restores or revokes it.
    suspended_at: Mapped[datetime | None]
    suspend_reason: Mapped[str | None] = mapped_column(Text)


class Delegation(Base):
    """A person hands one of their roles to a deputy for a time window."""

    __tablename__ = "delegations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    from_person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    to_person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    role: Mapped[str] = mapped_column(ForeignKey("roles.name"))
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class Record(Base):
    """A CRM/OA record known to accessgov (pushed by the system or loaded by the demo)."""

    __tablename__ = "records"
    __table_args__ = (Index("ix_records_type_department", "type", "department_id"),)
    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"), index=True)
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"))
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
