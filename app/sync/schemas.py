"""Request bodies of the sync API: a pushed snapshot, and an account link decision."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.directory.schemas import IsoTime
from app.sync.canonical import Snapshot, SourceAccount, SourceAssignment, SourceDepartment, SourceRole

Key = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=200)]
Part = Annotated[str, StringConstraints(pattern=r"^(departments|accounts|roles|assignments)$|^assignments:.{1,200}$")]


class DepartmentIn(BaseModel):
    """A department as the system knows it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    key: Key
    name: Key
    parent_key: Key | None = None
    status: Literal["active", "disabled"] = "active"
    order: int = 0


class AccountIn(BaseModel):
    """A person's account in the system."""

    model_config = ConfigDict(extra="forbid", strict=True)
    key: Key
    name: Key
    status: Literal["active", "disabled", "left"] = "active"
    login: Text | None = None
    employee_no: Annotated[str, StringConstraints(max_length=64)] | None = None
    mobile: Annotated[str, StringConstraints(max_length=64)] | None = None
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    department_keys: list[Key] = Field(default_factory=list, max_length=100)
    primary_department: Key | None = None
    position: Text | None = None
    manager_key: Key | None = None
    last_login_at: IsoTime | None = None


class RoleIn(BaseModel):
    """A role or position defined in the system."""

    model_config = ConfigDict(extra="forbid", strict=True)
    key: Key
    name: Key


class AssignmentIn(BaseModel):
    """An account holds a role, optionally within stated departments."""

    model_config = ConfigDict(extra="forbid", strict=True)
    account_key: Key
    role_key: Key
    scope_type: Literal["company", "department", "subtree", "listed"] | None = None
    scope_keys: list[Key] = Field(default_factory=list, max_length=1000)


class SnapshotIn(BaseModel):
    """A full snapshot of one system: applied whole or not at all."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "version": "2026-11-25T08:00:00Z#1842",
        "departments": [{"key": "10", "name": "销售中心"}, {"key": "11", "name": "华东大区", "parent_key": "10"}],
        "accounts": [{"key": "zhangwei01", "name": "张伟", "employee_no": "E0012", "mobile": "13800138000",
                      "email": "zhang.wei@example.cn", "department_keys": ["11"]}],
        "roles": [{"key": "r1", "name": "销售经理"}],
        "assignments": [{"account_key": "zhangwei01", "role_key": "r1"}],
    }]})
    version: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    taken_at: IsoTime | None = None
    complete: list[Part] = Field(default=["departments", "accounts", "roles", "assignments"],
                                 description="Parts that are complete lists; what they leave out is removed.")
    departments: list[DepartmentIn] = Field(default_factory=list)
    accounts: list[AccountIn] = Field(default_factory=list)
    roles: list[RoleIn] = Field(default_factory=list)
    assignments: list[AssignmentIn] = Field(default_factory=list)

    def to_snapshot(self, source: str) -> Snapshot:
        """The canonical snapshot."""
        return Snapshot(
            source=source, version=self.version, taken_at=self.taken_at, complete=frozenset(self.complete),
            departments=tuple(SourceDepartment(**d.model_dump()) for d in self.departments),
            accounts=tuple(SourceAccount(**(a.model_dump() | {"department_keys": tuple(a.department_keys)}))
                           for a in self.accounts),
            roles=tuple(SourceRole(**r.model_dump()) for r in self.roles),
            assignments=tuple(SourceAssignment(**(x.model_dump() | {"scope_keys": tuple(x.scope_keys)}))
                              for x in self.assignments),
        )


class LinkIn(BaseModel):
    """Confirm an account's person (person_id), or break its link (person_id null)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    person_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class ConfirmIn(BaseModel):
    """Apply or discard a held run."""

    model_config = ConfigDict(extra="forbid", strict=True)
    apply: bool
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class ClaimsIn(BaseModel):
    """A signed-in person's ID token, from the company IdP."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id_token: Annotated[str, StringConstraints(min_length=1, max_length=16_384)]


class AccountUpsert(BaseModel):
    """An account was created or changed."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["account.upsert"]
    account: AccountIn


class AccountDelete(BaseModel):
    """An account was deleted (or the person left): it becomes ``left``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["account.delete"]
    key: Key


class RoleMembers(BaseModel):
    """A role's complete member list now (the members' accounts must exist or come in this batch)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["role.members"]
    role: RoleIn
    members: list[Key] = Field(max_length=100_000)
    scope_type: Literal["company", "department", "subtree", "listed"] | None = None
    scope_keys: list[Key] = Field(default_factory=list, max_length=1000)


Event = Annotated[AccountUpsert | AccountDelete | RoleMembers, Field(discriminator="type")]


class EventsIn(BaseModel):
    """Incremental changes of one system, applied together in one transaction or not at all."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"events": [
        {"type": "account.upsert", "account": {"key": "zhangwei01", "name": "张伟", "employee_no": "E0012"}},
        {"type": "account.delete", "key": "lisi02"},
        {"type": "role.members", "role": {"key": "r1", "name": "销售经理"}, "members": ["zhangwei01"]},
    ]}]})
    events: list[Event] = Field(min_length=1, max_length=50_000)
