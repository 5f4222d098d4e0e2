"""Refuse request bodies that are too large, too deeply nested or carry invalid Unicode, before parsing.

JSON allows ``"\\ud800"`` (a lone surrogate) and unlimited nesting; Python accepts both and fails
later, when the answer is serialised (a 500).  These bodies are refused here with a 4xx instead.
"""

from __future__ import annotations

import json
from typing import Any

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 32


def _bad_text(body: bytes) -> bool:
    """A NUL or a lone surrogate in any string or key (only escapes can produce them in JSON)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return False  # not JSON: the schema validation answers that with malformed_json
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node or any("\ud800" <= ch <= "\udfff" for ch in node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _too_deep(body: bytes) -> bool:
    # Cheap test first: a body with few brackets cannot be deep.
    if body.count(b"{") + body.count(b"[") <= MAX_DEPTH:
        return False
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif byte in (0x7D, 0x5D):
            depth -= 1
    return False


class BodyGuard:
    """ASGI middleware: buffer the body, check it, replay it to the app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await _refuse(send, 413, "too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if _too_deep(body):
            await _refuse(send, 400, "too_deep", f"JSON nested more than {MAX_DEPTH} levels")
            return
        if b"\\u" in body and _bad_text(body):
            await _refuse(send, 400, "invalid_unicode", "the body contains a NUL or a lone UTF-16 surrogate")
            return
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
