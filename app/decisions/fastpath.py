"""The decision endpoints' fast path: plain ASGI for the ordinary ``POST /access/v1/evaluation(s)``.

A decision costs microseconds; routing it through Starlette and FastAPI (the middleware layers, the
router, the dependency injection, the request and response objects) cost several times more.  This
layer sits in front of all that (the outermost of the app's middleware: only FastAPI's own thin error,
telemetry and body-limit layers are outside it, so an unexpected error while deciding still gets the
app's 500) and answers the ordinary request end to end:

* exactly ``POST /access/v1/evaluation`` or ``/access/v1/evaluations``, ``content-type:
  application/json``;
* a body within the body guard's limit that is JSON the body guard would not refuse for its text
  (``parse_unwalked``: no NUL, no lone surrogate) and that the fast body check of the route accepts
  (``evaluation_plan`` / ``evaluations_plan`` with ``fast_only``).  That check accepts only bodies a few
  levels deep (the decision request's own members; property values scalars or lists / objects of
  scalars), so the body guard's depth walk is not needed here;
* a bearer token the verifier accepts (normally from its cache of verified tokens) with the
  ``accessgov.decide`` scope (``caller_for``, as the route's dependency).

It then decides with the same plan, the same ``decide`` (backpressure, thread pool for registry
reads) and the same ``DecisionService`` as the route, and writes the bytes the route writes (status
200, ``content-length`` and ``content-type: application/json``, the orjson body).  Metrics and the
decision log are the service's, so they count these requests as they count the route's.

Anything else (no token, a token refused, a missing scope, a body refused or merely unusual, a batch
the service refuses, or any exception before deciding) is handed to the app untouched: the messages
already received are replayed, so the app sees the request as it came and answers exactly as it
always does (its 4xx bodies, its headers).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from app.decisions.router import Plan, decide, evaluation_plan, evaluations_plan
from app.deps import caller_for
from app.http_guard import MAX_BODY_BYTES, NOT_JSON, parse_unwalked

log = logging.getLogger(__name__)
DECIDE_SCOPE = "accessgov.decide"
_PLANNERS: dict[str, Callable[..., Plan | None]] = {
    "/access/v1/evaluation": evaluation_plan,
    "/access/v1/evaluations": evaluations_plan,
}
_JSON = b"application/json"

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class DecisionFastPath:
    """ASGI middleware: answer the ordinary decision request itself, hand everything else on."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        planner = _PLANNERS.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if planner is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        services = scope["app"].state.services
        try:
            plan = await _plan(planner, services, scope, receive, received)
        except Exception:  # whatever it is, the app judges the request itself
            log.debug("decision fast path declined a request after an error", exc_info=True)
            plan = None
        if plan is None:
            await self.app(scope, _replay(received, receive) if received else receive, send)
            return
        # From here on as the route: a failure while deciding is the app's 500 (ServerErrorMiddleware);
        # a failure of one decision is a deny inside the service.
        body = orjson.dumps(await decide(services.recorder, *plan))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", _JSON)]})
        await send({"type": "http.response.body", "body": body})


async def _plan(planner: Callable[..., Plan | None], services: Any, scope: dict[str, Any], receive: Receive,
                received: list[Message]) -> Plan | None:
    """The route's plan for this request, or None when the fast path declines it."""
    content_type = authorization = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            if content_type is None:
                content_type = value
        elif name == b"authorization" and authorization is None:
            authorization = value
    if content_type != _JSON or authorization is None:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    data = parse_unwalked(chunks[0] if len(chunks) == 1 else b"".join(chunks))
    if data is NOT_JSON:
        return None
    # As HTTPBearer reads the header (first value, "<scheme> <credentials>", credentials stripped).
    scheme, _, credentials = authorization.decode("latin-1").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    principal = services.verifier.verify(credentials)  # Unauthorized: declined
    caller = caller_for(principal, DECIDE_SCOPE, services.settings.trusted_callers)  # Forbidden: declined
    return planner(services.decisions, caller, data, fast_only=True)  # InvalidRequest: declined


def _replay(received: list[Message], receive: Receive) -> Receive:
    """``receive`` for the app: the messages the fast path took first, then the rest of the request."""
    pending = deque(received)

    async def replay() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replay
