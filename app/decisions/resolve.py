"""Turn an AuthZEN subject/resource/action into an engine request, through the directory.

Every way this can fail returns a deny code instead of a request: unknown subject, inactive
person, unknown resource type or action, unknown department.  Nothing here ever yields allow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.authz.directory import Directory, PersonView
from app.authz.engine import Request
from app.authz.policy import Policy

PERSON_TYPES = frozenset({"user", "person", "identity"})


@dataclass(frozen=True)
class Caller:
    """An authenticated caller (a CRM/OA backend or an admin tool)."""

    client_id: str
    scopes: frozenset[str]
    trusted_properties: frozenset[str] = frozenset()


@dataclass(slots=True)
class Resolved:
    """The outcome of resolution: a request, or the deny code that replaces it."""

    request: Request | None = None
    person: PersonView | None = None
    deny: str | None = None
    message: str = ""
    fields: Sequence[str] = ()
    notes: Sequence[str] = ()


@dataclass(frozen=True)
class RecordInfo:
    """What the registry knows of a record (fills properties the caller left out)."""

    owner_id: str | None
    department_id: str | None
    properties: Mapping[str, Any]


def resolve_person(directory: Directory, subject_type: str, subject_id: str) -> tuple[PersonView | None, str]:
    """Person of ``P00012`` / ``crm:zhangwei01``; (None, deny code) when there is none or it is inactive."""
    if subject_type not in PERSON_TYPES:
        return None, "unknown_subject_type"
    person = directory.people.get(subject_id)
    if person is None and ":" in subject_id:
        system, _, local = subject_id.partition(":")
        account = directory.accounts.get((system, local))
        if account is None:
            return None, "unknown_subject"
        if account.status != "active":
            return None, "account_disabled"
        if account.person_id is None:
            return None, "orphan_account"
        person = directory.people.get(account.person_id)
    if person is None:
        return None, "unknown_subject"
    if person.status != "active":
        return None, "subject_inactive"
    return person, ""


def resolve_owner(directory: Directory, owner: Any, system: str) -> str:
    """Casbin subject of a record's owner, or "" when unknown (owner-scoped rules then never match)."""
    if not isinstance(owner, str) or not owner:
        return ""
    if owner in directory.people:
        return f"user:{owner}"
    system_name, _, local = owner.rpartition(":")
    account = directory.accounts.get((system_name or system, local))
    if account is not None and account.person_id is not None:
        return f"user:{account.person_id}"
    return ""


def resolve(policy: Policy, directory: Directory, caller: Caller, subject: Any, action: Any, resource: Any,
            context: Mapping[str, Any] | None, record: RecordInfo | None, now: datetime,
            memo: dict[Any, Any] | None = None) -> Resolved:
    """Resolve one evaluation; the result carries a request or a deny code, never an allow.

    ``memo``: a dict that lives as long as one request (a batch).  Its items usually share one subject
    object (the top-level default), whose person and home are then looked up once; it is keyed by the
    object's identity, which is unique while the request's items hold their subjects.  (Positional
    arguments: the decision service calls this once per decision.)
    """
    rtype = policy.resources.get(resource.type)
    if rtype is None:
        return Resolved(deny="unknown_resource_type", message=f"no resource type {resource.type!r}")
    if action.name not in rtype.actions:
        return Resolved(deny="unknown_action", message=f"{resource.type} has no action {action.name!r}")
    key = (id(subject), rtype.system)
    seen = memo.get(key) if memo is not None else None
    if seen is None:
        person, code = resolve_person(directory, subject.type, subject.id)
        found: list[str] = []
        home = _home(directory, person, subject, caller, rtype.system, found) if person is not None else ""
        seen = (person, code, home, found or ())
        if memo is not None:
            memo[key] = seen
    person, code, home, notes = seen
    if person is None:
        return Resolved(deny=code, message=f"subject {subject.id!r}: {code}")
    # The request's own dicts are shared, not copied, where nothing has to change in them: conditions
    # only read them.  A copy is made to leave out ``fields`` or to add what the registry knows.
    props = resource.properties or {}
    fields: Sequence[str] = ()
    if "fields" in props or record is not None:
        props = dict(props)
        asked = props.pop("fields", None)
        if asked is not None:
            if not isinstance(asked, list) or not all(isinstance(f, str) for f in asked):
                return Resolved(deny="invalid_fields", message="resource.properties.fields must be a list of names")
            fields = list(dict.fromkeys(asked))
    if record is not None:
        props.setdefault("owner", record.owner_id)
        props.setdefault("department", record.department_id)
        for k, value in record.properties.items():
            props.setdefault(k, value)
    dom = _record_domain(directory, props.get("department"), rtype.system)
    if dom is None:
        return Resolved(person=person, deny="unknown_department",
                        message="resource.properties.department is missing or unknown")
    owner = resolve_owner(directory, props.get("owner"), rtype.system)
    attrs = {"record": props, "action": action.properties or {}, "context": context or {}}
    return Resolved(Request(person.sub, dom, resource.type, action.name, owner, home, attrs, now), person,
                    fields=fields, notes=notes)


def _record_domain(directory: Directory, ref: Any, system: str) -> str | None:
    if not isinstance(ref, str) or not ref:
        return None
    return directory.department_path(ref, system)


def _home(
    directory: Directory, person: PersonView, subject: Any, caller: Caller, system: str, notes: list[str]
) -> str:
    """The subject's home department; a caller may assert it only where it is trusted for it."""
    asserted = (subject.properties or {}).get("department")
    if asserted is None:
        return person.home
    if "department" not in caller.trusted_properties:
        notes.append("subject.properties.department ignored: caller is not trusted for it")
        return person.home
    path = directory.department_path(str(asserted), system)
    if path is None:
        notes.append("subject.properties.department ignored: unknown department")
        return person.home
    return path
