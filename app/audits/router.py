"""Audit API: run the audit, its runs and schedule, findings and their lifecycle, suppressions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app.audits.service import SORTS
from app.deps import AuditCaller
from app.errors import Conflict
from app.errors_http import ERROR_RESPONSES
from audit.config import KINDS, SEVERITIES
from audit.store import STATUSES

router = APIRouter(prefix="/v1/audit", tags=["Access audit"], responses=ERROR_RESPONSES)
DbId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
Kind = Literal[KINDS]  # type: ignore[valid-type]
Severity = Literal[SEVERITIES]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]
Text = Annotated[str, Field(min_length=1, max_length=2000)]


class StatusIn(BaseModel):
    """A decision on one finding."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "accepted", "reason": "客服主管代岗至年底，风险已知", "until": "2026-12-31T16:00:00Z",
         "owner": "P00196"}]})
    status: Literal["accepted", "remediated", "open"] = Field(
        description="accepted: the risk is accepted until `until` (with `owner`); remediated: fixed by hand; "
                    "open: reopen")
    reason: Text
    until: AwareDatetime | None = Field(None, description="required for accepted: when the acceptance ends")
    owner: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="required for accepted: who owns the accepted risk")


class MatchIn(BaseModel):
    """What a suppression matches besides the kind (every member given must be equal)."""

    model_config = ConfigDict(extra="forbid")
    person_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    system: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    account: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    permission: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    field: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class SuppressionIn(BaseModel):
    """Findings of one kind matching ``match`` are recorded as suppressed until ``expires_at``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "orphan_account", "match": {"system": "crm", "account": "kefu"}, "owner": "P00262",
         "reason": "客服共享坐席账号，由IT每月核对", "expires_at": "2027-03-31T16:00:00Z"}]})
    kind: Kind | Literal["*"]
    match: MatchIn = Field(default_factory=MatchIn)
    owner: Annotated[str, Field(min_length=1, max_length=200)]
    reason: Text
    expires_at: AwareDatetime


def _audit(request: Request) -> Any:
    return request.app.state.services.audit


@router.post("/runs", summary="Run the audit now", status_code=201)
def run_now(caller: AuditCaller, request: Request) -> dict[str, Any]:
    """A full run over the whole population; returns the run with its counts (findings by kind and
    severity; new, seen again, reopened, resolved)."""
    run = _audit(request).run(trigger="manual", actor=caller.client_id)
    if run is None:  # a fresh key cannot be taken; kept for completeness
        raise Conflict("the run could not be claimed")
    return run  # type: ignore[no-any-return]


@router.get("/runs", summary="Audit runs, newest first")
def runs(caller: AuditCaller, request: Request,
         limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    return _audit(request).list_runs(limit)  # type: ignore[no-any-return]


@router.get("/runs/{run_id}", summary="One audit run")
def run(run_id: DbId, caller: AuditCaller, request: Request) -> dict[str, Any]:
    return _audit(request).get_run(run_id)  # type: ignore[no-any-return]


@router.get("/schedule", summary="The audit's schedule and whether its latest due run happened")
def schedule(caller: AuditCaller, request: Request) -> dict[str, Any]:
    return _audit(request).schedule()  # type: ignore[no-any-return]


@router.get("/summary", summary="Findings by status, and open findings by kind and severity")
def summary(caller: AuditCaller, request: Request) -> dict[str, Any]:
    return _audit(request).summary()  # type: ignore[no-any-return]


@router.get("/findings", summary="Findings, filtered, sorted and paged")
def findings(caller: AuditCaller, request: Request,
             status: Annotated[list[Status] | None, Query()] = None,
             kind: Annotated[list[Kind] | None, Query()] = None,
             severity: Annotated[list[Severity] | None, Query()] = None,
             person_id: Annotated[str | None, Query(max_length=64)] = None,
             system: Annotated[str | None, Query(max_length=32)] = None,
             run_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
             sort: Literal[tuple(SORTS)] = "severity",  # type: ignore[valid-type]
             order: Literal["asc", "desc"] = "asc",
             limit: Annotated[int, Query(ge=1, le=1000)] = 100,
             offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    """``status``, ``kind`` and ``severity`` may repeat; ``sort=severity`` puts the most severe first."""
    return _audit(request).list_findings(  # type: ignore[no-any-return]
        status=status, kind=kind, severity=severity, person_id=person_id, system=system, run_id=run_id,
        sort=sort, order=order, limit=limit, offset=offset)


@router.get("/findings/{finding_id}", summary="One finding with its evidence and history")
def finding(finding_id: DbId, caller: AuditCaller, request: Request) -> dict[str, Any]:
    return _audit(request).get_finding(finding_id)  # type: ignore[no-any-return]


@router.post("/findings/{finding_id}/status", summary="Accept the risk until a date, mark remediated, or reopen")
def set_status(finding_id: DbId, body: StatusIn, caller: AuditCaller, request: Request) -> dict[str, Any]:
    """409 when the lifecycle does not allow the move (e.g. accepting a resolved finding), or when
    an acceptance lacks a future ``until`` or an ``owner``."""
    return _audit(request).set_status(  # type: ignore[no-any-return]
        finding_id, to=body.status, actor=caller.client_id, reason=body.reason, until=body.until, owner=body.owner)


@router.get("/suppressions", summary="Suppression rules")
def suppressions(caller: AuditCaller, request: Request, include_ended: bool = False) -> list[dict[str, Any]]:
    return _audit(request).list_suppressions(include_ended)  # type: ignore[no-any-return]


@router.post("/suppressions", summary="Suppress matching findings until a date", status_code=201)
def add_suppression(body: SuppressionIn, caller: AuditCaller, request: Request) -> dict[str, Any]:
    """Applies from the next run on: matching findings are stored as ``suppressed``, not ``open``."""
    return _audit(request).add_suppression(  # type: ignore[no-any-return]
        kind=body.kind, match=body.match.model_dump(exclude_none=True), owner=body.owner, reason=body.reason,
        expires_at=body.expires_at, actor=caller.client_id)


@router.post("/suppressions/{suppression_id}/revoke", summary="End a suppression now")
def revoke_suppression(suppression_id: DbId, caller: AuditCaller, request: Request) -> dict[str, Any]:
    return _audit(request).revoke_suppression(suppression_id, actor=caller.client_id)  # type: ignore[no-any-return]





# --------------------------------------------------------------------------- review campaigns

PersonId = Annotated[str, Field(min_length=1, max_length=64)]


class CampaignIn(BaseModel):
    """Launch a review campaign over the grants of the people in scope."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "2026年第四季度访问复核", "scope": {"systems": ["crm"], "only_findings": True},
         "due_at": "2026-12-20T10:00:00Z", "no_response": "recommendation", "auto_revoke_cap": 20}]})
    name: Annotated[str, Field(min_length=1, max_length=200)]
    scope: ScopeIn = Field(default_factory=lambda: ScopeIn())
    due_at: AwareDatetime
    no_response: Literal["keep", "revoke", "recommendation"] = Field(
        "keep", description="what happens at close to items nobody decided")
    auto_revoke_cap: Annotated[int, Field(ge=0, le=100_000)] = Field(
        25, description="most grants the no-response rule may revoke; the rest are kept (see close-preview)")


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    departments: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        default_factory=list, description="department paths (a person in one of them or below is in scope)")
    systems: list[Literal["crm", "oa"]] = Field(default_factory=list)
    roles: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    only_findings: bool = Field(False, description="only grants with an open finding")


CampaignIn.model_rebuild()


class DecisionIn(BaseModel):
    """A reviewer's decision on one item."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"decision": "revoke", "reason": "已调岗，不再负责华东客户", "reviewer": "P00007"}]})
    decision: Literal["keep", "revoke", "reduce", "accept_risk"]
    reason: Text
    reviewer: PersonId = Field(description="the person deciding (never the item's own person)")
    until: AwareDatetime | None = Field(None, description="required for accept_risk")

    @model_validator(mode="after")
    def _until_for_accept_risk(self) -> Self:
        _needs_until(self.decision, self.until)
        return self


class BulkDecisionIn(BaseModel):
    """The same decision on several low-risk items (all or none)."""

    model_config = ConfigDict(extra="forbid")
    item_ids: Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1)]], Field(min_length=1, max_length=1000)]
    decision: Literal["keep", "accept_risk"]
    reason: Text
    reviewer: PersonId
    until: AwareDatetime | None = Field(None, description="required for accept_risk")

    @model_validator(mode="after")
    def _until_for_accept_risk(self) -> Self:
        _needs_until(self.decision, self.until)
        return self


def _needs_until(decision: str, until: datetime | None) -> None:
    if decision == "accept_risk" and until is None:
        raise ValueError("accept_risk needs until: the date the accepted risk ends")


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text


class ApplyLeastPrivilegeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grant_ids: Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1)]], Field(min_length=1, max_length=500)]
    reason: Text


@router.post("/campaigns", summary="Launch a review campaign", status_code=201)
def launch_campaign(body: CampaignIn, caller: AuditCaller, request: Request) -> dict[str, Any]:
    """The people in scope are snapshotted as they are now; one item per grant, with the open findings
    about it, a recommendation and a reviewer (manager, else system owner, else security officer)."""
    return _audit(request).launch_campaign(  # type: ignore[no-any-return]
        name=body.name, scope=body.scope.model_dump(), due_at=body.due_at, no_response=body.no_response,
        auto_revoke_cap=body.auto_revoke_cap, actor=caller.client_id)


@router.get("/campaigns", summary="Campaigns with their progress")
def campaigns(caller: AuditCaller, request: Request,
              status: Literal["active", "closed"] | None = None) -> list[dict[str, Any]]:
    return _audit(request).list_campaigns(status)  # type: ignore[no-any-return]


@router.get("/campaigns/{campaign_id}", summary="One campaign with its progress")
def campaign(campaign_id: DbId, caller: AuditCaller, request: Request) -> dict[str, Any]:
    return _audit(request).get_campaign(campaign_id)  # type: ignore[no-any-return]


@router.get("/campaigns/{campaign_id}/items", summary="A campaign's items (filter by reviewer, person, pending)")
def campaign_items(campaign_id: DbId, caller: AuditCaller, request: Request,
                   reviewer_id: Annotated[str | None, Query(max_length=64)] = None, pending: bool | None = None,
                   person_id: Annotated[str | None, Query(max_length=64)] = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                   offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    return _audit(request).campaign_items(  # type: ignore[no-any-return]
        campaign_id, reviewer_id=reviewer_id, pending=pending, person_id=person_id, limit=limit, offset=offset)


@router.post("/campaigns/{campaign_id}/items/{item_id}/decision", summary="Decide one item")
def decide(campaign_id: DbId, item_id: DbId, body: DecisionIn, caller: AuditCaller,
           request: Request) -> dict[str, Any]:
    """revoke and reduce are applied at once as recorded grant changes (``apply_status``,
    ``apply_result``); 409 for a second decision, a closed campaign, or reviewing oneself."""
    return _audit(request).decide(  # type: ignore[no-any-return]
        campaign_id, item_id, decision=body.decision, reason=body.reason, reviewer=body.reviewer,
        actor=caller.client_id, until=body.until)


@router.post("/campaigns/{campaign_id}/decisions", summary="Bulk decision on low-risk items")
def decide_bulk(campaign_id: DbId, body: BulkDecisionIn, caller: AuditCaller, request: Request) -> list[dict[str, Any]]:
    """Refused whole (409) if any item is above low risk, already decided, or the reviewer's own."""
    return _audit(request).decide_bulk(  # type: ignore[no-any-return]
        campaign_id, body.item_ids, decision=body.decision, reason=body.reason, reviewer=body.reviewer,
        actor=caller.client_id, until=body.until)


@router.post("/campaigns/{campaign_id}/items/{item_id}/rollback", summary="Undo an applied revocation")
def rollback(campaign_id: DbId, item_id: DbId, body: RollbackIn, caller: AuditCaller,
             request: Request) -> dict[str, Any]:
    return _audit(request).rollback(  # type: ignore[no-any-return]
        campaign_id, item_id, actor=caller.client_id, reason=body.reason)


@router.post("/campaigns/{campaign_id}/remind", summary="Remind reviewers with pending items")
def remind(campaign_id: DbId, caller: AuditCaller, request: Request) -> list[dict[str, Any]]:
    """Only reviewers with pending items are reminded; each reminder is recorded."""
    return _audit(request).remind(campaign_id)  # type: ignore[no-any-return]


@router.get("/campaigns/{campaign_id}/close-preview", summary="What closing would do to undecided items")
def close_preview(campaign_id: DbId, caller: AuditCaller, request: Request) -> dict[str, Any]:
    return _audit(request).close_preview(campaign_id)  # type: ignore[no-any-return]


@router.post("/campaigns/{campaign_id}/close", summary="Apply the no-response rule and close")
def close(campaign_id: DbId, caller: AuditCaller, request: Request) -> dict[str, Any]:
    return _audit(request).close(campaign_id, actor=caller.client_id)  # type: ignore[no-any-return]


@router.get("/people/{person_id}/least-privilege", summary="A least-privilege proposal from the person's use")
def least_privilege(person_id: Annotated[str, PathParam(min_length=1, max_length=64)], caller: AuditCaller,
                    request: Request) -> dict[str, Any]:
    return _audit(request).least_privilege(person_id)  # type: ignore[no-any-return]


@router.post("/people/{person_id}/least-privilege/apply", summary="Apply the proposal for selected grants")
def apply_least_privilege(person_id: Annotated[str, PathParam(min_length=1, max_length=64)],
                          body: ApplyLeastPrivilegeIn, caller: AuditCaller, request: Request) -> dict[str, Any]:
    return _audit(request).apply_least_privilege(  # type: ignore[no-any-return]
        person_id, grant_ids=body.grant_ids, actor=caller.client_id, reason=body.reason)


# --------------------------------------------------------------------------- reports

Format = Literal["html", "csv", "xlsx", "pdf"]
Lang = Literal["zh-CN", "en"]


def file_response(body: bytes, media: str, name: str, **headers: str) -> Response:
    """A report or evidence pack as a download (the API's and the console's)."""
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                     "Cache-Control": "no-store", **headers})


@router.get("/runs/{run_id}/report", summary="An audit run's report", response_class=Response,
            responses={200: {"content": {"text/html": {}, "application/pdf": {}, "application/zip": {}}}})
def run_report(run_id: DbId, caller: AuditCaller, request: Request, format: Format = "html",
               lang: Lang = "zh-CN") -> Response:
    """HTML, CSV (a ZIP of one file per section), XLSX or PDF; Chinese by default."""
    return file_response(*_audit(request).report("run", run_id, fmt=format, lang=lang))


@router.get("/runs/{run_id}/evidence-pack", summary="An audit run's evidence pack (ZIP with SHA-256 manifest)",
            response_class=Response, responses={200: {"content": {"application/zip": {}}}})
def run_pack(run_id: DbId, caller: AuditCaller, request: Request) -> Response:
    """Every rendering in both languages, the data as JSON, the trail's verification; the pack's digest
    (SHA-256 of its manifest.json) is in the ``X-Evidence-Digest`` header."""
    body, digest, name = _audit(request).evidence_pack("run", run_id)
    return file_response(body, "application/zip", name, **{"X-Evidence-Digest": digest})


@router.get("/campaigns/{campaign_id}/report", summary="A campaign's report", response_class=Response,
            responses={200: {"content": {"text/html": {}, "application/pdf": {}, "application/zip": {}}}})
def campaign_report(campaign_id: DbId, caller: AuditCaller, request: Request, format: Format = "html",
                    lang: Lang = "zh-CN") -> Response:
    """The population at launch, the decisions with their apply results, the population after."""
    return file_response(*_audit(request).report("campaign", campaign_id, fmt=format, lang=lang))


@router.get("/campaigns/{campaign_id}/evidence-pack", summary="A campaign's evidence pack",
            response_class=Response, responses={200: {"content": {"application/zip": {}}}})
def campaign_pack(campaign_id: DbId, caller: AuditCaller, request: Request) -> Response:
    body, digest, name = _audit(request).evidence_pack("campaign", campaign_id)
    return file_response(body, "application/zip", name, **{"X-Evidence-Digest": digest})
