"""AuthZEN Authorization API 1.0 over HTTPS: evaluation, evaluations, search, PDP metadata."""

from __future__ import annotations

import asyncio
import email.message
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from app.decisions.resolve import Caller
from app.decisions.schemas import (
    ActionSearchRequest,
    Decision,
    EvaluationRequest,
    EvaluationsRequest,
    EvaluationsResponse,
    ItemIn,
    ResourceSearchRequest,
    SearchResponse,
    Semantic,
    SubjectSearchRequest,
    fast_evaluation,
    fast_evaluations,
)
from app.decisions.service import DecisionService
from app.deps import DecideCaller
from app.errors import InvalidRequest
from app.errors_http import ERROR_RESPONSES
from app.http_guard import PARSED_BODY

router = APIRouter(tags=["AuthZEN decisions"], responses=ERROR_RESPONSES)


class DecisionJSON(Response):
    """Decisions are built by the service in their final shape: serialise them directly.

    Returning a Response skips FastAPI's re-validation against the response model, which would
    otherwise cost more than the decision itself; the model still documents the shape.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _svc(request: Request) -> Any:
    return request.app.state.services


def _is_json(content_type: str | None) -> bool:
    """FastAPI's test: ``application/json`` or ``application/*+json`` (a missing type is not JSON)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


async def json_body(request: Request) -> Any:
    """The request body as JSON, parsed once (by the body guard when it ran), refused as FastAPI would.

    A dependency listed before the caller, so that, as with a declared body, a body that is not JSON is
    a 400 even before the token is looked at.  Its value is the body itself when it is not JSON (the
    schema validation then refuses it, as FastAPI does).
    """
    content_type = request.headers.get("content-type")
    if content_type is not None and content_type.startswith("application/json") and len(content_type) == 16:
        pass  # the usual header: no need to parse it
    elif not _is_json(content_type):
        return await request.body() or None
    parsed = request.scope.get(PARSED_BODY, _UNPARSED)
    if parsed is not _UNPARSED:
        return parsed
    body = await request.body()
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                                       "input": {}, "ctx": {"error": exc.msg}}]) from None


_UNPARSED = object()
JsonBody = Annotated[Any, Depends(json_body)]
_M = TypeVar("_M", bound=BaseModel)


def _validated(model: type[_M], data: Any) -> _M:
    """The body through its model: the 400 and its details are those FastAPI gives for a declared body."""
    if data is None:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """The request body, documented (the endpoint reads it itself; ``document_bodies`` adds the schema)."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


BODY_MODELS: tuple[type[BaseModel], ...] = (EvaluationRequest, EvaluationsRequest)


BACKPRESSURE_SECONDS = 5.0
Plan = tuple[Callable[[], dict[str, Any]], Sequence[Any]]
"""What an endpoint will do: the decision call (not yet run) and the items it decides (for the registry test)."""


async def decide(recorder: Any, run: Callable[[], dict[str, Any]], items: Sequence[Any]) -> dict[str, Any]:
    """Run a plan: on the event loop (it is CPU work in memory) unless an item needs the record registry,
    a database read: that goes to the thread pool, as a blocking call must.

    Backpressure: while the decision log's buffer is more than half full, a request waits (up to
    BACKPRESSURE_SECONDS) before it is decided, which hands the interpreter to the log writer.  Under
    a load the writer cannot follow, answers slow down instead of decisions going unrecorded; only a
    writer stuck for longer (the database away) lets the buffer fill, and then drops are counted.

    Shared by the routes below and the ASGI fast path (``app.decisions.fastpath``).
    """
    if recorder.backlogged():
        await _wait_for_room(recorder, time.monotonic() + BACKPRESSURE_SECONDS)
    if DecisionService.needs_registry(items):
        return await run_in_threadpool(run)
    return run()


_ROOM_POLL_SECONDS = 0.002
_ROOM_RECHECK_SECONDS = 0.05
_room: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[None]] = weakref.WeakKeyDictionary()


async def _wait_for_room(recorder: Any, deadline: float) -> None:
    """Wait until the log has room again or the deadline passes.  The requests waiting on one event loop
    share one poll of the buffer (every 2 ms) and wake together when there is room (or every 50 ms, to
    look at their deadlines).  Under a sustained overload a worker holds dozens of waiting requests; each
    polling on its own woke the event loop for every one of them every 2 ms, CPU the writer needed."""
    loop = asyncio.get_running_loop()
    while recorder.backlogged() and time.monotonic() < deadline:
        room = _room.get(loop)
        if room is None or room.done():
            room = _room[loop] = loop.create_future()
            loop.call_later(_ROOM_POLL_SECONDS, _poll_room, loop, room, recorder, loop.time())
        await asyncio.shield(room)


def _poll_room(loop: asyncio.AbstractEventLoop, room: asyncio.Future[None], recorder: Any, started: float) -> None:
    if room.done():
        return
    if not recorder.backlogged() or loop.time() - started >= _ROOM_RECHECK_SECONDS:
        room.set_result(None)
    else:
        loop.call_later(_ROOM_POLL_SECONDS, _poll_room, loop, room, recorder, started)


def evaluation_plan(decisions: DecisionService, caller: Caller, data: Any, *, fast_only: bool = False) -> Plan | None:
    """``POST /access/v1/evaluation``: the plan for a parsed body.  A body the fast check refuses is
    validated with the model (its 400 raised), or, with ``fast_only``, gives None."""
    item: Any = fast_evaluation(data)
    if item is None:
        if fast_only:
            return None
        item = _validated(EvaluationRequest, data)
    return (lambda: decisions.evaluate(caller=caller, request=item)), (item,)


def evaluations_plan(decisions: DecisionService, caller: Caller, data: Any, *,
                     fast_only: bool = False) -> Plan | None:
    """``POST /access/v1/evaluations``: the plan for a parsed body (None: the fast check refused it and
    ``fast_only`` was asked).  Raises InvalidRequest (400) for a batch that cannot be answered."""
    fast = fast_evaluations(data, merge=True)
    items: Sequence[Any]
    if fast is None:
        if fast_only:
            return None
        body = _validated(EvaluationsRequest, data)
        if not body.evaluations:
            return (lambda: decisions.evaluate_many(caller=caller, request=body)), ((body,) if body.resource else ())
        semantic = body.options.evaluations_semantic if body.options else Semantic.execute_all
        items = decisions.batch_items(body.subject, body.action, body.resource, body.context, body.evaluations)
    elif not fast.evaluations:
        if not (fast.subject and fast.action and fast.resource):
            raise InvalidRequest("give `evaluations`, or subject, action and resource")
        single = ItemIn(fast.subject, fast.action, fast.resource, fast.context)
        return (lambda: decisions.evaluate(caller=caller, request=single)), (single,)
    else:
        semantic = fast.semantic
        items = fast.evaluations  # merged with the defaults already
        decisions.check_items(items)
    return (lambda: decisions.run_batch(caller, items, semantic)), items


async def _answer(request: Request, plan: Plan | None) -> Response:
    assert plan is not None  # without fast_only a plan is always made (or a 400 raised)
    return DecisionJSON(await decide(_svc(request).recorder, *plan))


@router.post("/access/v1/evaluation", response_model=Decision, response_model_exclude_none=True,
             summary="Evaluate one access request", openapi_extra=_body_doc(EvaluationRequest))
async def evaluation(data: JsonBody, caller: DecideCaller, request: Request) -> Response:
    """May this subject do this action on this record, and which fields may they see?"""
    return await _answer(request, evaluation_plan(_svc(request).decisions, caller, data))


@router.post("/access/v1/evaluations", response_model=EvaluationsResponse | Decision,
             response_model_exclude_none=True, summary="Evaluate a batch (boxcarred) of access requests",
             openapi_extra=_body_doc(EvaluationsRequest))
async def evaluations(data: JsonBody, caller: DecideCaller, request: Request) -> Response:
    """Decisions in request order; top-level members are defaults; options.evaluations_semantic honoured."""
    return await _answer(request, evaluations_plan(_svc(request).decisions, caller, data))


@router.post("/access/v1/search/subject", response_model=SearchResponse, summary="Who may do this?")
def search_subject(body: SubjectSearchRequest, caller: DecideCaller, request: Request) -> dict[str, Any]:
    """People who may perform the action on the resource (each would get decision true)."""
    return _svc(request).search.subjects(caller=caller, request=body)  # type: ignore[no-any-return]


@router.post("/access/v1/search/resource", response_model=SearchResponse, summary="Which records may they?")
def search_resource(body: ResourceSearchRequest, caller: DecideCaller, request: Request) -> dict[str, Any]:
    """Records of the registry of that type the subject may act on."""
    return _svc(request).search.resources(caller=caller, request=body)  # type: ignore[no-any-return]


@router.post("/access/v1/search/action", response_model=SearchResponse, summary="What may they do?")
def search_action(body: ActionSearchRequest, caller: DecideCaller, request: Request) -> dict[str, Any]:
    """Actions the subject may perform on the resource."""
    return _svc(request).search.actions(caller=caller, request=body)  # type: ignore[no-any-return]


@router.get("/.well-known/authzen-configuration", summary="PDP metadata")
def metadata(request: Request) -> dict[str, Any]:
    """Where the AuthZEN endpoints are (unauthenticated, as the spec requires)."""
    base = _svc(request).settings.base_url.rstrip("/")
    return {
        "policy_decision_point": base,
        "access_evaluation_endpoint": f"{base}/access/v1/evaluation",
        "access_evaluations_endpoint": f"{base}/access/v1/evaluations",
        "search_subject_endpoint": f"{base}/access/v1/search/subject",
        "search_resource_endpoint": f"{base}/access/v1/search/resource",
        "search_action_endpoint": f"{base}/access/v1/search/action",
        "x_accessgov_filter_endpoint": f"{base}/v1/filter",
        "x_accessgov_explain_endpoint": f"{base}/v1/explain",
    }
