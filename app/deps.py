"""FastAPI dependencies: the collaborators ``create_app`` built, and the authenticated caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.auth.verifier import Principal
from app.decisions.resolve import Caller
from app.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="OAuth2 access token from the company IdP (client credentials)")


def _services(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.services


def get_session(request: Request) -> Iterator[Session]:
    """A database session for one request."""
    with request.app.state.services.factory() as session:
        yield session


async def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    # async: runs on the event loop instead of a thread-pool hop; verified tokens are cached, and
    # a JWKS fetch (rare, rate-limited) is the only blocking work it can do.
    """The verified caller, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a bearer token is required")
    return request.app.state.services.verifier.verify(credentials.credentials)  # type: ignore[no-any-return]


def require(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency that demands one API scope and yields the caller."""

    async def dependency(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> Caller:
        return caller_for(principal, scope, request.app.state.services.settings.trusted_callers)

    return dependency


def caller_for(principal: Principal, scope: str, trusted_callers: Mapping[str, Sequence[str]]) -> Caller:
    """The caller a verified principal is for an API that needs ``scope``; Forbidden without it.

    Shared by ``require`` and the decision endpoints' ASGI fast path (``app.decisions.fastpath``).
    """
    if scope not in principal.scopes:
        raise Forbidden(f"this API needs the {scope} scope")
    return Caller(principal.client_id, principal.scopes, frozenset(trusted_callers.get(principal.client_id, [])))


Services = Annotated[object, Depends(_services)]
DbSession = Annotated[Session, Depends(get_session)]
DecideCaller = Annotated[Caller, Depends(require("accessgov.decide"))]
DirectoryCaller = Annotated[Caller, Depends(require("accessgov.directory"))]
PolicyCaller = Annotated[Caller, Depends(require("accessgov.policy"))]
AuditCaller = Annotated[Caller, Depends(require("accessgov.audit"))]
