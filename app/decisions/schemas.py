"""AuthZEN Authorization API 1.0 request and response shapes (unknown members are ignored)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_LENIENT = ConfigDict(extra="ignore")
_EXAMPLE_SUBJECT: Any = {"type": "user", "id": "crm:zhangwei01"}
_EXAMPLE_RESOURCE: Any = {
    "type": "crm.customer",
    "id": "CUS-000123",
    "properties": {"owner": "P00012", "department": "D-SALES-EAST", "fields": ["name", "phone", "id_number"]},
}


class Subject(BaseModel):
    """Who asks: a person id (``P00012``) or a source-system account (``crm:zhangwei01``)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [
_EXAMPLE_SUBJECT]})
    type: str = Field(min_length=1, max_length=64)
    id: str = Field(min_length=1, max_length=300)
    properties: dict[str, Any] | None = None


class SearchSubject(BaseModel):
    """A subject whose id may be omitted (subject search)."""

    model_config = _LENIENT
    type: str = Field(min_length=1, max_length=64)
    id: str | None = Field(None, max_length=300)
    properties: dict[str, Any] | None = None


class Resource(BaseModel):
    """The record: its type, id, and properties (owner, department, fields, what conditions read)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [
_EXAMPLE_RESOURCE]})
    type: str = Field(min_length=1, max_length=64)
    id: str = Field(max_length=300)
    properties: dict[str, Any] | None = None


class SearchResource(BaseModel):
    """A resource whose id may be omitted (resource search)."""

    model_config = _LENIENT
    type: str = Field(min_length=1, max_length=64)
    id: str | None = Field(None, max_length=300)
    properties: dict[str, Any] | None = None


class Action(BaseModel):
    """What the subject wants to do; properties are the action's options (e.g. ``rows`` of an export)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [
{"name": "read"}]})
    name: str = Field(min_length=1, max_length=64)
    properties: dict[str, Any] | None = None


class EvaluationRequest(BaseModel):
    """``POST /access/v1/evaluation``."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [
{"subject": _EXAMPLE_SUBJECT, "action": {"name": "read"},
                                         "resource": _EXAMPLE_RESOURCE}]},
    )
    subject: Subject
    action: Action
    resource: Resource
    context: dict[str, Any] | None = None


class EvaluationItem(BaseModel):
    """One entry of ``evaluations``; members it omits come from the top level."""

    model_config = _LENIENT
    subject: Subject | None = None
    action: Action | None = None
    resource: Resource | None = None
    context: dict[str, Any] | None = None


class Semantic(StrEnum):
    """Batch evaluation semantics of AuthZEN 1.0."""

    deny_on_first_deny = "deny_on_first_deny"
    execute_all = "execute_all"
    permit_on_first_permit = "permit_on_first_permit"


class EvaluationOptions(BaseModel):
    """Batch options."""

    model_config = _LENIENT
    evaluations_semantic: Semantic = Semantic.execute_all


class EvaluationsRequest(BaseModel):
    """``POST /access/v1/evaluations``: top-level members are defaults for each evaluation."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [
{
            "subject": _EXAMPLE_SUBJECT, "action": {"name": "read"},
            "options": {"evaluations_semantic": "execute_all"},
            "evaluations": [{"resource": _EXAMPLE_RESOURCE},
                            {"resource": {"type": "crm.customer", "id": "CUS-000124",
                                          "properties": {"owner": "P00040", "department": "D-SALES-SOUTH"}}}],
        }]},
    )
    subject: Subject | None = None
    action: Action | None = None
    resource: Resource | None = None
    context: dict[str, Any] | None = None
    evaluations: list[EvaluationItem] | None = None
    options: EvaluationOptions | None = None


class Decision(BaseModel):
    """An AuthZEN decision; ``context`` carries decision_id, policy_version, reason and fields."""

    decision: bool
    context: dict[str, Any] | None = None


class EvaluationsResponse(BaseModel):
    """Decisions in request order (shorter when a batch semantic stopped early)."""

    evaluations: list[Decision]


class Page(BaseModel):
    """Search paging: pass back ``next_token`` (or ``token``) to continue."""

    model_config = _LENIENT
    next_token: str | None = None
    token: str | None = None
    limit: int | None = Field(None, ge=1, le=1000)


class SubjectSearchRequest(BaseModel):
    """``POST /access/v1/search/subject``."""

    model_config = _LENIENT
    subject: SearchSubject
    action: Action
    resource: Resource
    context: dict[str, Any] | None = None
    page: Page | None = None


class ResourceSearchRequest(BaseModel):
    """``POST /access/v1/search/resource``."""

    model_config = _LENIENT
    subject: Subject
    action: Action
    resource: SearchResource
    context: dict[str, Any] | None = None
    page: Page | None = None


class ActionSearchRequest(BaseModel):
    """``POST /access/v1/search/action``."""

    model_config = _LENIENT
    subject: Subject
    resource: Resource
    context: dict[str, Any] | None = None
    page: Page | None = None


class PageOut(BaseModel):
    """Paging of a search response; empty ``next_token`` means the last page."""

    next_token: str = ""
    count: int = 0


class SearchResponse(BaseModel):
    """Subjects, resources or actions, one page."""

    results: list[dict[str, Any]]
    page: PageOut
    context: dict[str, Any] | None = None


class FilterRequest(BaseModel):
    """``POST /v1/filter``: which records of a type may the subject act on?"""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [
{"subject": _EXAMPLE_SUBJECT, "action": {"name": "read"},
                                         "resource": {"type": "crm.customer"}}]},
    )
    subject: Subject
    action: Action
    resource: SearchResource
    context: dict[str, Any] | None = None
