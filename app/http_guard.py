"""Refuse request bodies that are too large, too deeply nested or carry invalid Unicode, before parsing.

JSON allows ``"\\ud800"`` (a lone surrogate) and unlimited nesting; Python accepts both and fails
later, when the answer is serialised (a 500).  These bodies are refused here with a 4xx instead.

The body is parsed once, here; the parsed value is left in the ASGI scope under ``PARSED_BODY`` for
the endpoints that read JSON themselves (the decision endpoints), so they do not parse it again.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 32
PARSED_BODY = "accessgov.parsed_body"
NOT_JSON = object()  # check_body's "parsed value" of a body that is not JSON


def _problem(body: bytes) -> tuple[str, str] | None:
    """(code, message) when the body must be refused; None to let the schema validation judge it."""
    problem, _ = check_body(body)
    return problem


def check_body(body: bytes) -> tuple[tuple[str, str] | None, Any]:
    """(problem or None, the parsed body or NOT_JSON when it is not JSON).  (The decision endpoints'
    fast path parses with ``parse_unwalked`` instead and bounds the depth by the shape it accepts.)

    One parse in C (orjson refuses lone surrogates itself), then a walk over the containers only,
    level by level, for the depth.  A NUL can only arrive escaped (JSON forbids raw control
    characters in strings), so the strings are searched only when the raw bytes hold ``\\u0000``.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            return ("too_deep", f"JSON nested more than {MAX_DEPTH} levels"), NOT_JSON
        if b"\\u" in body and _has_lone_surrogate(body):
            return ("invalid_unicode", "the body contains a lone UTF-16 surrogate"), NOT_JSON
        return None, NOT_JSON  # not JSON: the schema validation answers malformed_json
    if not nests_within(data, MAX_DEPTH):
        return ("too_deep", f"JSON nested more than {MAX_DEPTH} levels"), NOT_JSON
    if b"\\u0000" in body and _has_nul(data):
        return ("invalid_unicode", "the body contains a NUL character"), NOT_JSON
    return None, data


_CONTAINERS = (dict, list)


def nests_within(value: Any, levels: int) -> bool:
    """Does ``value`` nest at most ``levels`` deep (a container being level 1, a scalar 0)?  Walks the
    containers only, level by level."""
    level, depth = [value], 1
    while True:
        nested: list[Any] = []
        for node in level:
            if type(node) is dict:
                nested += [v for v in node.values() if type(v) in _CONTAINERS]
            elif type(node) is list:
                nested += [v for v in node if type(v) in _CONTAINERS]
        if not nested:
            return True
        depth += 1
        if depth > levels:
            return False
        level = nested


def parse_unwalked(body: bytes) -> Any:
    """The body parsed, or NOT_JSON when it is not JSON or ``check_body`` would refuse it for its text (a lone
    surrogate, a NUL), without the depth walk: for a caller that bounds the nesting itself.  The decision
    endpoints' fast path uses it; its shape checks accept only bodies a few levels deep, and hand every other
    body to the app, whose body guard walks it."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return NOT_JSON
    if b"\\u0000" in body and _has_nul(data):
        return NOT_JSON
    return data


def _has_nul(data: Any) -> bool:
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _has_lone_surrogate(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return False
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if any("\ud800" <= ch <= "\udfff" for ch in node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


class BodyGuard:
    """ASGI middleware: buffer the body, check it, replay it to the app.

    Bodies are limited to ``MAX_BODY_BYTES``; paths starting with one of ``large_paths`` (a system's
    whole snapshot) to ``large_bytes``.
    """

    def __init__(self, app: Any, large_paths: tuple[str, ...] = (), large_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.large_paths = large_paths
        self.large_bytes = large_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        limit = self.large_bytes if self.large_paths and scope["path"].startswith(self.large_paths) else MAX_BODY_BYTES
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(send, 413, "too_large", f"request bodies here are limited to {limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if body:
            problem, parsed = check_body(body)
            if problem is not None:
                await _refuse(send, 400, *problem)
                return
            if parsed is not NOT_JSON:
                scope[PARSED_BODY] = parsed
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return dict(await receive())
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _refuse(send: Any, status: int, code: str, message: str) -> None:
    payload = json.dumps({"error": {"code": code, "message": message, "details": None}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
