"""AuthZEN search: subjects, resources and actions; every result would evaluate to true.

Each candidate is decided by the same engine as ``evaluation`` (so a result can never disagree
with a later decision); searches are not recorded as decisions.  Page tokens are opaque, bound to
the query they came from: replaying a token with another query is a 400.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.authz.directory import State, StateHolder
from app.decisions.resolve import Caller
from app.decisions.schemas import (
    Action,
    ActionSearchRequest,
    EvaluationItem,
    Page,
    Resource,
    ResourceSearchRequest,
    Subject,
    SubjectSearchRequest,
)
from app.decisions.service import DecisionService
from app.directory.models import Record
from app.errors import InvalidRequest


class SearchService:
    """Search by deciding candidates with the decision engine."""

    def __init__(self, *, holder: StateHolder, decisions: DecisionService, factory: sessionmaker[Session],
                 page_size: int) -> None:
        self._holder = holder
        self._decisions = decisions
        self._factory = factory
        self._page_size = page_size

    def subjects(self, *, caller: Caller, request: SubjectSearchRequest) -> dict[str, Any]:
        """People who may perform the action on the resource, ordered by person id."""
        state = self._holder.require()
        after, limit = self._page(request.page, request.model_dump(exclude={"page"}))
        candidates = sorted(p for p in state.directory.people if p > after
                            and state.directory.people[p].status == "active")

        def allowed(pid: str) -> bool:
            item = EvaluationItem(subject=Subject(type="user", id=pid), action=request.action,
                                  resource=request.resource, context=request.context)
            return self._allowed(state, caller, item)

        return self._collect(candidates, allowed, limit, request,
                             lambda pid: {"type": "user", "id": pid,
                                          "properties": {"name": state.directory.people[pid].name}})

    def resources(self, *, caller: Caller, request: ResourceSearchRequest) -> dict[str, Any]:
        """Records of the registry of that type the subject may act on, ordered by id."""
        state = self._holder.require()
        after, limit = self._page(request.page, request.model_dump(exclude={"page"}))
        with self._factory() as session:
            ids = list(session.scalars(select(Record.id).where(Record.type == request.resource.type,
                                                               Record.id > after).order_by(Record.id)))

        def allowed(rid: str) -> bool:
            item = EvaluationItem(subject=request.subject, action=request.action,
                                  resource=Resource(type=request.resource.type, id=rid), context=request.context)
            return self._allowed(state, caller, item)

        return self._collect(ids, allowed, limit, request, lambda rid: {"type": request.resource.type, "id": rid})

    def actions(self, *, caller: Caller, request: ActionSearchRequest) -> dict[str, Any]:
        """Actions the subject may perform on the resource."""
        state = self._holder.require()
        rtype = state.engine.policy.resources.get(request.resource.type)
        if rtype is None:
            return {"results": [], "page": {"next_token": "", "count": 0}}
        names = [a for a in rtype.actions if self._allowed(state, caller, EvaluationItem(
            subject=request.subject, action=Action(name=a), resource=request.resource, context=request.context))]
        return {"results": [{"name": n} for n in names], "page": {"next_token": "", "count": len(names)}}

    def _allowed(self, state: State, caller: Caller, item: EvaluationItem) -> bool:
        resolved = self._decisions.resolve(state, caller, item)
        return resolved.request is not None and self._decisions.decide_resolved(state, resolved).allowed

    def _collect(self, candidates: Iterable[str], allowed: Callable[[str], bool], limit: int, request: Any,
                 render: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        last = ""
        more = False
        for key in candidates:
            if len(results) == limit:
                more = True
                break
            if allowed(key):
                results.append(render(key))
                last = key
        token = _token(last, request.model_dump(exclude={"page"})) if more else ""
        return {"results": results, "page": {"next_token": token, "count": len(results)},
                "context": {"searched_at": datetime.now(UTC).isoformat()}}

    def _page(self, page: Page | None, query: dict[str, Any]) -> tuple[str, int]:
        limit = min(page.limit, 1000) if page and page.limit else self._page_size
        raw = (page.next_token or page.token) if page else None
        if not raw:
            return "", limit
        try:
            data = json.loads(base64.urlsafe_b64decode(raw.encode()))
            after, digest = str(data["a"]), str(data["h"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRequest("page token is not valid") from exc
        if digest != _digest(query):
            raise InvalidRequest("page token belongs to another query")
        return after, limit


def _digest(query: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _token(after: str, query: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"a": after, "h": _digest(query)}).encode()).decode()
