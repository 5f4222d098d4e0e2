"""AuthZEN Authorization API 1.0 over HTTPS: evaluation, evaluations, search, PDP metadata."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.decisions.schemas import (
    ActionSearchRequest,
    Decision,
    EvaluationRequest,
    EvaluationsRequest,
    EvaluationsResponse,
    ResourceSearchRequest,
    SearchResponse,
    SubjectSearchRequest,
)
from app.deps import DecideCaller
from app.errors_http import ERROR_RESPONSES

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


@router.post("/access/v1/evaluation", response_model=Decision, response_model_exclude_none=True,
             summary="Evaluate one access request")
def evaluation(body: EvaluationRequest, caller: DecideCaller, request: Request) -> Response:
    """May this subject do this action on this record, and which fields may they see?"""
    return DecisionJSON(_svc(request).decisions.evaluate(caller=caller, request=body))


@router.post("/access/v1/evaluations", response_model=EvaluationsResponse | Decision,
             response_model_exclude_none=True, summary="Evaluate a batch (boxcarred) of access requests")
def evaluations(body: EvaluationsRequest, caller: DecideCaller, request: Request) -> Response:
    """Decisions in request order; top-level members are defaults; options.evaluations_semantic honoured."""
    return DecisionJSON(_svc(request).decisions.evaluate_many(caller=caller, request=body))


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
