"""Decisions: resolve, decide, shape the AuthZEN answer, record it.  Any doubt is deny.

One request (a single evaluation or a batch) is one pass of ``_run``: one clock reading, one lock
per metric and one append of its log rows to the decision-log queue, whatever the number of
decisions.  The reason of a decision (its payload, JSON for the log, and the sentences) is built
once per rule and role hold (``ReasonCache``) and shared by every answer that gives it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from app.authz.directory import State, StateHolder
from app.authz.engine import Decision as EngineDecision
from app.decisions.reasons import ReasonCache
from app.decisions.recorder import EMPTY_JSON, DecisionRecorder, LogRow
from app.decisions.resolve import Caller, RecordInfo, Resolved, resolve
from app.decisions.schemas import EvaluationItem, EvaluationRequest, EvaluationsRequest, ItemIn, Semantic
from app.errors import InvalidRequest
from app.metrics import Metrics

log = logging.getLogger(__name__)
RecordLookup = Callable[[str, str], RecordInfo | None]
_REASON_USER = {"en-403": "You do not have permission for this.", "zh-403": "您没有此操作的权限。"}


class Item(NamedTuple):
    """One evaluation with the batch defaults filled in (parts validated already; nothing re-validated)."""

    subject: Any
    action: Any
    resource: Any
    context: dict[str, Any] | None


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
        self._reasons = ReasonCache()

    def evaluate(self, *, caller: Caller,
                 request: EvaluationRequest | EvaluationItem | Item | ItemIn) -> dict[str, Any]:
        """One decision as an AuthZEN decision object; never raises for a decision problem."""
        return self._run(caller, (request,), Semantic.execute_all)[0]

    def evaluate_many(self, *, caller: Caller, request: EvaluationsRequest) -> dict[str, Any]:
        """The AuthZEN batch: defaults from the top level, order kept, semantics honoured."""
        if not request.evaluations:
            if request.subject and request.action and request.resource:
                return self.evaluate(caller=caller, request=Item(request.subject, request.action, request.resource,
                                                                 request.context))
            raise InvalidRequest("give `evaluations`, or subject, action and resource")
        items = self.batch_items(request.subject, request.action, request.resource, request.context,
                                 request.evaluations)
        semantic = request.options.evaluations_semantic if request.options else Semantic.execute_all
        return {"evaluations": self._run(caller, items, semantic)}

    def batch_items(self, subject: Any, action: Any, resource: Any, context: dict[str, Any] | None,
                    evaluations: Sequence[Any]) -> list[Item]:
        """The evaluations with the top-level defaults filled in; 400 when one lacks a part or there are too many."""
        self._check_size(evaluations)
        items = [Item(e.subject or subject, e.action or action, e.resource or resource,
                      e.context if e.context is not None else context) for e in evaluations]
        self.check_items(items)
        return items

    def check_items(self, items: Sequence[Any]) -> None:
        """400 when there are too many items or one (already merged with the defaults) lacks a part."""
        self._check_size(items)
        for index, item in enumerate(items):
            if item[0] is None or item[1] is None or item[2] is None:
                missing = [k for k, v in zip(("subject", "action", "resource"), item[:3], strict=True) if v is None]
                raise InvalidRequest(
                    f"evaluations[{index}] lacks {', '.join(missing)} and there is no top-level default",
                    details={"index": index, "missing": missing})

    def _check_size(self, evaluations: Sequence[Any]) -> None:
        if len(evaluations) > self._max_batch:
            raise InvalidRequest(f"at most {self._max_batch} evaluations per request",
                                 details={"max": self._max_batch, "given": len(evaluations)})

    def run_batch(self, caller: Caller, items: Sequence[Any], semantic: Semantic) -> dict[str, Any]:
        """Answer items already merged with their defaults (``batch_items``)."""
        return {"evaluations": self._run(caller, items, semantic)}

    @staticmethod
    def needs_registry(items: Iterable[Any]) -> bool:
        """Does any item leave out the record's department (so its decision reads the record registry)?"""
        for item in items:
            resource = item.resource
            if resource is not None and resource.id and "department" not in (resource.properties or ()):
                return True
        return False

    def decide_resolved(self, state: State, resolved: Resolved,
                        memo: dict[tuple[str, str], Any] | None = None) -> EngineDecision:
        """The engine's decision for a resolved request, fields included (``memo``: see ``Engine.decide``)."""
        assert resolved.request is not None
        decision = state.engine.decide(resolved.request, memo)
        if resolved.fields:
            levels = state.engine.field_levels(resolved.request, resolved.fields, decision.allowed, memo)
            decision = EngineDecision(decision.allowed, decision.code, decision.rule, decision.hold, levels)
        return decision

    def resolve(self, state: State, caller: Caller, request: EvaluationRequest | EvaluationItem | Item,
                now: datetime | None = None) -> Resolved:
        """Resolve subject, resource and action through the directory and the record registry."""
        assert request.subject is not None
        assert request.action is not None
        assert request.resource is not None
        return resolve(state.engine.policy, state.directory, caller, request.subject, request.action,
                            request.resource, request.context, self._record_of(request.resource),
                            now or datetime.now(UTC), None)

    def _record_of(self, resource: Any) -> RecordInfo | None:
        # Only a caller that leaves out the department pays a registry lookup; the usual
        # CRM/OA call carries owner and department and never touches the database.
        if resource.id and "department" not in (resource.properties or ()):
            return self._record_lookup(resource.type, resource.id)
        return None

    def _run(self, caller: Caller, items: Iterable[Any], semantic: Semantic) -> list[dict[str, Any]]:
        state = self._holder.current
        now = datetime.now(UTC)  # one clock reading per request: its decisions share it
        caller_id = caller.client_id[:200]
        rows: list[LogRow] = []
        results: list[dict[str, Any]] = []
        seconds: list[float] = []
        counts: dict[tuple[bool, str], int] = {}  # per (allowed, resource type); by system at the end
        perf = time.perf_counter
        stop_on = None if semantic == Semantic.execute_all else semantic == Semantic.permit_on_first_permit
        memo: dict[Any, Any] = {}  # what the request's decisions share (its subject's person, home and log text)
        held: dict[tuple[str, str], Any] = {}  # and the roles its subject holds per department (Engine.decide)
        debug = log.isEnabledFor(logging.DEBUG)
        items = items if isinstance(items, Sequence) else list(items)
        for item, decision_id in zip(items, self._ids.take(len(items)), strict=True):
            started = perf()
            try:
                out = self._evaluate(state, caller, caller_id, item, decision_id, now, rows, memo, held)
            except Exception:
                # Fail closed: a bug or an outage on the decision path denies, it never allows.
                log.exception("decision failed", extra={"decision_id": decision_id})
                out = _error_answer(decision_id, state, "internal_error", "the decision could not be made")
            seconds.append(perf() - started)
            if debug:
                log.debug("decision", extra={"decision_id": decision_id, "caller": caller.client_id,
                                             "allowed": out["decision"], "code": out["context"]["reason"]["code"],
                                             "policy_version": state.version if state else None})
            allowed = out["decision"]
            key = (allowed, item.resource.type if item.resource else "")
            counts[key] = counts.get(key, 0) + 1
            results.append(out)
            if stop_on is not None and allowed is stop_on:
                break
        if rows:
            self._recorder.record_rows(rows)
        self._metrics.decision_seconds.observe_many(seconds)
        by_system: dict[tuple[str, str], int] = {}
        for (allowed, rtype), n in counts.items():
            key = ("allow" if allowed else "deny", rtype.partition(".")[0] if "." in rtype else "unknown")
            by_system[key] = by_system.get(key, 0) + n
        self._metrics.count_decisions(by_system)
        return results

    def _evaluate(self, state: State | None, caller: Caller, caller_id: str, request: Any, decision_id: str,
                  now: datetime, rows: list[LogRow], memo: dict[Any, Any],
                  held: dict[tuple[str, str], Any]) -> dict[str, Any]:
        if state is None:
            return _error_answer(decision_id, None, "policy_not_loaded", "the policy is not loaded yet")
        resource = request.resource
        resolved = resolve(state.engine.policy, state.directory, caller, request.subject, request.action,
                                resource, request.context, self._record_of(resource), now, memo)
        if resolved.request is None:
            decision = EngineDecision(False, resolved.deny or "unresolved",
                                      fields=dict.fromkeys(resolved.fields, "hidden"))
        else:
            decision = self.decide_resolved(state, resolved, held)
        explained = self._reasons.get(decision)
        allowed = decision.allowed
        reason = explained.reason
        if resolved.message:
            reason = {**reason, "detail": resolved.message}
        ctx: dict[str, Any] = {"decision_id": decision_id, "policy_version": state.version, "reason": reason,
                               "reason_admin": explained.admin}
        if not allowed:
            ctx["reason_user"] = _REASON_USER
        fields = decision.fields
        if fields:
            ctx["fields"] = fields
            masks = state.engine.policy.classification.get(resolved.request.obj, {}) if resolved.request else {}
            if masks:
                masked = {f: masks[f].mask for f, lvl in fields.items() if lvl == "masked" and f in masks}
                if masked:
                    ctx["masks"] = masked
        if resolved.notes:
            ctx["notes"] = resolved.notes
        subject, person = request.subject, resolved.person
        subject_text = memo.get(id(subject))  # the memo's other keys are tuples
        if subject_text is None:
            subject_text = memo[id(subject)] = f"{subject.type}:{subject.id}"
        rows.append((decision_id, now, caller_id, subject_text, person.id if person else None,
                     request.action.name, resource.type, resource.id or None, allowed, state.version,
                     explained.json, orjson.dumps(fields).decode() if fields else EMPTY_JSON))
        return {"decision": allowed, "context": ctx}


class DecisionIds:
    """Unique decision ids in UUID form, cheaply: 96 random bits per process and a counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reseed()

    def _reseed(self) -> None:
        h = os.urandom(12).hex()
        self._head = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:24]}"
        self._next = 0

    def next(self) -> str:
        """A new id."""
        return self.take(1)[0]

    def take(self, n: int) -> list[str]:
        """``n`` new ids (a batch's); reseeded before the 32-bit counter could wrap."""
        with self._lock:
            if self._next + n > 0xFFFFFFFF:
                self._reseed()
            head, start = self._head, self._next
            self._next = start + n
        return [f"{head}{i:08x}" for i in range(start, start + n)]


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
