"""Decisions: resolve, decide, shape the AuthZEN answer, record it.  Any doubt is deny."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from app.authz.directory import State, StateHolder
from app.authz.engine import Decision as EngineDecision
from app.decisions.reasons import explain_code, reason_payload
from app.decisions.recorder import DecisionEntry, DecisionRecorder
from app.decisions.resolve import Caller, RecordInfo, Resolved, resolve
from app.decisions.schemas import EvaluationItem, EvaluationRequest, EvaluationsRequest, Semantic
from app.errors import InvalidRequest
from app.metrics import Metrics

log = logging.getLogger(__name__)
RecordLookup = Callable[[str, str], RecordInfo | None]


class DecisionService:
    """The decision path the CRM and OA call on every request."""

    def __init__(self, *, holder: StateHolder, recorder: DecisionRecorder, metrics: Metrics,
                 record_lookup: RecordLookup, max_batch: int) -> None:
        self._holder = holder
        self._recorder = recorder
        self._metrics = metrics
        self._record_lookup = record_lookup
        self._max_batch = max_batch
        self._ids = DecisionIds()
        self._counters: dict[tuple[str, str], Any] = {}

    def _count(self, allowed: bool, system: str) -> None:
        key = ("allow" if allowed else "deny", system)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = self._metrics.decisions.labels(*key)
        child.inc()

    def evaluate(self, *, caller: Caller, request: EvaluationRequest | EvaluationItem | Item) -> dict[str, Any]:
        """One decision as an AuthZEN decision object; never raises for a decision problem."""
        started = time.perf_counter()
        decision_id = self._ids.next()
        state = self._holder.current
        try:
            out = self._evaluate(state, caller, request, decision_id)
        except Exception:
            # Fail closed: a bug or an outage on the decision path denies, it never allows.
            log.exception("decision failed", extra={"decision_id": decision_id})
            out = _error_answer(decision_id, state, "internal_error", "the decision could not be made")
        self._metrics.decision_seconds.observe(time.perf_counter() - started)
        rtype = request.resource.type if request.resource else ""
        self._count(out["decision"], rtype.partition(".")[0] if "." in rtype else "unknown")
        return out

    def evaluate_many(self, *, caller: Caller, request: EvaluationsRequest) -> dict[str, Any]:
        """The AuthZEN batch: defaults from the top level, order kept, semantics honoured."""
        if not request.evaluations:
            if request.subject and request.action and request.resource:
                single = EvaluationItem(subject=request.subject, action=request.action,
                                        resource=request.resource, context=request.context)
                return self.evaluate(caller=caller, request=single)
            raise InvalidRequest("give `evaluations`, or subject, action and resource")
        if len(request.evaluations) > self._max_batch:
            raise InvalidRequest(f"at most {self._max_batch} evaluations per request",
                                 details={"max": self._max_batch, "given": len(request.evaluations)})
        items = [_with_defaults(request, i, item) for i, item in enumerate(request.evaluations)]
        semantic = request.options.evaluations_semantic if request.options else Semantic.execute_all
        results: list[dict[str, Any]] = []
        for item in items:
            answer = self.evaluate(caller=caller, request=item)
            results.append(answer)
            if semantic == Semantic.deny_on_first_deny and not answer["decision"]:
                break
            if semantic == Semantic.permit_on_first_permit and answer["decision"]:
                break
        return {"evaluations": results}

    def decide_resolved(self, state: State, resolved: Resolved) -> EngineDecision:
        """The engine's decision for a resolved request, fields included."""
        assert resolved.request is not None
        decision = state.engine.decide(resolved.request)
        if resolved.fields:
            levels = state.engine.field_levels(resolved.request, resolved.fields, decision.allowed)
            decision = EngineDecision(decision.allowed, decision.code, decision.rule, decision.hold, levels)
        return decision

    def resolve(self, state: State, caller: Caller, request: EvaluationRequest | EvaluationItem | Item) -> Resolved:
        """Resolve subject, resource and action through the directory and the record registry."""
        assert request.subject is not None
        assert request.action is not None
        assert request.resource is not None
        props = request.resource.properties or {}
        # Only a caller that leaves out the department pays a registry lookup; the usual
        # CRM/OA call carries owner and department and never touches the database.
        needs_registry = request.resource.id and "department" not in props
        record = self._record_lookup(request.resource.type, request.resource.id) if needs_registry else None
        return resolve(policy=state.engine.policy, directory=state.directory, caller=caller,
                       subject=request.subject, action=request.action, resource=request.resource,
                       context=request.context, record=record, now=datetime.now(UTC))

    def _evaluate(self, state: State | None, caller: Caller, request: Any, decision_id: str) -> dict[str, Any]:
        if state is None:
            return _error_answer(decision_id, None, "policy_not_loaded", "the policy is not loaded yet")
        resolved = self.resolve(state, caller, request)
        if resolved.request is None:
            decision = EngineDecision(False, resolved.deny or "unresolved",
                                      fields=dict.fromkeys(resolved.fields, "hidden"))
        else:
            decision = self.decide_resolved(state, resolved)
        reason = reason_payload(decision)
        context = _context(decision_id, state, decision, resolved, reason)
        self._record(caller, request, resolved, decision, decision_id, state, reason)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("decision", extra={"decision_id": decision_id, "caller": caller.client_id,
                                         "allowed": decision.allowed, "code": decision.code,
                                         "policy_version": state.version})
        return {"decision": decision.allowed, "context": context}

    def _record(self, caller: Caller, request: Any, resolved: Resolved, decision: EngineDecision,
                decision_id: str, state: State, reason: dict[str, Any]) -> None:
        at = resolved.request.at if resolved.request is not None else datetime.now(UTC)
        self._recorder.record(DecisionEntry(
            id=decision_id, at=at, caller=caller.client_id,
            subject=f"{request.subject.type}:{request.subject.id}",
            person_id=resolved.person.id if resolved.person else None, action=request.action.name,
            resource_type=request.resource.type, resource_id=request.resource.id or None,
            allowed=decision.allowed, policy_version=state.version,
            reason=reason, fields=dict(decision.fields or {}),
        ))


class DecisionIds:
    """Unique decision ids in UUID form, cheaply: 96 random bits per process and a counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reseed()

    def _reseed(self) -> None:
        self._prefix = os.urandom(12).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        """A new id (reseeded before the 32-bit counter could wrap)."""
        n = next(self._counter)
        if n >= 0xFFFFFFFF:
            with self._lock:
                self._reseed()
                n = next(self._counter)
        h = self._prefix
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:24]}{n:08x}"


class Item(NamedTuple):
    """One evaluation with the batch defaults filled in (parts validated already; nothing re-validated)."""

    subject: Any
    action: Any
    resource: Any
    context: dict[str, Any] | None


def _with_defaults(top: EvaluationsRequest, index: int, item: EvaluationItem) -> Item:
    merged = Item(item.subject or top.subject, item.action or top.action, item.resource or top.resource,
                  item.context if item.context is not None else top.context)
    missing = [k for k in ("subject", "action", "resource") if getattr(merged, k) is None]
    if missing:
        raise InvalidRequest(f"evaluations[{index}] lacks {', '.join(missing)} and there is no top-level default",
                             details={"index": index, "missing": missing})
    return merged


def _context(decision_id: str, state: State, decision: EngineDecision, resolved: Resolved,
             reason: dict[str, Any]) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "decision_id": decision_id,
        "policy_version": state.version,
        "reason": dict(reason),
        "reason_admin": {"en": explain_code(decision, "en"), "zh": explain_code(decision, "zh")},
    }
    if not decision.allowed:
        ctx["reason_user"] = {"en-403": "You do not have permission for this.", "zh-403": "您没有此操作的权限。"}
    if resolved.message:
        ctx["reason"]["detail"] = resolved.message
    if decision.fields:
        ctx["fields"] = decision.fields
        masks = state.engine.policy.classification.get(resolved.request.obj, {}) if resolved.request else {}
        masked = {f: masks[f].mask for f, lvl in decision.fields.items() if lvl == "masked" and f in masks}
        if masked:
            ctx["masks"] = masked
    if resolved.notes:
        ctx["notes"] = resolved.notes
    return ctx


def _error_answer(decision_id: str, state: State | None, code: str, message: str) -> dict[str, Any]:
    return {
        "decision": False,
        "context": {
            "decision_id": decision_id,
            "policy_version": state.version if state else None,
            "reason": {"code": code},
            "error": {"status": 503 if code == "policy_not_loaded" else 500, "message": message},
        },
    }
