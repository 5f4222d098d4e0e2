"""AuthZEN Authorization API 1.0 request and response shapes (unknown members are ignored)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from app.http_guard import nests_within

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


# -- the fast path of the two decision endpoints --------------------------------------------------------
#
# The decision endpoints read bodies the common way without building pydantic models: the checks below
# accept exactly the bodies the models above accept in their usual form (strings within their lengths,
# objects where objects go; unknown members ignored).  Anything else (a wrong type, a missing member,
# a string out of bounds, or nesting deeper than _VALUE_DEPTH below a member) returns None, and the caller
# validates with the models instead, so a bad body gets the very same 400 and details as before.


class SubjectIn(NamedTuple):
    """A validated subject."""

    type: str
    id: str
    properties: dict[str, Any] | None


class ActionIn(NamedTuple):
    """A validated action."""

    name: str
    properties: dict[str, Any] | None


class ResourceIn(NamedTuple):
    """A validated resource."""

    type: str
    id: str
    properties: dict[str, Any] | None


class ItemIn(NamedTuple):
    """A validated evaluation (each part may be missing in a batch item)."""

    subject: SubjectIn | None
    action: ActionIn | None
    resource: ResourceIn | None
    context: dict[str, Any] | None


class BatchIn(NamedTuple):
    """A validated batch body."""

    subject: SubjectIn | None
    action: ActionIn | None
    resource: ResourceIn | None
    context: dict[str, Any] | None
    evaluations: list[ItemIn] | None
    semantic: Semantic


_SEMANTICS = {s.value: s for s in Semantic}
_NO = object()  # "does not fit the fast path"


_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (a third of the cost)
_CONTAINERS = (dict, list)
_SUBJECT_KEYS = frozenset({"type", "id", "properties"})
_ACTION_KEYS = frozenset({"name", "properties"})
_ITEM_KEYS = frozenset({"subject", "action", "resource", "context"})
_BATCH_KEYS = _ITEM_KEYS | {"evaluations", "options"}
# The deepest a value inside a member may nest for the fast check to accept the body.  The deepest member
# it reads is a batch item's resource properties (the body, evaluations, the item, the resource, the
# properties: 5 levels), so an accepted body is at most 5 + 26 levels deep, within the body guard's
# MAX_DEPTH (32).  The fast path therefore needs no depth walk of its own (``http_guard.parse_unwalked``);
# a deeper body goes the model's way, where the body guard walks it and refuses it.
_VALUE_DEPTH = 26


def _shallow(d: dict[str, Any]) -> bool:
    """Are the values of ``d`` scalars, or containers within _VALUE_DEPTH?  (Usually scalars and ``fields``,
    a list of names.)"""
    for v in d.values():  # noqa: SIM110 - a loop: cheaper than all() over a generator, on every item
        if type(v) in _CONTAINERS and not nests_within(v, _VALUE_DEPTH):
            return False
    return True


def _members(v: dict[str, Any], known: frozenset[str]) -> bool:
    """The members the fast check does not read (ignored, as the models ignore them) nest within bounds."""
    return v.keys() <= known or all(k in known or type(x) not in _CONTAINERS or nests_within(x, _VALUE_DEPTH)
                                    for k, x in v.items())


def _fast_props(v: Any) -> Any:
    return v if v is None or (type(v) is dict and _shallow(v)) else _NO


def _fast_subject(v: Any) -> Any:
    if v is None:
        return None
    if type(v) is not dict or not _members(v, _SUBJECT_KEYS):
        return _NO
    t, i, p = v.get("type"), v.get("id"), v.get("properties")
    if (type(t) is not str or not 0 < len(t) <= 64 or type(i) is not str or not 0 < len(i) <= 300
            or (p is not None and (type(p) is not dict or not _shallow(p)))):
        return _NO
    return _new(SubjectIn, (t, i, p))


def _fast_action(v: Any) -> Any:
    if v is None:
        return None
    if type(v) is not dict or not _members(v, _ACTION_KEYS):
        return _NO
    n, p = v.get("name"), v.get("properties")
    if type(n) is not str or not 0 < len(n) <= 64 or (p is not None and (type(p) is not dict or not _shallow(p))):
        return _NO
    return _new(ActionIn, (n, p))


def _fast_resource(v: Any) -> Any:
    if v is None:
        return None
    if type(v) is not dict or not _members(v, _SUBJECT_KEYS):
        return _NO
    t, i, p = v.get("type"), v.get("id"), v.get("properties")
    if (type(t) is not str or not 0 < len(t) <= 64 or type(i) is not str or len(i) > 300
            or (p is not None and (type(p) is not dict or not _shallow(p)))):
        return _NO
    return _new(ResourceIn, (t, i, p))


def _fast_item(v: Any, keys: frozenset[str] = _ITEM_KEYS) -> Any:
    if type(v) is not dict or not _members(v, keys):
        return _NO
    s, a, r, c = (_fast_subject(v.get("subject")), _fast_action(v.get("action")),
                  _fast_resource(v.get("resource")), _fast_props(v.get("context")))
    if s is _NO or a is _NO or r is _NO or c is _NO:
        return _NO
    return ItemIn(s, a, r, c)


def fast_evaluation(data: Any) -> ItemIn | None:
    """A single evaluation body, or None when it does not fit the fast path (then validate with the model)."""
    item = _fast_item(data)
    if item is _NO or item.subject is None or item.action is None or item.resource is None:
        return None
    return item  # type: ignore[no-any-return]


def fast_evaluations(data: Any, *, merge: bool = False) -> BatchIn | None:
    """A batch body, or None when it does not fit the fast path (then validate with the model).

    ``merge``: each item comes with the top-level defaults already filled in (as ``batch_items`` fills
    them), so the decision path need not build the items a second time; a part still missing stays None.
    """
    top = _fast_item(data, _BATCH_KEYS)
    if top is _NO:
        return None
    semantic = Semantic.execute_all
    options = data.get("options")
    if options is not None:
        if type(options) is not dict or not _shallow(options):
            return None
        if "evaluations_semantic" in options:
            found = _SEMANTICS.get(options["evaluations_semantic"]) if type(
                options["evaluations_semantic"]) is str else None
            if found is None:
                return None
            semantic = found
    raw = data.get("evaluations")
    items: list[ItemIn] | None = None
    if raw is not None:
        if type(raw) is not list:
            return None
        items = []
        append = items.append
        subject, action, resource, context = ((top.subject, top.action, top.resource, top.context) if merge
                                              else (None, None, None, None))
        for v in raw:
            # The common item: a resource only.
            if type(v) is dict and len(v) == 1 and "resource" in v:
                r = _fast_resource(v["resource"])
                if r is _NO:
                    return None
                append(_new(ItemIn, (subject, action, r if r is not None else resource, context)))
                continue
            item = _fast_item(v)
            if item is _NO:
                return None
            if merge:
                item = ItemIn(item.subject or top.subject, item.action or top.action, item.resource or top.resource,
                              item.context if item.context is not None else top.context)
            append(item)
    return BatchIn(top.subject, top.action, top.resource, top.context, items, semantic)
