"""Directory API: departments, people, accounts, grants, delegations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from sqlalchemy import select

from app.deps import DbSession, DirectoryCaller
from app.directory.models import Account, Delegation, Department, Grant, Person
from app.directory.schemas import (
    AccountRead,
    DelegationCreate,
    DelegationRead,
    DepartmentRead,
    GrantCreate,
    GrantRead,
    GrantRevoke,
    PersonRead,
)
from app.directory.service import get_person_or_raise
from app.errors_http import ERROR_RESPONSES

# Ids are int4 in PostgreSQL: larger numbers are refused here, not by the database.
DbId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
router = APIRouter(prefix="/v1", tags=["Directory"], responses=ERROR_RESPONSES)
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]


@router.get("/departments", response_model=list[DepartmentRead], summary="Departments (a tree by parent_id)")
def departments(caller: DirectoryCaller, session: DbSession) -> list[Department]:
    """Every department, ordered by path."""
    return list(session.scalars(select(Department).order_by(Department.path)))


@router.get("/people", response_model=list[PersonRead], summary="People")
def people(caller: DirectoryCaller, session: DbSession, department_id: str | None = None,
           status: str | None = None, limit: Limit = 100, offset: Offset = 0) -> list[Person]:
    """People, filtered by department and status."""
    stmt = select(Person).order_by(Person.id).limit(limit).offset(offset)
    if department_id:
        stmt = stmt.where(Person.department_id == department_id)
    if status:
        stmt = stmt.where(Person.status == status)
    return list(session.scalars(stmt))


@router.get("/people/{person_id}", response_model=PersonRead, summary="One person")
def person(person_id: str, caller: DirectoryCaller, session: DbSession) -> Person:
    """A person, or 404."""
    return get_person_or_raise(session, person_id)


@router.get("/accounts", response_model=list[AccountRead], summary="Source-system accounts")
def accounts(caller: DirectoryCaller, session: DbSession, system: str | None = None,
             person_id: str | None = None, orphans: bool = False, limit: Limit = 100,
             offset: Offset = 0) -> list[Account]:
    """Accounts; ``orphans=true`` lists those linked to nobody."""
    stmt = select(Account).order_by(Account.system, Account.local_id).limit(limit).offset(offset)
    if system:
        stmt = stmt.where(Account.system == system)
    if person_id:
        stmt = stmt.where(Account.person_id == person_id)
    if orphans:
        stmt = stmt.where(Account.person_id.is_(None))
    return list(session.scalars(stmt))


@router.get("/grants", response_model=list[GrantRead], summary="Grants")
def grants(caller: DirectoryCaller, session: DbSession, person_id: str | None = None, role: str | None = None,
           include_revoked: bool = False, limit: Limit = 100, offset: Offset = 0) -> list[Grant]:
    """Grants, newest first."""
    stmt = select(Grant).order_by(Grant.id.desc()).limit(limit).offset(offset)
    if person_id:
        stmt = stmt.where(Grant.person_id == person_id)
    if role:
        stmt = stmt.where(Grant.role == role)
    if not include_revoked:
        stmt = stmt.where(Grant.revoked_at.is_(None))
    return list(session.scalars(stmt))


@router.post("/grants", response_model=GrantRead, status_code=201, summary="Grant a role",
             responses={404: ERROR_RESPONSES[400] | {"description": "Unknown person"},
                        409: ERROR_RESPONSES[400] | {"description": "Person not active"}})
def create_grant(body: GrantCreate, caller: DirectoryCaller, request: Request) -> Grant:
    """Grant a role in a department scope; recorded with who and why; decisions see it at once."""
    return request.app.state.services.grants.create_grant(  # type: ignore[no-any-return]
        actor=caller.client_id, **body.model_dump())


@router.post("/grants/{grant_id}/revoke", response_model=GrantRead, summary="Revoke a grant",
             responses={404: ERROR_RESPONSES[400] | {"description": "Unknown grant"},
                        409: ERROR_RESPONSES[400] | {"description": "Already revoked"}})
def revoke_grant(grant_id: DbId, body: GrantRevoke, caller: DirectoryCaller, request: Request) -> Grant:
    """Revoke a grant; it stays in the record, marked revoked."""
    return request.app.state.services.grants.revoke_grant(  # type: ignore[no-any-return]
        actor=caller.client_id, grant_id=grant_id, reason=body.reason)


@router.get("/delegations", response_model=list[DelegationRead], summary="Delegations")
def delegations(caller: DirectoryCaller, session: DbSession, person_id: str | None = None) -> list[Delegation]:
    """Delegations from or to a person."""
    stmt = select(Delegation).order_by(Delegation.id.desc())
    if person_id:
        stmt = stmt.where((Delegation.from_person_id == person_id) | (Delegation.to_person_id == person_id))
    return list(session.scalars(stmt))


@router.post("/delegations", response_model=DelegationRead, status_code=201, summary="Delegate a role")
def create_delegation(body: DelegationCreate, caller: DirectoryCaller, request: Request) -> Delegation:
    """A deputy holds the delegator's role in the delegator's departments for the window."""
    return request.app.state.services.grants.create_delegation(  # type: ignore[no-any-return]
        actor=caller.client_id, **body.model_dump())
