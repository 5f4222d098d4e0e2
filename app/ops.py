"""Operations endpoints: liveness, readiness (policy loaded), Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["Operations"])


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the policy is loaded", responses={503: {"description": "Not ready"}})
def readyz(request: Request) -> Any:
    """Ready only once a policy version is loaded; until then decisions are refused."""
    state = request.app.state.services.holder.current
    if state is None:
        return JSONResponse({"status": "not_ready", "reason": "policy not loaded"}, status_code=503)
    return {"status": "ready", "policy_version": state.version, "policy_version_id": state.policy_version_id}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Decisions by effect and system, latency, decision-log queue depth and drops."""
    registry = request.app.state.services.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
