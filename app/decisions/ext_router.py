"""accessgov extensions under /v1: filter, explain, effective permissions, decision log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from app.decisions.models import DecisionRecord, log_filter
from app.decisions.router import DecisionJSON
from app.decisions.schemas import EvaluationRequest, FilterRequest
from app.deps import AuditCaller, DbSession, DecideCaller
from app.errors import InvalidRequest
from app.errors_http import ERROR_RESPONSES

router = APIRouter(prefix="/v1", tags=["Decision extensions"], responses=ERROR_RESPONSES)


@router.post("/filter", summary="A list-page filter: always, never, or a condition for your SQL")
def filter_records(body: FilterRequest, caller: DecideCaller, request: Request) -> dict[str, Any]:
    """Which records of a type the subject may act on, as department/owner/property conditions."""
    return request.app.state.services.insight.filter(request=body)  # type: ignore[no-any-return]


@router.post("/explain", summary="Why a decision comes out as it does")
def explain(body: EvaluationRequest, caller: DecideCaller, request: Request) -> dict[str, Any]:
    """Grants, roles and every candidate rule with its outcome; not recorded as a decision."""
    return request.app.state.services.insight.explain(caller=caller, request=body)  # type: ignore[no-any-return]


@router.get("/people/{person_id}/effective-permissions", summary="A person's effective permissions",
            response_model=dict[str, Any], response_class=DecisionJSON)
def effective_permissions(person_id: str, caller: AuditCaller, request: Request) -> DecisionJSON:
    """Every permission the person holds, grouped per grant, role and (type, action, effect, scope,
    condition), with the grant, role chain and the rules (ids and domains) behind each. Serialised
    directly with orjson: a person holding roles company-wide may have tens of thousands of rules."""
    return DecisionJSON(request.app.state.services.insight.effective(person_id=person_id))


@router.get("/decisions", summary="Search the decision log")
def decisions(
    caller: AuditCaller, session: DbSession,
    person_id: str | None = None, resource_type: str | None = None, allowed: bool | None = None,
    since: datetime | None = None, until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Newest first, filtered by person, type, effect and time."""
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise InvalidRequest("since/until need a timezone, e.g. 2026-11-01T00:00:00+08:00")
    stmt = select(DecisionRecord).where(*log_filter(
        person_id=person_id, resource_type=resource_type, allowed=allowed, since=since, until=until))
    rows = session.scalars(stmt.order_by(DecisionRecord.at.desc()).limit(limit)).all()
    return {"decisions": [{
        "decision_id": r.id, "at": r.at.isoformat(), "caller": r.caller, "subject": r.subject,
        "person_id": r.person_id, "action": r.action, "resource_type": r.resource_type,
        "resource_id": r.resource_id, "allowed": r.allowed, "reason": r.reason, "fields": r.fields,
        "policy_version": r.policy_version} for r in rows]}
