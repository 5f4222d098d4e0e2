"""The audit's view of the company: the directory, the policy and the usage data, as plain data.

Read in a handful of column queries (no ORM objects: 100,000 people and a million usage rows must
load in seconds) and handed to ``audit.checks``, which never reads the service's tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.authz.policy import Policy
from app.decisions.models import Usage
from app.directory.models import Account, Delegation, Department, Grant, Person
from app.directory.repository import grant_domain
from app.sync.models import SyncConflict
from audit import population as ap
from audit import tables as at


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _last_sign_in(login: datetime | None, attrs: Any) -> datetime | None:
    """The later of the source's last login and the sign-in accessgov saw (claims at sign-in)."""
    seen = attrs.get("last_sign_in_at") if isinstance(attrs, dict) else None
    if isinstance(seen, str):
        try:
            at_ = _utc(datetime.fromisoformat(seen))
        except ValueError:
            at_ = None
        if at_ is not None and (login is None or at_ > login):
            return at_
    return login


def role_infos(policy: Policy) -> dict[str, ap.RoleInfo]:
    """Each central role with the allows and classified fields it gives, through inheritance."""
    parents: dict[str, list[str]] = {}
    for inh in policy.inherits:
        if inh.dom == "*":
            parents.setdefault(inh.role, []).append(inh.parent)
    rules_of: dict[str, list[Any]] = {}
    for r in policy.rules:
        rules_of.setdefault(r.role, []).append(r)
    fields_of: dict[str, list[Any]] = {}
    for fr in policy.field_rules:
        fields_of.setdefault(fr.role, []).append(fr)
    mapped: dict[str, set[str]] = {}
    for m in policy.mappings:
        mapped.setdefault(m.role, set()).add(m.scope)
    out: dict[str, ap.RoleInfo] = {}
    for name, rd in policy.roles.items():
        closure, todo = [], [name]
        while todo:
            role = todo.pop()
            if role in closure:
                continue
            closure.append(role)
            todo.extend(parents.get(role, ()))
        perms: list[ap.Perm] = []
        denies: set[str] = set()
        fields: dict[tuple[str, str], ap.FieldPerm] = {}
        for role in closure:
            for r in rules_of.get(role, ()):
                if r.eft == "allow":
                    perms.append(ap.Perm(r.obj, r.act, r.scope, r.dom, r.cond.source or "-", r.id, role))
                elif r.dom == "*" and r.scope == "all" and not r.cond.clauses:
                    denies.add(f"{r.obj}:{r.act}")
            for fr in fields_of.get(role, ()):
                cls = policy.classification.get(fr.obj, {}).get(fr.field)
                if cls is None or fr.act != "read" or fr.level not in ("visible", "masked"):
                    continue
                key = (fr.obj, fr.field)
                if key not in fields or (fr.level == "visible" and fields[key].level != "visible"):
                    fields[key] = ap.FieldPerm(fr.obj, fr.field, fr.level, cls.sensitivity, fr.id, role)
        hidden = {(fr.obj, fr.field) for role in closure for fr in fields_of.get(role, ())
                  if fr.act == "read" and fr.level == "hidden"}
        out[name] = ap.RoleInfo(name, rd.title_zh, rd.title_en, rd.privileged, tuple(perms),
                                tuple(v for k, v in sorted(fields.items()) if k not in hidden),
                                frozenset(denies), frozenset(mapped.get(name, ())))
    return out


def build_population(session: Session, policy: Policy, now: datetime | None = None) -> ap.Population:
    """The population as of ``now``, from one session (run it in one transaction for a consistent read)."""
    now = now or datetime.now(UTC)
    paths = dict(session.execute(select(Department.id, Department.path)).all())
    names: dict[str, str] = {str(p): str(n) for p, n in session.execute(select(Department.path, Department.name))}
    people = tuple(ap.Person(pid, name, did, paths.get(did, "") if did else "", pos, mgr, status, hired, left)
                   for pid, name, did, pos, mgr, status, hired, left in session.execute(select(
                       Person.id, Person.name, Person.department_id, Person.position, Person.manager_id,
                       Person.status, Person.hired_on, Person.left_on)))
    accounts = tuple(ap.Account(system, local, pid, status, paths.get(did, "") if did else "",
                                _last_sign_in(_utc(login), attrs), link_state or "auto")
                     for system, local, pid, status, did, login, link_state, attrs in session.execute(select(
                         Account.system, Account.local_id, Account.person_id, Account.status,
                         Account.department_id, Account.last_login_at, Account.link_state, Account.attributes)))
    grants = tuple(ap.Grant(gid, pid, role, grant_domain(paths.get(did) if did else None, sub), source,
                            source_role, _utc(created) or now, _utc(vf), _utc(vu), _utc(susp), susp_reason, by)
                   for gid, pid, role, did, sub, source, source_role, created, vf, vu, susp, susp_reason, by
                   in session.execute(select(
                       Grant.id, Grant.person_id, Grant.role, Grant.department_id, Grant.include_subtree,
                       Grant.source_system, Grant.source_role, Grant.created_at, Grant.valid_from, Grant.valid_until,
                       Grant.suspended_at, Grant.suspend_reason, Grant.granted_by).where(Grant.revoked_at.is_(None))))
    delegations = tuple(ap.Delegation(i, f, to, role, _utc(vf), _utc(vu)) for i, f, to, role, vf, vu in session.execute(
        select(Delegation.id, Delegation.from_person_id, Delegation.to_person_id, Delegation.role,
               Delegation.valid_from, Delegation.valid_until).where(Delegation.revoked_at.is_(None))))
    usage = tuple(ap.Usage(p, rt, act, n, allows, _utc(last) or now, _utc(first) or now)
                  for p, rt, act, n, allows, last, first in session.execute(select(
                      Usage.person_id, Usage.resource_type, Usage.action, Usage.count, Usage.allows, Usage.last_used,
                      Usage.first_used)))
    field_use = tuple(ap.FieldUse(p, rt, f, n, _utc(last) or now) for p, rt, f, n, last in session.execute(select(
        at.field_usage.c.person_id, at.field_usage.c.resource_type, at.field_usage.c.field, at.field_usage.c.count,
        at.field_usage.c.last_used)))
    conflicts = tuple(ap.Conflict(p, attr, ms, mv, os_, ov, _utc(seen) or now)
                      for p, attr, ms, mv, os_, ov, seen in session.execute(select(
                          SyncConflict.person_id, SyncConflict.attribute, SyncConflict.master_source,
                          SyncConflict.master_value, SyncConflict.other_source, SyncConflict.other_value,
                          SyncConflict.last_seen)))
    since = session.scalar(select(func.min(Usage.first_used)))
    return ap.Population(taken_at=now, people=people, accounts=accounts, grants=grants, delegations=delegations,
                         roles=role_infos(policy), usage=usage, field_usage=field_use, conflicts=conflicts,
                         department_names=names, usage_since=_utc(since))
