"""Explain, filter and effective permissions: the decision engine's answers to "why" and "which"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.authz.directory import StateHolder
from app.authz.filtering import compile_filter
from app.authz.insight import effective_permissions, explain
from app.decisions.resolve import Caller, resolve_person
from app.decisions.schemas import EvaluationRequest, FilterRequest
from app.decisions.service import DecisionService
from app.errors import InvalidRequest, NotFound


class InsightService:
    """Read-only questions about the policy as it applies to people."""

    def __init__(self, *, holder: StateHolder, decisions: DecisionService) -> None:
        self._holder = holder
        self._decisions = decisions

    def explain(self, *, caller: Caller, request: EvaluationRequest) -> dict[str, Any]:
        """The full trace of one decision (not recorded as a decision)."""
        state = self._holder.require()
        resolved = self._decisions.resolve(state, caller, request)
        if resolved.request is None:
            return {"decision": False, "code": resolved.deny, "detail": resolved.message,
                    "policy_version": state.version}
        out = explain(state.engine, resolved.request, resolved.fields)
        return out | {"policy_version": state.version, "notes": resolved.notes}

    def filter(self, *, request: FilterRequest) -> dict[str, Any]:
        """always / never / a condition a CRM can put in its SQL."""
        state = self._holder.require()
        rtype = state.engine.policy.resources.get(request.resource.type)
        if rtype is None:
            raise InvalidRequest(f"unknown resource type {request.resource.type!r}")
        if request.action.name not in rtype.actions:
            raise InvalidRequest(f"{rtype.name} has no action {request.action.name!r}")
        person, code = resolve_person(state.directory, request.subject.type, request.subject.id)
        base = {"policy_version": state.version, "resource_type": rtype.name, "action": request.action.name}
        if person is None:
            return base | {"decision": "never", "condition": None, "reason": code, "valid_until": None}
        out = compile_filter(
            state.engine, sub=person.sub, person_id=person.id, home=person.home, obj=rtype.name,
            act=request.action.name, action_props=request.action.properties or {},
            context=request.context or {}, departments=state.directory.departments, at=datetime.now(UTC),
        )
        return base | {"subject": person.id} | out

    def effective(self, *, person_id: str) -> dict[str, Any]:
        """Every permission of a person with the grant and role path behind it."""
        state = self._holder.require()
        person = state.directory.people.get(person_id)
        if person is None:
            raise NotFound(f"no person {person_id}")
        active = person.status == "active"
        perms = effective_permissions(state.engine, person.sub, person.home, datetime.now(UTC)) if active else []
        return {"person": {"id": person.id, "name": person.name, "status": person.status,
                           "department": person.home or None},
                "policy_version": state.version, "permissions": perms,
                "note": None if person.status == "active" else "inactive people hold no permissions"}
