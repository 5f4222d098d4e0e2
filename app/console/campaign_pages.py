"""The console's review campaigns: the list and launch, one campaign's items and decisions, bulk keeps of
low-risk items, rollback, reminders, the close preview and close.  Every action is the audit service's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.console import campaign_data as data
from app.console.i18n import add_words
from app.console.web import Form, Viewer, db_id, form_list, guard, guard_form, may, not_found, page, redirect
from app.errors import AccessGovError, Conflict, NotFound

router = APIRouter()
CAMPAIGN = "/campaigns/{campaign_id:int}"
KEEP_SHOWN = 200  # the close preview lists this many kept items; the count says how many there are

add_words({
    "camp.title": ("复核活动", "Review campaigns"),
    "camp.list": ("全部复核活动", "All campaigns"),
    "camp.none": ("还没有复核活动。", "No review campaign yet."),
    "camp.back": ("返回复核活动列表", "Back to the campaigns"),
    "camp.status.active": ("进行中", "In progress"),
    "camp.status.closed": ("已关闭", "Closed"),
    "camp.launched_at": ("发起时间", "Launched"),
    "camp.launched_by": ("发起人", "Launched by"),
    "camp.closed_at": ("关闭时间", "Closed"),
    "camp.pending": ("待复核", "Pending"),
    "camp.decided_of": ("已复核 {decided} / {total}", "{decided} of {total} reviewed"),
    "camp.my_reviews": ("待我复核", "Waiting for my review"),
    "camp.my_none": ("目前没有分配给您的待复核项。", "Nothing is waiting for your review."),
    "camp.open": ("去复核", "Review"),
    "camp.launch": ("发起复核活动", "Launch a review campaign"),
    "camp.name": ("活动名称", "Name"),
    "camp.due": ("截止日期", "Due date"),
    "camp.rule": ("到期未复核的处理规则", "If reviewers do not respond"),
    "camp.rule.keep": ("保留授权", "Keep the grant"),
    "camp.rule.revoke": ("撤销授权", "Revoke the grant"),
    "camp.rule.recommendation": ("按系统建议处理", "Follow the recommendation"),
    "camp.cap": ("自动撤销上限（项）", "Most grants revoked automatically"),
    "camp.scope": ("复核范围（不选即全部）", "Scope (none chosen: everything)"),
    "camp.scope.systems": ("系统", "Systems"),
    "camp.scope.departments": ("部门（含下级）", "Departments (and below)"),
    "camp.scope.roles": ("角色", "Roles"),
    "camp.scope.only_findings": ("仅复核存在待处理审计发现的授权", "Only grants with an open finding"),
    "camp.scope.all": ("全部", "Everything"),
    "camp.launch_submit": ("发起", "Launch"),
    "camp.facts": ("活动信息", "About this campaign"),
    "camp.population": ("复核范围内人员 {people} 人，授权 {items} 项（其中 {with_findings} 项有审计发现）",
                        "{people} people, {items} grants in scope ({with_findings} with findings)"),
    "camp.reports": ("报告", "Reports"),
    "camp.report_pdf": ("复核报告（PDF）", "Review report (PDF)"),
    "camp.evidence_pack": ("证据包（ZIP）", "Evidence pack (ZIP)"),
    "camp.manage": ("活动管理", "Manage the campaign"),
    "camp.remind": ("提醒待复核的复核人", "Remind reviewers with pending items"),
    "camp.close_preview": ("预览并关闭活动", "Preview and close"),
    "camp.items": ("复核项", "Items"),
    "camp.filter.mine": ("只看分配给我的", "Only mine"),
    "camp.filter.person": ("人员编号", "Person id"),
    "camp.filter.pending": ("只看待复核的", "Only pending"),
    "camp.filter.apply": ("筛选", "Filter"),
    "camp.items_total": ("共 {n} 项", "{n} items"),
    "camp.no_items": ("没有符合条件的复核项。", "No items match."),
    "camp.col.role": ("角色 / 权限范围", "Role / scope"),
    "camp.col.risk": ("风险", "Risk"),
    "camp.col.recommendation": ("建议", "Recommended"),
    "camp.col.reviewer": ("复核人", "Reviewer"),
    "camp.col.decision": ("复核决定", "Decision"),
    "camp.col.action": ("操作", "Action"),
    "camp.col.findings": ("审计发现", "Findings"),
    "camp.col.campaign": ("复核活动", "Campaign"),
    "camp.item.pending": ("待复核", "Pending"),
    "camp.item.decided": ("已复核", "Decided"),
    "camp.item.automatic": ("（到期规则自动处理）", "(by the no-response rule)"),
    "camp.no_reviewer": ("未分配", "Unassigned"),
    "camp.own_item": ("本人授权，须由他人复核", "Your own access: someone else reviews it"),
    "camp.decision": ("复核决定", "Decision"),
    "camp.choose": ("请选择", "Choose"),
    "camp.reason": ("原因（必填）", "Reason (required)"),
    "camp.until": ("接受风险至（仅接受风险时填）", "Risk accepted until (accept risk only)"),
    "camp.decide": ("提交", "Submit"),
    "camp.rollback": ("回滚撤销", "Roll back"),
    "camp.rollback_reason": ("回滚原因（必填）", "Why roll back (required)"),
    "camp.rolled_back_by": ("已由 {by} 回滚", "Rolled back by {by}"),
    "camp.bulk": ("批量复核（仅低风险项）", "Bulk review (low-risk items only)"),
    "camp.bulk_pick": ("批量复核第 {id} 项", "Include item {id} in the bulk review"),
    "camp.bulk_intro": ("在下表中勾选低风险的待复核项（第一列的复选框），统一保留或接受风险（须填写截止日期）。"
                        "撤销、缩减须逐项复核。",
                        "Tick low-risk pending items in the table below (the box in the first column) to keep them, "
                        "or accept their risk until a date, together. Revoke and reduce one by one."),
    "camp.bulk_submit": ("批量提交", "Submit for all ticked"),
    "camp.saved.launched": ("复核活动已发起。", "The campaign was launched."),
    "camp.saved.decided": ("复核决定已保存；撤销或缩减已立即执行。",
                           "Decision saved; a revocation or reduction was applied at once."),
    "camp.saved.bulk": ("批量复核已保存。", "The bulk decision was saved."),
    "camp.saved.rolled_back": ("已回滚，授权已恢复。", "Rolled back: the grant is given back."),
    "camp.saved.reminded": ("已提醒 {n} 位复核人。", "{n} reviewers reminded."),
    "camp.saved.closed": ("复核活动已关闭。", "The campaign is closed."),
    "camp.refused": ("未执行，未做任何更改：", "Not done, nothing was changed: "),
    "camp.err.refused": ("操作被拒绝。", "The request was refused."),
    "camp.err.bulk_risk": ("批量复核只适用于低风险项，所选项中有中、高风险项，请逐项复核。",
                           "Bulk decisions are for low-risk items only; review the riskier ones one by one."),
    "camp.err.decided": ("该项已复核，不能重复决定。", "This item was already decided."),
    "camp.err.own": ("不能复核本人的权限。", "Nobody reviews their own access."),
    "camp.err.closed": ("复核活动已关闭。", "The campaign is closed."),
    "camp.err.until": ("接受风险须填写将来的截止日期（YYYY-MM-DD）。",
                       "Accepting a risk needs a future date (YYYY-MM-DD)."),
    "camp.err.no_rollback": ("该项没有已执行的撤销可回滚。", "This item has no applied revocation to roll back."),
    "camp.err.due": ("截止日期须晚于今天。", "The due date must be in the future."),
    "camp.err.due_format": ("截止日期格式应为 YYYY-MM-DD。", "The due date must be YYYY-MM-DD."),
    "camp.err.name": ("请填写活动名称（不超过 200 字）。", "Give the campaign a name (200 characters at most)."),
    "camp.err.options": ("复核范围或处理规则无效。", "The scope or the no-response rule is not valid."),
    "camp.err.reason": ("请填写原因。", "A reason is required."),
    "camp.err.too_long": ("原因不能超过 2000 字。", "The reason may be 2000 characters at most."),
    "camp.err.decision": ("请选择有效的复核决定。", "Choose a valid decision."),
    "camp.err.no_items": ("请至少勾选一项。", "Tick at least one item."),
    "camp.close.title": ("关闭复核活动：{name}", "Close the campaign: {name}"),
    "camp.close.intro": ("关闭时，尚未复核的项目将按“{rule}”规则处理；自动撤销最多 {cap} 项，超出上限的按保留处理。",
                         "On closing, undecided items follow the rule “{rule}”; at most {cap} grants are "
                         "revoked automatically, the rest over the cap are kept."),
    "camp.close.undecided": ("未复核项", "Undecided items"),
    "camp.close.revoke": ("将被撤销", "Will be revoked"),
    "camp.close.capped": ("超出自动撤销上限而保留", "Kept because of the cap"),
    "camp.close.keep": ("将被保留", "Will be kept"),
    "camp.close.more": ("另有 {n} 项未列出。", "{n} more not listed."),
    "camp.close.confirm": ("确认关闭并执行上述处理", "Close and apply the above"),
    "camp.close.already": ("该活动已关闭。", "This campaign is already closed."),
})


def _status(exc: AccessGovError) -> int:
    return 409 if isinstance(exc, Conflict) else 422


def _tz(viewer: Viewer) -> str:
    return str(viewer.rt.settings.timezone)


# -- the list and launch ---------------------------------------------------------------------------


@router.get("/campaigns")
def campaigns(request: Request) -> Response:
    viewer = guard(request, "view_campaigns", "campaigns")
    if isinstance(viewer, Response):
        return viewer
    return _list_page(request, viewer)


def _list_page(request: Request, viewer: Viewer, *, error: data.Refusal | None = None, status: int = 200,
               values: dict[str, str] | None = None) -> Response:
    services = request.app.state.services
    rows = [data.campaign_row(c) for c in services.audit.list_campaigns()]
    mine = data.my_pending(services.audit, viewer.person_id, rows)
    may_launch = may(request, viewer, "manage_campaigns", "campaigns")
    return page(request, viewer, "campaign_list.html", status, nav="campaigns", campaigns=rows, mine=mine,
                names=data.names(services, {i["person_id"] for i in mine}),
                roles=data.role_titles(services, viewer.lang), may_launch=may_launch,
                choices=data.launch_choices(services) if may_launch else None, error=error,
                values=values or {}, picked={k: form_list(values or {}, k)
                                             for k in ("systems", "departments", "roles")})


@router.post("/campaigns")
def launch(request: Request, form: Form) -> Response:
    viewer = guard_form(request, form, "manage_campaigns", "campaigns")
    if isinstance(viewer, Response):
        return viewer
    try:
        asked = data.launch_of(form, _tz(viewer))
        made = request.app.state.services.audit.launch_campaign(
            name=asked.name, scope=asked.scope, due_at=asked.due_at, no_response=asked.no_response,
            auto_revoke_cap=asked.auto_revoke_cap, actor=viewer.person_id)
    except data.FormError as exc:
        return _list_page(request, viewer, error=data.Refusal(exc.key), status=422, values=form)
    except AccessGovError as exc:
        return _list_page(request, viewer, error=data.refusal(exc.message), status=_status(exc), values=form)
    return redirect(viewer, f"/console/campaigns/{made['id']}?saved=launched")


# -- one campaign ----------------------------------------------------------------------------------


@router.get(CAMPAIGN)
def campaign(request: Request, campaign_id: int, mine: str = "", pending: str = "", person: str = "",
             page_no: str = Query("1", alias="page"), saved: str = "", n: str = "") -> Response:
    viewer = guard(request, "view_campaigns", f"campaign:{campaign_id}")
    if isinstance(viewer, Response):
        return viewer
    number = db_id(page_no) or 1
    return _campaign_page(request, viewer, campaign_id, mine=data.flag(mine), pending=data.flag(pending),
                          person=person.strip()[:64], page_no=number, saved=saved if saved in data.SAVED else "",
                          reminded=int(n) if n.isdigit() and len(n) < 7 else 0)


def _campaign_page(request: Request, viewer: Viewer, campaign_id: int, *, mine: bool = False,
                   pending: bool = False, person: str = "", page_no: int = 1, saved: str = "", reminded: int = 0,
                   error: data.Refusal | None = None, status: int = 200) -> Response:
    services = request.app.state.services
    if db_id(campaign_id) is None:
        return not_found(request, viewer)
    try:
        found = services.audit.get_campaign(campaign_id)
        items = services.audit.campaign_items(
            campaign_id, reviewer_id=viewer.person_id if mine else None, pending=True if pending else None,
            person_id=person or None,
            limit=data.PAGE_SIZE, offset=(page_no - 1) * data.PAGE_SIZE)
    except NotFound:
        return not_found(request, viewer)
    target = f"campaign:{campaign_id}"
    c = data.campaign_row(found)
    rows = [data.item_row(i) for i in items["items"]]
    may_review = may(request, viewer, "review_campaign", target)
    may_decide = may_review and c["status"] == "active"
    bulk = [i for i in rows if may_decide and i["decision"] is None and i["risk"] == "low"
            and i["person_id"] != viewer.person_id]
    people = {i["person_id"] for i in rows} | {i["reviewer_id"] for i in rows if i["reviewer_id"]}
    return page(request, viewer, "campaign.html", status, nav="campaigns", c=c, items=rows,
                total=items["total"], pages=max(1, -(-items["total"] // data.PAGE_SIZE)), page_no=page_no,
                query={"mine": mine, "pending": pending, "person": person}, names=data.names(services, people),
                roles=data.role_titles(services, viewer.lang), may_review=may_review, may_decide=may_decide,
                may_manage=may(request, viewer, "manage_campaigns", target), bulk=bulk,
                bulk_ids={i["id"] for i in bulk},
                decisions=data.DECISIONS, bulk_decisions=data.BULK_DECISIONS, saved=saved, reminded=reminded,
                error=error)


def _act(request: Request, viewer: Viewer, campaign_id: int, action: Callable[[], str],
         view: dict[str, Any] | None = None) -> Response:
    """Do ``action``; then 303 to the page it names, or the campaign page (in ``view``: its filters and page)
    again saying why nothing changed."""
    view = view or {}
    try:
        done = action()
    except NotFound:
        return not_found(request, viewer)
    except data.FormError as exc:
        return _campaign_page(request, viewer, campaign_id, error=data.Refusal(exc.key), status=422, **view)
    except AccessGovError as exc:
        return _campaign_page(request, viewer, campaign_id, error=data.refusal(exc.message), status=_status(exc),
                              **view)
    return redirect(viewer, done)


def _view_of(form: dict[str, str]) -> dict[str, Any]:
    """The filters and page the decision form was on (so the answer shows the same rows: htmx picks the row
    it replaces from it, and a reader without JavaScript comes back to where they were)."""
    return {"mine": data.flag(form.get("mine", "")), "pending": data.flag(form.get("pending", "")),
            "person": form.get("person", "").strip()[:64], "page_no": db_id(form.get("page", "")) or 1}


def _view_query(view: dict[str, Any]) -> str:
    return urlencode({"mine": "1" if view["mine"] else "", "pending": "1" if view["pending"] else "",
                      "person": view["person"], "page": view["page_no"]})


@router.post(CAMPAIGN + "/items/{item_id:int}/decision")
def decide(request: Request, campaign_id: int, item_id: int, form: Form) -> Response:
    viewer = guard_form(request, form, "review_campaign", f"campaign:{campaign_id}")
    if isinstance(viewer, Response):
        return viewer
    if db_id(item_id) is None:
        return not_found(request, viewer)

    view = _view_of(form)

    def run() -> str:
        asked = data.decision_of(form, _tz(viewer))
        request.app.state.services.audit.decide(
            campaign_id, item_id, decision=asked.decision, reason=asked.reason, reviewer=viewer.person_id,
            actor=viewer.person_id, until=asked.until)
        return f"/console/campaigns/{campaign_id}?{_view_query(view)}&saved=decided"

    return _act(request, viewer, campaign_id, run, view)


@router.post(CAMPAIGN + "/decisions")
def decide_bulk(request: Request, campaign_id: int, form: Form) -> Response:
    viewer = guard_form(request, form, "review_campaign", f"campaign:{campaign_id}")
    if isinstance(viewer, Response):
        return viewer

    def run() -> str:
        item_ids, asked = data.bulk_of(form, _tz(viewer))
        request.app.state.services.audit.decide_bulk(
            campaign_id, item_ids, decision=asked.decision, reason=asked.reason, reviewer=viewer.person_id,
            actor=viewer.person_id, until=asked.until)
        return f"/console/campaigns/{campaign_id}?saved=bulk"

    return _act(request, viewer, campaign_id, run)


@router.post(CAMPAIGN + "/items/{item_id:int}/rollback")
def rollback(request: Request, campaign_id: int, item_id: int, form: Form) -> Response:
    viewer = guard_form(request, form, "review_campaign", f"campaign:{campaign_id}")
    if isinstance(viewer, Response):
        return viewer
    if db_id(item_id) is None:
        return not_found(request, viewer)

    def run() -> str:
        request.app.state.services.audit.rollback(campaign_id, item_id, actor=viewer.person_id,
                                                  reason=data.reason_of(form))
        return f"/console/campaigns/{campaign_id}?saved=rolled_back"

    return _act(request, viewer, campaign_id, run)


@router.post(CAMPAIGN + "/remind")
def remind(request: Request, campaign_id: int, form: Form) -> Response:
    viewer = guard_form(request, form, "manage_campaigns", f"campaign:{campaign_id}")
    if isinstance(viewer, Response):
        return viewer
    def run() -> str:
        sent = request.app.state.services.audit.remind(campaign_id)
        return f"/console/campaigns/{campaign_id}?saved=reminded&n={len(sent)}"

    return _act(request, viewer, campaign_id, run)


# -- close -----------------------------------------------------------------------------------------


@router.get(CAMPAIGN + "/close-preview")
def close_preview(request: Request, campaign_id: int) -> Response:
    viewer = guard(request, "manage_campaigns", f"campaign:{campaign_id}")
    if isinstance(viewer, Response):
        return viewer
    return _close_page(request, viewer, campaign_id)


def _close_page(request: Request, viewer: Viewer, campaign_id: int, *, error: data.Refusal | None = None,
                status: int = 200) -> Response:
    audit = request.app.state.services.audit
    if db_id(campaign_id) is None:
        return not_found(request, viewer)
    try:
        c = data.campaign_row(audit.get_campaign(campaign_id))
        preview = audit.close_preview(campaign_id)
    except NotFound:
        return not_found(request, viewer)
    groups = data.preview_rows(audit, campaign_id, preview)
    people = {i["person_id"] for rows in groups.values() for i in rows}
    return page(request, viewer, "campaign_close.html", status, nav="campaigns", c=c, preview=preview,
                groups=groups, keep_shown=KEEP_SHOWN, names=data.names(request.app.state.services, people),
                roles=data.role_titles(request.app.state.services, viewer.lang), error=error)


@router.post(CAMPAIGN + "/close")
def close(request: Request, campaign_id: int, form: Form) -> Response:
    viewer = guard_form(request, form, "manage_campaigns", f"campaign:{campaign_id}")
    if isinstance(viewer, Response):
        return viewer
    try:
        request.app.state.services.audit.close(campaign_id, actor=viewer.person_id)
    except NotFound:
        return not_found(request, viewer)
    except AccessGovError as exc:
        return _close_page(request, viewer, campaign_id, error=data.refusal(exc.message), status=_status(exc))
    return redirect(viewer, f"/console/campaigns/{campaign_id}?saved=closed")
