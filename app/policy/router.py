"""Policy API: versions, changes, rollback, the change log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from sqlalchemy import select

from app.deps import AuditCaller, DbSession, PolicyCaller
from app.errors_http import ERROR_RESPONSES
from app.policy.models import Change, PolicyVersion
from app.policy.schemas import ChangeRead, PolicyChangeCreate, PolicyRollback, PolicyVersionFiles, PolicyVersionRead

# Ids are int4 in PostgreSQL: larger numbers are refused here, not by the database.
DbId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
router = APIRouter(prefix="/v1", tags=["Policy"], responses=ERROR_RESPONSES)
_INVALID: dict[int | str, dict[str, Any]] = {
    422: ERROR_RESPONSES[400] | {"description": "The change fails validation or the policy tests"},
}


@router.get("/policy/versions", response_model=list[PolicyVersionRead], summary="Policy versions")
def versions(caller: PolicyCaller, session: DbSession, request: Request) -> list[PolicyVersion]:
    """Every version, newest first; the first is active."""
    return request.app.state.services.policy.list_versions(session)  # type: ignore[no-any-return]


@router.get("/policy/versions/{version_id}", response_model=PolicyVersionFiles, summary="One version's files")
def version(version_id: DbId, caller: PolicyCaller, session: DbSession, request: Request) -> PolicyVersion:
    """A version with the text of its files."""
    return request.app.state.services.policy.get_version_or_raise(session, version_id)  # type: ignore[no-any-return]


@router.post("/policy/changes", response_model=PolicyVersionRead, status_code=201, responses=_INVALID,
             summary="Change policy lines")
def change(body: PolicyChangeCreate, caller: PolicyCaller, request: Request) -> PolicyVersion:
    """Validated, tested, recorded with who and why, then live; on any failure nothing changes."""
    return request.app.state.services.policy.change_rules(  # type: ignore[no-any-return]
        actor=caller.client_id, reason=body.reason, add=body.add, remove=body.remove)


@router.post("/policy/rollback", response_model=PolicyVersionRead, status_code=201, responses=_INVALID,
             summary="Roll back to an earlier version")
def rollback(body: PolicyRollback, caller: PolicyCaller, request: Request) -> PolicyVersion:
    """The earlier version's contents become a new, current version."""
    return request.app.state.services.policy.rollback(  # type: ignore[no-any-return]
        actor=caller.client_id, reason=body.reason, to_version=body.to_version)


@router.get("/changes", response_model=list[ChangeRead], summary="The change log")
def changes(caller: AuditCaller, session: DbSession,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[Change]:
    """Every policy, grant and delegation change with actor and reason, newest first."""
    return list(session.scalars(select(Change).order_by(Change.id.desc()).limit(limit)))
