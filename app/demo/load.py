"""Load the demo organisation into the configured database (``accessgov demo``).

The directory goes in one transaction; then the decision state is built and the 90 days of
activity are decided by the real engine, so the decision history and usage are what accessgov
would have recorded.  Source-system roles become grants through ``policies/roles.yaml``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.authz.directory import State
from app.authz.engine import Request
from app.authz.policy import Policy, RoleMapping
from app.db import transaction
from app.decisions.reasons import reason_payload
from app.decisions.recorder import DecisionEntry, write_batch
from app.demo.orgdata import DemoOrg, DemoSourceRole, build_demo_org
from app.directory.models import Account, Delegation, Department, DepartmentSourceId, Grant, Person, Record
from app.errors import Conflict
from app.policy.models import Change

DEMO_CALLERS = {"crm": "demo-crm", "oa": "demo-oa"}


def load_demo(services: Any, today: date | None = None, *, history: bool = True) -> dict[str, Any]:
    """Load the demo organisation and its decision history; refuse if people already exist."""
    today = today or datetime.now(UTC).date()
    org = build_demo_org(today=today)
    state = services.holder.current or services.policy.reload()
    with transaction(services.factory) as session:
        if session.scalar(select(func.count()).select_from(Person)):
            raise Conflict("the database already holds people; use `accessgov demo --reset` (SQLite) "
                           "or an empty database")
        paths = _departments(session, org)
        _people(session, org)
        _accounts(session, org)
        grants = _grants(session, org, state.engine.policy)
        _delegations_and_records(session, org)
        session.add(Change(actor="accessgov demo", kind="demo.load", target="directory",
                           reason="load the demo organisation", details={"people": len(org.people)}))
    state = services.policy.reload()
    decided = _history(services.factory, state, org, paths) if history else 0
    return {"people": len(org.people), "departments": len(org.departments), "accounts": len(org.accounts),
            "grants": grants, "records": len(org.records), "decisions": decided,
            "anomalies": [{"kind": a.kind, "subject": a.subject, "summary": a.summary_zh} for a in org.anomalies]}


def _departments(session: Session, org: DemoOrg) -> dict[str, str]:
    by_id = {d.id: d for d in org.departments}
    paths: dict[str, str] = {}

    def path(did: str) -> str:
        if did not in paths:
            d = by_id[did]
            paths[did] = (path(d.parent_id) if d.parent_id else "") + d.code + "/"
        return paths[did]

    for d in sorted(org.departments, key=lambda d: path(d.id).count("/")):
        session.add(Department(id=d.id, code=d.code, name=d.name, parent_id=d.parent_id, path=path(d.id)))
        session.flush()
        session.add_all([DepartmentSourceId(department_id=d.id, system="crm", source_id=d.crm_id),
                         DepartmentSourceId(department_id=d.id, system="oa", source_id=d.oa_id)])
    return paths


def _people(session: Session, org: DemoOrg) -> None:
    for p in org.people:
        session.add(Person(id=p.id, idp_subject=p.idp_subject, employee_no=p.employee_no, name=p.name,
                           email=p.email, mobile=p.mobile, department_id=p.department_id, position=p.position,
                           status=p.status, hired_on=p.hired_on, left_on=p.left_on))
    session.flush()
    for p in org.people:  # managers after everyone exists (foreign key)
        if p.manager_id:
            session.get(Person, p.id).manager_id = p.manager_id  # type: ignore[union-attr]


def _accounts(session: Session, org: DemoOrg) -> None:
    roles: dict[tuple[str, str], list[str]] = {}
    for sr in org.source_roles:
        roles.setdefault((sr.system, sr.local_id), []).append(sr.source_role)
    for a in org.accounts:
        session.add(Account(system=a.system, local_id=a.local_id, person_id=a.person_id, status=a.status,
                            display_name=a.display_name, last_login_at=_utc(a.last_login_at),
                            attributes={"employee_no": a.employee_no, "mobile": a.mobile, "email": a.email,
                                        "source_roles": roles.get((a.system, a.local_id), [])}))


def _grants(session: Session, org: DemoOrg, policy: Policy) -> int:
    owner = {(a.system, a.local_id): a.person_id for a in org.accounts}
    count = 0
    for sr in org.source_roles:
        person_id = owner.get((sr.system, sr.local_id))
        mapping = policy.mapping_for(sr.system, sr.source_role)
        if person_id is None or mapping is None:
            continue  # orphan accounts' roles stay on the account for the audit
        session.add(_grant_from_source(sr, person_id, mapping))
        count += 1
    for g in org.grants:
        session.add(Grant(person_id=g.person_id, role=g.role, department_id=g.department_id,
                          include_subtree=g.include_subtree, source_system="manual", granted_by=g.granted_by,
                          reason=g.reason, valid_from=_start(g.valid_from), valid_until=_start(g.valid_until)))
        count += 1
    session.flush()
    return count


def _grant_from_source(sr: DemoSourceRole, person_id: str, mapping: RoleMapping) -> Grant:
    """The mapping file decides how broad a source role is; the source system says where."""
    company = mapping.scope == "company" or sr.department_id is None
    return Grant(person_id=person_id, role=mapping.role, department_id=None if company else sr.department_id,
                 include_subtree=not company and (mapping.scope == "subtree" or sr.include_subtree),
                 source_system=sr.system, source_role=sr.source_role, granted_by=f"{sr.system}-sync",
                 reason=f"{sr.system.upper()} 角色「{sr.source_role}」映射为 {mapping.role}",
                 valid_from=_start(sr.valid_from), valid_until=_start(sr.valid_until))


def _delegations_and_records(session: Session, org: DemoOrg) -> None:
    for d in org.delegations:
        session.add(Delegation(from_person_id=d.from_person_id, to_person_id=d.to_person_id, role=d.role,
                               valid_from=_start(d.valid_from), valid_until=_start(d.valid_until),
                               reason=d.reason, created_by=d.from_person_id))
    for r in org.records:
        session.add(Record(type=r.type, id=r.id, owner_id=r.owner_id, department_id=r.department_id,
                           properties=dict(r.properties)))


def _history(factory: Any, state: State, org: DemoOrg, paths: dict[str, str]) -> int:
    records = {(r.type, r.id): r for r in org.records}
    people = {p.id: p for p in org.people}
    batch: list[DecisionEntry] = []
    total = 0
    for entry in _decide_all(state, org, records, people, paths):
        batch.append(entry)
        if len(batch) >= 2000:
            write_batch(factory, batch)
            total, batch = total + len(batch), []
    if batch:
        write_batch(factory, batch)
        total += len(batch)
    return total


def _decide_all(state: State, org: DemoOrg, records: dict[Any, Any], people: dict[str, Any],
                paths: dict[str, str]) -> Iterator[DecisionEntry]:
    for act in org.activity:
        person = people[act.person_id]
        record = records.get((act.resource_type, act.record_id)) if act.record_id else None
        props = dict(record.properties) if record else {}
        dept = record.department_id if record else person.department_id
        at = act.at.astimezone(UTC)
        req = Request(sub=f"user:{person.id}", dom=paths.get(dept, ""), obj=act.resource_type, act=act.action,
                      owner=f"user:{record.owner_id}" if record else f"user:{person.id}",
                      home=paths.get(person.department_id, ""),
                      attrs={"record": props, "action": {"rows": 200}, "context": {}}, at=at)
        decision = state.engine.decide(req)
        if person.left_on is not None and act.at.date() > person.left_on:
            decision = type(decision)(False, "subject_inactive")
        fields = state.engine.field_levels(req, list(act.fields), decision.allowed) if act.fields else {}
        system = act.resource_type.split(".")[0]
        yield DecisionEntry(
            id=str(uuid.uuid4()), at=at, caller=DEMO_CALLERS.get(system, "demo"), subject=f"user:{person.id}",
            person_id=person.id, action=act.action, resource_type=act.resource_type, resource_id=act.record_id,
            allowed=decision.allowed, policy_version=state.version, reason=reason_payload(decision), fields=fields,
        )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _start(value: date | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc(value)
    return datetime.combine(value, time.min, tzinfo=UTC)
