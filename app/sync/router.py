"""Sync API: push a system's snapshot, run a source, confirm held runs, runs, conflicts, account links."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam

from app.deps import DirectoryCaller
from app.errors import InvalidRequest
from app.errors_http import ERROR_RESPONSES
from app.sync.schemas import ClaimsIn, ClaimsOut, ConfirmIn, EventsIn, LinkIn, SnapshotIn

router = APIRouter(prefix="/v1/sync", tags=["Identity sync"], responses=ERROR_RESPONSES)
SourceName = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")]
DbId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _sync(request: Request) -> Any:
    return request.app.state.services.sync


@router.put("/sources/{source}/snapshot", summary="Push a full snapshot of a system (idempotent per version)")
def push_snapshot(source: SourceName, body: SnapshotIn, caller: DirectoryCaller, request: Request,
                  confirm: Annotated[bool, Query(description="apply even past the disable threshold")] = False,
                  ) -> dict[str, Any]:
    """Validated whole, applied in one transaction or not at all. A snapshot that would disable more
    than the source's threshold of its active accounts is held (status ``held``) unless ``confirm``."""
    return _sync(request).push(body.to_snapshot(source), actor=caller.client_id, confirm=confirm)  # type: ignore[no-any-return]


@router.post("/sources/{source}/events", summary="Push incremental changes of a system")
def push_events(source: SourceName, body: EventsIn, caller: DirectoryCaller, request: Request) -> dict[str, Any]:
    """Account upserts and deletions and role member lists, applied together in one transaction or
    not at all (a deleted account becomes ``left``: its person is a leaver if this source is master)."""
    return _sync(request).apply_events(source, body.events, actor=caller.client_id)  # type: ignore[no-any-return]


@router.post("/sources/{source}/runs", summary="Pull a source now through its connector")
def run_source(source: SourceName, caller: DirectoryCaller, request: Request) -> dict[str, Any]:
    """One run; 409 while another run of the same source is in progress (in any process)."""
    return _sync(request).run(source, trigger="manual", actor=caller.client_id)  # type: ignore[no-any-return]


@router.get("/sources", summary="Configured sources and attribute masters")
def sources(caller: DirectoryCaller, request: Request) -> dict[str, Any]:
    """Each source's connector, kind, schedule and threshold; which source is master of what."""
    config = _sync(request).config
    return {"masters": config.masters, "mover_keeps": sorted(config.mover_keeps), "sources": [
        {"name": s.name, "connector": s.connector, "kind": s.kind, "interval_minutes": s.interval_minutes,
         "disable_threshold": s.disable_threshold} for s in config.sources.values()]}


@router.get("/runs", summary="Sync runs, newest first")
def runs(caller: DirectoryCaller, request: Request, source: str | None = None,
         limit: Limit = 50) -> list[dict[str, Any]]:
    """Status and counts (created, updated, disabled, conflicted, failed, ...) of each run."""
    return _sync(request).list_runs(source, limit)  # type: ignore[no-any-return]


@router.get("/runs/{run_id}", summary="One run with its per-record errors")
def run(run_id: DbId, caller: DirectoryCaller, request: Request) -> dict[str, Any]:
    """A run and the records it could not apply."""
    return _sync(request).get_run(run_id)  # type: ignore[no-any-return]


@router.post("/runs/{run_id}/confirm", summary="Apply or discard a held run")
def confirm(run_id: DbId, body: ConfirmIn, caller: DirectoryCaller, request: Request) -> dict[str, Any]:
    """A held snapshot is applied as a new run (``apply: true``) or discarded."""
    return _sync(request).confirm(  # type: ignore[no-any-return]
        run_id, actor=caller.client_id, apply=body.apply, reason=body.reason)


@router.get("/conflicts", summary="Attributes on which sources disagree")
def conflicts(caller: DirectoryCaller, request: Request, person_id: str | None = None,
              include_resolved: bool = False, limit: Limit = 100) -> list[dict[str, Any]]:
    """Each with the master's value (kept) and the other source's value."""
    return _sync(request).list_conflicts(  # type: ignore[no-any-return]
        open_only=not include_resolved, person_id=person_id, limit=limit)


@router.put("/accounts/{system}/{local_id}/link", summary="Confirm or break an account's link to a person")
def link(system: SourceName, local_id: Annotated[str, PathParam(min_length=1, max_length=200)], body: LinkIn,
         caller: DirectoryCaller, request: Request) -> dict[str, Any]:
    """A confirmed link, or a broken one, is kept by every later sync."""
    return _sync(request).set_link(system=system, local_id=local_id,  # type: ignore[no-any-return]
                                   person_id=body.person_id, actor=caller.client_id, reason=body.reason)


_CLAIMS_ERRORS: dict[int | str, dict[str, Any]] = {
    400: ERROR_RESPONSES[400] | {"description": (
        "Not exactly one of `id_token` and `access_token`; no IdP configured (`ACCESSGOV_AUTH__ISSUER`); the "
        "source names no audiences for this kind of token; the token lacks the source's key claim.")},
    401: ERROR_RESPONSES[401] | {"description": (
        "The caller's bearer token, or the token in the body (`details.token` names it), is not valid: its "
        "`alg`, `typ`, signature, issuer, expiry or audience; the message says which. Nothing was changed.")},
    404: ERROR_RESPONSES[400] | {"description": "No such sync source."},
    409: ERROR_RESPONSES[400] | {"description": "Another run of the source is in progress; try again."},
    422: ERROR_RESPONSES[400] | {"description": (
        "`not_a_user_token`: a valid access token that names no signed-in person (client credentials: no `sub`, "
        "or `sub` is the client); `invalid_snapshot`: the claims do not make a valid account. Nothing was changed.")},
}


@router.post("/sources/{source}/claims", response_model=ClaimsOut, responses=_CLAIMS_ERRORS,
             summary="A signed-in person's ID token or access token, as evidence from the IdP")
def claims(source: SourceName, body: ClaimsIn, caller: DirectoryCaller, request: Request) -> dict[str, Any]:
    """The token is verified against the IdP: issuer, signature (JWKS), expiry, and by kind:

    - `id_token`: an audience of the source's `id_token_audiences` (client ids), not an access token;
    - `access_token`: `typ: at+jwt` (RFC 9068), an audience of the source's `access_token_audiences`
      (resource servers), and a person's token: one of a client (client credentials) is refused (422).

    Its claims (mapped by the source's `claims` in sources.yaml) create or update the person's account
    in `source` just in time (a new person only if the source is master of people); claims the token
    does not carry keep the account's values. The sign-in is recorded as the account's `last_login_at`.
    Claims never grant anything: claimed roles are kept on the account as evidence."""
    services = request.app.state.services
    sync = services.sync
    config = sync.config.source(source)
    kind, token = body.token()
    audiences = tuple(config.settings.get(f"{kind}_audiences") or ())
    if not audiences:
        raise InvalidRequest(f"source {source} names no {kind}_audiences in sources.yaml: it accepts no {kind}s")
    verified = _user_token_verifier(services).verify(kind, token, audiences)
    return sync.ingest_claims(source, verified, actor=caller.client_id, kind=kind)  # type: ignore[no-any-return]


def _user_token_verifier(services: Any) -> Any:
    """One verifier of people's tokens per app (its JWKS cached by kid, like the API's own)."""
    from app.auth.idtoken import UserTokenVerifier
    from app.auth.verifier import OidcTokenVerifier

    auth = services.settings.auth
    if not auth.issuer:
        raise InvalidRequest("no IdP is configured (ACCESSGOV_AUTH__ISSUER): tokens cannot be verified")
    verifier = services.__dict__.get("_user_token_verifier")
    if verifier is None:
        keys = OidcTokenVerifier(issuer=auth.issuer, audience=auth.audience, algorithms=auth.algorithms,
                                 required_typ=auth.required_typ, min_refetch_seconds=auth.jwks_min_refetch_seconds,
                                 leeway=auth.leeway_seconds)
        verifier = services.__dict__.setdefault("_user_token_verifier", UserTokenVerifier(keys))
    return verifier
