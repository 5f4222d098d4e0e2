"""Grant and delegation changes: validated, recorded with who and why in the same transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import transaction, utcnow
from app.directory.models import Delegation, Department, Grant, Person, Role
from app.errors import Conflict, InvalidRequest, NotFound
from app.policy.models import Change
from app.policy.service import PolicyService

# The console's three duties (等保 2.0 三员): one person holds at most one of them (policies/sod.yaml).
CONSOLE_DUTIES = ("console_auditor", "console_security_admin", "console_system_admin")


class GrantService:
    """Creates and revokes grants and delegations, then refreshes the decision state."""

    def __init__(self, *, factory: sessionmaker[Session], policy: PolicyService) -> None:
        self._factory = factory
        self._policy = policy

    @property
    def factory(self) -> sessionmaker[Session]:
        """The session factory (for callers that read a grant before changing it)."""
        return self._factory

    def create_grant(
        self, *, actor: str, person_id: str, role: str, department_id: str | None, include_subtree: bool,
        reason: str, valid_from: datetime | None, valid_until: datetime | None, source_system: str = "manual",
    ) -> Grant:
        """Grant a role to a person within a department scope and a time window."""
        _check_window(valid_from, valid_until)
        if valid_until is not None and valid_until <= utcnow():
            raise InvalidRequest("valid_until is already past: such a grant would never be in force")
        if not reason.strip():
            raise InvalidRequest("a grant needs a reason")
        with transaction(self._factory) as session:
            person = get_person_or_raise(session, person_id)
            if person.status != "active":
                raise Conflict(f"{person_id} is {person.status}; grants go to active people only")
            if session.get(Role, role) is None:
                raise InvalidRequest(f"unknown role {role!r}")
            if department_id is not None and session.get(Department, department_id) is None:
                raise InvalidRequest(f"unknown department {department_id!r}")
            _refuse_second_duty(session, person_id, role)
            grant = Grant(person_id=person_id, role=role, department_id=department_id,
                          include_subtree=include_subtree, source_system=source_system, granted_by=actor,
                          reason=reason, valid_from=valid_from, valid_until=valid_until)
            session.add(grant)
            session.flush()
            session.add(Change(actor=actor, kind="grant.create", target=f"grant:{grant.id}", reason=reason,
                               details={"person_id": person_id, "role": role, "department_id": department_id,
                                        "include_subtree": include_subtree}))
        self._policy.live.catch_up()
        return grant

    def revoke_grant(self, *, actor: str, grant_id: int, reason: str) -> Grant:
        """Revoke a grant (kept, marked revoked, for the audit trail)."""
        if not reason.strip():
            raise InvalidRequest("a revocation needs a reason")
        with transaction(self._factory) as session:
            grant = session.get(Grant, grant_id)
            if grant is None:
                raise NotFound(f"no grant {grant_id}")
            if grant.revoked_at is not None:
                raise Conflict(f"grant {grant_id} is already revoked")
            grant.revoked_at, grant.revoked_by, grant.revoke_reason = utcnow(), actor, reason
            session.add(Change(actor=actor, kind="grant.revoke", target=f"grant:{grant_id}", reason=reason,
                               details={"person_id": grant.person_id, "role": grant.role}))
        self._policy.live.catch_up()
        return grant

    def create_delegation(
        self, *, actor: str, from_person_id: str, to_person_id: str, role: str, valid_from: datetime,
        valid_until: datetime, reason: str,
    ) -> Delegation:
        """Hand one of a person's roles to a deputy for a window."""
        _check_window(valid_from, valid_until)
        if not reason.strip():
            raise InvalidRequest("a delegation needs a reason")
        if from_person_id == to_person_id:
            raise InvalidRequest("a person cannot delegate to themselves")
        with transaction(self._factory) as session:
            get_person_or_raise(session, from_person_id)
            deputy = get_person_or_raise(session, to_person_id)
            if deputy.status != "active":
                raise Conflict(f"{to_person_id} is {deputy.status}")
            held = session.scalars(select(Grant.id).where(
                Grant.person_id == from_person_id, Grant.role == role, Grant.revoked_at.is_(None))).first()
            if held is None:
                raise Conflict(f"{from_person_id} holds no {role} grant to delegate")
            delegation = Delegation(from_person_id=from_person_id, to_person_id=to_person_id, role=role,
                                    valid_from=valid_from, valid_until=valid_until, reason=reason, created_by=actor)
            session.add(delegation)
            session.flush()
            session.add(Change(actor=actor, kind="delegation.create", target=f"delegation:{delegation.id}",
                               reason=reason, details={"from": from_person_id, "to": to_person_id, "role": role}))
        self._policy.live.catch_up()
        return delegation


def held_duties(session: Session, person_id: str) -> list[str]:
    """The console duties a person holds through grants in force now (sorted, no repeats)."""
    now = utcnow()
    rows = session.scalars(select(Grant.role).where(
        Grant.person_id == person_id, Grant.role.in_(CONSOLE_DUTIES), Grant.revoked_at.is_(None),
        Grant.suspended_at.is_(None), (Grant.valid_until.is_(None)) | (Grant.valid_until > now)))
    return sorted(set(rows))


def _refuse_second_duty(session: Session, person_id: str, role: str) -> None:
    if role not in CONSOLE_DUTIES:
        return
    other = [duty for duty in held_duties(session, person_id) if duty != role]
    if other:
        raise Conflict(f"{person_id} already holds the console duty {other[0]}; one person holds one of "
                       f"{', '.join(CONSOLE_DUTIES)} (separation of duties)")


def get_person_or_raise(session: Session, person_id: str) -> Person:
    """A person, or NotFound."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person {person_id}")
    return person


def _check_window(valid_from: datetime | None, valid_until: datetime | None) -> None:
    for value in (valid_from, valid_until):
        if value is not None and value.tzinfo is None:
            raise InvalidRequest("times need a timezone (e.g. 2026-12-01T00:00:00+08:00)")
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise InvalidRequest("valid_until must be after valid_from")
