"""Request bodies of the sync API (a snapshot, events, an account link, a token), and the claims answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

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


Jwt = Annotated[str, StringConstraints(min_length=1, max_length=16_384)]
_EXAMPLE_ID_JWT = (  # an example with a made-up signature
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNuIiwi"
    "c3ViIjoidS1saW1pbmciLCJhdWQiOiJjb25zb2xlIiwiaWF0IjoxNzY0MDU3NjAwLCJleHAiOjE3NjQwNTgyMDAsIm5hbWUi"
    "OiJcdTY3NGVcdTY2MGUiLCJlbXBsb3llZV9ubyI6IkUyMDAxIn0.c2lnbmF0dXJl"
)
_EXAMPLE_ACCESS_JWT = (  # an example with a made-up signature
    "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNu"
    "Iiwic3ViIjoidS1saW1pbmciLCJhdWQiOiJodHRwczovL2NybS5leGFtcGxlLmNuL2FwaSIsImNsaWVudF9pZCI6ImNvbnNv"
    "bGUiLCJzY29wZSI6ImNybS5yZWFkIiwiaWF0IjoxNzY0MDU3NjAwLCJleHAiOjE3NjQwNTgyMDAsImdyb3VwcyI6WyJzYWxl"
    "cyJdfQ.c2lnbmF0dXJl"
)


class ClaimsIn(BaseModel):
    """A signed-in person's token from the company IdP: exactly one of ``id_token`` and ``access_token``."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "oneOf": [{"required": [name], "properties": {name: {"type": "string"}}}  # null is absent
                  for name in ("id_token", "access_token")],
        "examples": [{"id_token": _EXAMPLE_ID_JWT}, {"access_token": _EXAMPLE_ACCESS_JWT}]})
    id_token: Jwt | None = Field(None, description=(
        "An OIDC ID token: its `aud` one of the source's `id_token_audiences` (client ids), not `typ: at+jwt`."))
    access_token: Jwt | None = Field(None, description=(
        "A person's JWT access token (RFC 9068, `typ: at+jwt`): its `aud` one of the source's "
        "`access_token_audiences` (resource servers), its `sub` a user, not a client (client credentials)."))

    @model_validator(mode="after")
    def _exactly_one(self) -> ClaimsIn:
        if (self.id_token is None) == (self.access_token is None):
            raise ValueError("send exactly one of id_token and access_token")
        return self

    def token(self) -> tuple[Literal["id_token", "access_token"], str]:
        """Which kind of token was sent, and the token."""
        if self.access_token is not None:
            return "access_token", self.access_token
        assert self.id_token is not None
        return "id_token", self.id_token


class ClaimsLink(BaseModel):
    """How the account is linked to its person."""

    state: str = Field(description="`auto`, `confirmed` (by an admin) or `broken`.")
    method: str | None = Field(description="`employee_no`, `mobile`, `email`, `created` (a new person), `admin`.")
    evidence: dict[str, Any]


class ClaimsAccount(BaseModel):
    """The person's account in the source, after the sign-in."""

    system: str
    local_id: str = Field(description="The account key: the token's `key` claim (`sub`).")
    person_id: str | None = Field(description="The person it is linked to; null: an orphan.")
    status: str
    last_login_at: datetime | None = Field(description="The latest sign-in recorded (UTC).")
    claimed_roles: list[str] = Field(description="The roles the tokens claimed: evidence for the audit, never a grant.")
    link: ClaimsLink


class ClaimsRunError(BaseModel):
    """A record the run could not apply in full."""

    kind: str
    key: str
    message: str


class ClaimsRun(BaseModel):
    """The sync run that applied the claims."""

    id: int
    source: str
    trigger: str
    actor: str
    status: str
    version: str | None
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]
    message: str | None
    errors: list[ClaimsRunError]


class ClaimsOut(BaseModel):
    """What the claims did."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "applied", "token": "access_token", "signed_in_at": "2026-11-25T08:00:00Z",
        "run": {"id": 42, "source": "idp", "trigger": "push", "actor": "crm-backend", "status": "applied",
                "version": None, "started_at": "2026-11-25T08:00:01Z", "finished_at": "2026-11-25T08:00:01Z",
                "counts": {"created": 1, "linked": 1}, "message": None, "errors": []},
        "account": {"system": "idp", "local_id": "u-liming", "person_id": "P00177", "status": "active",
                    "last_login_at": "2026-11-25T08:00:00Z", "claimed_roles": ["sales_rep", "employee"],
                    "link": {"state": "auto", "method": "employee_no",
                             "evidence": {"matched": "employee_no", "value": "E2001", "run": 42}}},
    }]})
    status: Literal["applied", "unchanged", "failed"] = Field(description=(
        "`applied`: the account was created or changed (see `run`); `unchanged`: it already said this, only "
        "the sign-in was recorded; `failed`: the run was rolled back, nothing changed (`run.message`)."))
    token: Literal["id_token", "access_token"]
    signed_in_at: datetime = Field(description="This sign-in: the token's `iat`, never later than now (UTC).")
    run: ClaimsRun | None = Field(None, description="The run that applied the claims; null when unchanged.")
    account: ClaimsAccount | None = Field(description="Null only when a new account's run failed.")


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
