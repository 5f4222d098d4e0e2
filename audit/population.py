"""What the audit looks at: the population, as plain data.

The service builds a ``Population`` from its directory, its policy and its decision-log usage
(``app/audits/population.py``) and hands it over; the audit never reads the service's tables or
imports its code.  Everything is frozen and hashable, so that checks can share it across threads.

Domains are the policy's department patterns: ``hq/sales/east/`` (one department), ``hq/sales/*``
(a subtree) or ``*`` (the whole company).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    department_id: str | None
    department_path: str  # "" when the person has no department
    position: str | None
    manager_id: str | None
    status: str  # active | disabled | left
    hired_on: date | None = None
    left_on: date | None = None


@dataclass(frozen=True, slots=True)
class Account:
    system: str  # crm | oa | idp | ...
    local_id: str
    person_id: str | None
    status: str  # active | disabled
    department_path: str = ""
    last_login_at: datetime | None = None
    link_state: str = "auto"  # auto | confirmed | broken


@dataclass(frozen=True, slots=True)
class Grant:
    id: int
    person_id: str
    role: str
    domain: str  # where the role is held: a department, a subtree or "*"
    source_system: str  # manual, or the system whose role assignment it mirrors
    source_role: str | None
    created_at: datetime
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    suspended_at: datetime | None = None
    suspend_reason: str | None = None
    granted_by: str = ""


@dataclass(frozen=True, slots=True)
class Delegation:
    id: int
    from_person_id: str
    to_person_id: str
    role: str
    valid_from: datetime | None
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class Perm:
    """An allow a role gives (its own rules and the rules of the roles it inherits)."""

    resource_type: str  # crm.contract
    action: str
    scope: str  # all | own | dept | tree | listed:...
    domain: str  # the rule's domain pattern
    condition: str  # "-" when unconditional
    rule_id: str
    via: str  # the role whose rule it is

    @property
    def key(self) -> str:
        return f"{self.resource_type}:{self.action}"


@dataclass(frozen=True, slots=True)
class FieldPerm:
    """A classified field a role sees (visible or masked) on read."""

    resource_type: str
    field: str
    level: str  # visible | masked
    sensitivity: str
    rule_id: str
    via: str


@dataclass(frozen=True, slots=True)
class RoleInfo:
    name: str
    title_zh: str
    title_en: str
    privileged: bool
    perms: tuple[Perm, ...]
    fields: tuple[FieldPerm, ...] = ()
    # unconditional company-wide denies of the role (and its inherited roles): "type:action"
    denies: frozenset[str] = frozenset()
    # the department scopes the sources' role mappings give it: department | subtree | company
    mapped_scopes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Usage:
    """Per person, resource type and action, from the decision log's aggregate."""

    person_id: str
    resource_type: str
    action: str
    count: int
    allows: int
    last_used: datetime
    first_used: datetime


@dataclass(frozen=True, slots=True)
class FieldUse:
    person_id: str
    resource_type: str
    field: str
    count: int
    last_used: datetime


@dataclass(frozen=True, slots=True)
class Conflict:
    """Where two sources disagreed about a person (the master's value was kept)."""

    person_id: str
    attribute: str
    master_source: str
    master_value: str | None
    other_source: str
    other_value: str | None
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class DepartmentMove:
    """A recorded change of a person's department (from the change log)."""

    person_id: str
    at: datetime
    from_path: str
    to_path: str


@dataclass(frozen=True)
class Population:
    """Everything one audit run looks at, as of ``taken_at``."""

    taken_at: datetime
    people: tuple[Person, ...]
    accounts: tuple[Account, ...]
    grants: tuple[Grant, ...]  # not revoked (active, suspended, expired or not yet valid)
    delegations: tuple[Delegation, ...]
    roles: Mapping[str, RoleInfo]
    usage: tuple[Usage, ...]
    field_usage: tuple[FieldUse, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    moves: tuple[DepartmentMove, ...] = ()
    department_names: Mapping[str, str] = field(default_factory=dict)  # path -> name
    usage_since: datetime | None = None  # the oldest decision the usage data covers (None: no data at all)

    def summary(self) -> dict[str, int]:
        """Counts for the run log and the report's scope."""
        return {"people": len(self.people), "active_people": sum(p.status == "active" for p in self.people),
                "accounts": len(self.accounts), "grants": len(self.grants),
                "delegations": len(self.delegations), "roles": len(self.roles), "usage_rows": len(self.usage)}
