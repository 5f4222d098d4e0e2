"""The SCIM store: what the IdP pushed, as it pushed it (the source of truth for SCIM reads).

The directory is never written from here: every SCIM write is applied through the sync service
(``app.scim.store``); these tables only keep the SCIM resources so that GET, filters, PATCH and
ETags answer with what the IdP sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class ScimUser(Base):
    """A User resource of one SCIM source (its account key in the directory is ``id``)."""

    __tablename__ = "scim_users"
    __table_args__ = (UniqueConstraint("source", "user_name_key"),
                      Index("ix_scim_users_source_external_id", "source", "external_id"))
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    user_name: Mapped[str] = mapped_column(String(256))
    user_name_key: Mapped[str] = mapped_column(String(256))  # case-folded: userName is unique, case-insensitive
    external_id: Mapped[str | None] = mapped_column(String(256))
    display_name: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # the SCIM resource without id, meta, groups, password


class ScimGroup(Base):
    """A Group resource of one SCIM source (its role key in the directory is ``id``)."""

    __tablename__ = "scim_groups"
    __table_args__ = (UniqueConstraint("source", "display_name_key"),
                      Index("ix_scim_groups_source_external_id", "source", "external_id"))
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(256))
    display_name_key: Mapped[str] = mapped_column(String(256))  # unique: grants are keyed by the group's name
    external_id: Mapped[str | None] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # the SCIM resource without id, meta, members


class ScimGroupMember(Base):
    """One member of a group: a user (an assignment in the directory) or a nested group (kept, not expanded)."""

    __tablename__ = "scim_group_members"
    group_id: Mapped[str] = mapped_column(ForeignKey("scim_groups.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    member_type: Mapped[str] = mapped_column(String(16))  # User | Group
    display: Mapped[str | None] = mapped_column(String(256))
