"""SCIM 2.0 endpoints under ``/scim/v2``: the protocol of ``scim2-server``, our store, the sync service.

``scim2-server`` parses, validates, applies PUT and PATCH, evaluates ETags and builds every answer
(errors included, in the SCIM error body); :class:`app.scim.store.ScimStore` keeps the resources and
applies each write to the directory through the sync service.  Callers use the same bearer tokens
as the rest of the API with the ``accessgov.directory`` scope; ``/ServiceProviderConfig`` is open
(it tells a client how to authenticate).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from scim2_models import (
    Context,
    ForbiddenException,
    NotImplementedException,
    Resource,
    ResponseParameters,
    SCIMException,
    UnauthorizedException,
)
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation
from scim2_server.service import ScimService

from app.deps import caller_for
from app.errors import Forbidden, Unauthorized
from app.scim.schemas import build_provider
from app.scim.store import DEFAULT_SOURCE, ScimStore

log = logging.getLogger(__name__)
PREFIX = "/scim/v2"
SCOPE = "accessgov.directory"
router = APIRouter(prefix=PREFIX, tags=["SCIM 2.0"])
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def scim_source(config: Any) -> str | None:
    """The sync source SCIM writes to: the one marked ``scim: true`` in sources.yaml, else ``idp``."""
    if config is None:
        return None
    for source in config.sources.values():
        if source.settings.get("scim") is True:
            return str(source.name)
    return DEFAULT_SOURCE if DEFAULT_SOURCE in config.sources else None


class Service(ScimService):
    """scim2-server's protocol, answering a PATCH with 200 and the resource (Okta expects it; RFC 7644
    §3.5.2 allows either that or 204)."""

    def patch_response(self, base_url: str, resource: Resource[Any],
                       response_parameters: ResponseParameters[Any]) -> ScimResponse:
        return self.resource_response(self.publish(base_url, resource), Context.RESOURCE_REPLACEMENT_RESPONSE,
                                      response_parameters)


def _service(request: Request) -> ScimService:
    service: ScimService | None = getattr(request.app.state, "scim_service", None)
    if service is None:  # built once per app: the provider validates its whole description
        service = request.app.state.scim_service = Service(build_provider())
    return service


async def scim(path: str, request: Request) -> Response:
    """``/ServiceProviderConfig``, ``/ResourceTypes``, ``/Schemas``, ``/Users`` and ``/Groups``: list with
    ``filter``, ``startIndex``, ``count``, ``sortBy``; GET, POST, PUT, PATCH, DELETE with ETags. Every
    write is applied to the directory by the sync service (source ``idp`` unless another is marked
    ``scim: true``) before it is kept; answers and errors are SCIM documents."""
    service = _service(request)
    scim_request = ScimRequest(method=request.method, base_url=str(request.base_url).rstrip("/") + PREFIX,
                               path="/" + path, query=dict(request.query_params),
                               headers=list(request.headers.items()), body=await request.body())
    try:
        actor = _authenticate(request, service, scim_request)
        services = request.app.state.services
        source = scim_source(getattr(services.sync, "config", None))
        if source is None:
            raise NotImplementedException(detail="SCIM needs a sync source: name one `idp` in sources.yaml, "
                                                 "or mark one `scim: true`")
        handler = ScimHandler(service, ScimStore(services.factory, services.sync, source, actor))
        answer = await run_in_threadpool(handler.handle, scim_request)
    except SCIMException as exc:
        answer = service.error_response(exc)
    except Exception as exc:  # a bug: a SCIM 500 without details
        log.exception("SCIM %s %s failed", request.method, path)
        answer = service.error_response(exc)
    return _response(answer)


for _method in _METHODS:  # one route per method: each gets its own OpenAPI operation
    router.add_api_route("/{path:path}", scim, methods=[_method], name=f"scim_{_method.lower()}",
                         summary=f"SCIM 2.0 {_method} (RFC 7644): Users, Groups, discovery", response_class=Response)


def _authenticate(request: Request, service: ScimService, scim_request: ScimRequest) -> str:
    """The caller's client id; the service provider configuration needs no token."""
    if service.match(scim_request).operation is Operation.service_provider_config:
        return "anonymous"
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedException(detail="a bearer token is required")
    services = request.app.state.services
    try:
        principal = services.verifier.verify(token.strip())
        caller = caller_for(principal, SCOPE, services.settings.trusted_callers)
    except Unauthorized as exc:
        raise UnauthorizedException(detail=exc.message) from None
    except Forbidden as exc:
        raise ForbiddenException(detail=exc.message) from None
    return str(caller.client_id)


def _response(answer: ScimResponse) -> Response:
    headers = dict(answer.headers)
    media_type = headers.pop("Content-Type", "application/scim+json")
    headers.setdefault("Cache-Control", "no-cache")
    if int(answer.status) == 503:
        headers.setdefault("Retry-After", "1")
    body = b"" if answer.body is None else json.dumps(answer.body, ensure_ascii=False).encode()
    return Response(content=body, status_code=int(answer.status), headers=headers, media_type=media_type)
