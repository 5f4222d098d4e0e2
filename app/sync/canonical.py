"""What every identity source is turned into before it touches the directory.

A source (an IdP, an org directory such as WeCom, a CRM, an OA) yields one :class:`Snapshot`: its
departments, its accounts (people as that system knows them), its roles and its role assignments,
each keyed by the source's own ids.  Connectors (pull), the snapshot push API, SCIM and OIDC claims
all produce these; only ``app.sync.apply`` writes them into the directory, in one transaction.

Plain dataclasses, no I/O: a connector's output can be compared in a test with ``==``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ACCOUNT_STATUSES = ("active", "disabled", "left")
SCOPE_TYPES = ("company", "department", "subtree", "listed")  # listed: scope_keys name the departments


@dataclass(frozen=True, slots=True)
class SourceDepartment:
    """A department as a source knows it."""

    key: str
    name: str
    parent_key: str | None = None
    status: str = "active"  # active | disabled
    order: int = 0


@dataclass(frozen=True, slots=True)
class SourceAccount:
    """A person's account in one source (``key`` is the source's own user id)."""

    key: str
    name: str
    status: str = "active"  # one of ACCOUNT_STATUSES
    login: str | None = None
    employee_no: str | None = None
    mobile: str | None = None  # normalised: +86 and 11 digits for mainland numbers
    email: str | None = None  # lower-cased
    department_keys: tuple[str, ...] = ()
    primary_department: str | None = None  # one of department_keys, or None
    position: str | None = None
    manager_key: str | None = None  # another account's key in the same source
    last_login_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # the untouched source record


@dataclass(frozen=True, slots=True)
class SourceRole:
    """A role or position defined in a source."""

    key: str
    name: str


@dataclass(frozen=True, slots=True)
class SourceAssignment:
    """An account holds a source role, within a scope the source states (or the mapping's default)."""

    account_key: str
    role_key: str
    scope_type: str | None = None  # one of SCOPE_TYPES; None = the role mapping's default scope
    scope_keys: tuple[str, ...] = ()  # department keys for department/subtree/listed scopes


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one source said at one time: applied whole or not at all."""

    source: str  # the configured source's name, e.g. "wecom", "crm"
    departments: tuple[SourceDepartment, ...] = ()
    accounts: tuple[SourceAccount, ...] = ()
    roles: tuple[SourceRole, ...] = ()
    assignments: tuple[SourceAssignment, ...] = ()
    taken_at: datetime | None = None
    version: str | None = None  # the pusher's own version label; the same version twice is a no-op
    complete: frozenset[str] = frozenset({"departments", "accounts", "roles", "assignments"})
    # Which parts are complete lists.  An org directory that knows nothing of roles sends
    # complete={"departments", "accounts"}: its silence about roles removes nothing.  A partial
    # snapshot may say "assignments:<role key>": the members of that role are complete (one SCIM
    # group, one CRM role's member list), other roles' assignments are untouched.
