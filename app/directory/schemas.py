"""Directory API shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool


def _iso_text(value: Any) -> Any:
    """Times come as ISO 8601 text with a timezone; a bare number is ambiguous and refused."""
    if value is not None and not isinstance(value, str):
        raise ValueError("give an ISO 8601 time with a timezone, e.g. 2026-12-01T00:00:00+08:00")
    return value


IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]


class DepartmentRead(BaseModel):
    """A department and its Casbin domain."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    code: str
    name: str
    parent_id: str | None
    path: str


class PersonRead(BaseModel):
    """A person."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    employee_no: str | None
    email: str | None
    mobile: str | None
    department_id: str | None
    position: str | None
    manager_id: str | None
    status: str
    hired_on: date | None
    left_on: date | None


class AccountRead(BaseModel):
    """A source-system account (person_id None: orphan)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    system: str
    local_id: str
    person_id: str | None
    status: str
    display_name: str | None
    last_login_at: datetime | None


class GrantRead(BaseModel):
    """A grant."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    person_id: str
    role: str
    department_id: str | None
    include_subtree: bool
    source_system: str
    source_role: str | None
    granted_by: str
    reason: str
    valid_from: datetime | None
    valid_until: datetime | None
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None


class GrantCreate(BaseModel):
    """Grant a role to a person, within a department (and below), for a window."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "person_id": "P00012", "role": "sales_manager", "department_id": "D-SALES-EAST", "include_subtree": False,
        "reason": "代理华东销售经理至月底", "valid_until": "2026-12-31T23:59:59+08:00"}]})
    person_id: str = Field(min_length=1, max_length=64)
    role: str = Field(min_length=1, max_length=64)
    department_id: str | None = Field(None, description="None: the whole company")
    include_subtree: StrictBool = False
    reason: str = Field(min_length=1, max_length=2000)
    valid_from: IsoTime | None = None
    valid_until: IsoTime | None = None


class GrantRevoke(BaseModel):
    """Why a grant is revoked."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class DelegationCreate(BaseModel):
    """Hand a role to a deputy for a window."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "from_person_id": "P00003", "to_person_id": "P00002", "role": "dept_manager",
        "valid_from": "2026-12-01T00:00:00+08:00", "valid_until": "2026-12-08T00:00:00+08:00",
        "reason": "休假期间由副经理代批"}]})
    from_person_id: str
    to_person_id: str
    role: str
    valid_from: IsoTime
    valid_until: IsoTime
    reason: str = Field(min_length=1, max_length=2000)


class DelegationRead(BaseModel):
    """A delegation."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    from_person_id: str
    to_person_id: str
    role: str
    valid_from: datetime
    valid_until: datetime
    reason: str
    created_by: str
    revoked_at: datetime | None
