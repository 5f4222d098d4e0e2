"""Security headers on every console response (pages, redirects, errors): a CSP without inline
script, no framing, no sniffing, no referrer, no caching, and HSTS when the console is served over https."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/console"


def console_headers(*, https: bool, form_targets: tuple[str, ...] = ()) -> list[tuple[bytes, bytes]]:
    """The headers; ``form_targets`` are origins a form may lead to (the IdPs' logout redirect)."""
    form_action = " ".join(("'self'", *form_targets))
    csp = (f"default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
           f"frame-ancestors 'none'; form-action {form_action}")
    headers = [("content-security-policy", csp), ("x-content-type-options", "nosniff"),
               ("referrer-policy", "no-referrer"), ("x-frame-options", "DENY"), ("cache-control", "no-store"),
               ("cross-origin-opener-policy", "same-origin")]
    if https:
        headers.append(("strict-transport-security", "max-age=31536000; includeSubDomains"))
    return [(k.encode(), v.encode()) for k, v in headers]


class ConsoleSecurityHeaders:
    """ASGI middleware: adds ``console_headers`` to responses under /console (others pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        extra = _headers_for(scope.get("app"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _headers_for(app: Any) -> list[tuple[bytes, bytes]]:
    from app.console.runtime import runtime_of

    try:
        rt = runtime_of(app)
    except Exception:  # a console that cannot start still gets the strictest headers
        return console_headers(https=False)
    return rt.headers
