"""Policy API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class PolicyVersionRead(BaseModel):
    """A policy version (without its files)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    parent_id: int | None
    digest: str
    created_at: datetime
    created_by: str
    reason: str


class PolicyVersionFiles(PolicyVersionRead):
    """A policy version with its files."""

    files: dict[str, str]


class PolicyChangeCreate(BaseModel):
    """Add and remove policy lines as one new version (validated and tested first)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "add": ["p, marketing, *, crm.customer, read, all, record.level in [A, B, C], allow"],
        "remove": ["p, marketing, *, crm.customer, read, all, record.level in [A, B], allow"],
        "reason": "市场部需要查看 C 级客户 (工单 SEC-1024)"}]})
    add: list[str] = Field(default_factory=list, max_length=1000)
    remove: list[str] = Field(default_factory=list, max_length=1000)
    reason: str = Field(min_length=1, max_length=2000)


class PolicyRollback(BaseModel):
    """Make an earlier version's contents current again."""

    model_config = ConfigDict(extra="forbid")
    to_version: StrictInt = Field(ge=1, le=2**31 - 1)
    reason: str = Field(min_length=1, max_length=2000)


class ChangeRead(BaseModel):
    """One entry of the change log."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    actor: str
    kind: str
    target: str
    reason: str
    details: dict[str, Any]
    policy_version_id: int | None
