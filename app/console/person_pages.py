"""The console's person pages: search people, and one person's access (accounts, grants and where each
came from, effective permissions, an explanation, usage, findings, least privilege), with revocation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app.console import person_data as data
from app.console.i18n import add_words, format_date
from app.console.pages import trend_chart
from app.console.web import Form, Viewer, db_id, form_list, guard, guard_form, may, not_found, page, redirect
from app.errors import AccessGovError, Conflict, NotFound

router = APIRouter()
EXPLAIN_KEYS = ("type", "action", "id", "department", "owner", "fields", "properties")
MAX_PARAM = 2000


@router.get("/people")
def people(request: Request, q: str = "", status: str = "", page_no: str = Query("1", alias="page")) -> Response:
    viewer = guard(request, "view_people", "people")
    if isinstance(viewer, Response):
        return viewer
    q, status = q.strip()[:200], (status if status in data.PERSON_STATUSES else "")
    number = min(max(_int(page_no), 1), 100_000)
    found = data.search_people(request.app.state.services, q=q, status=status,
                               offset=(number - 1) * data.SEARCH_LIMIT)
    pages = max(1, -(-found["total"] // data.SEARCH_LIMIT))
    return page(request, viewer, "person_search.html", nav="people", found=found, q=q, chosen=status,
                statuses=data.PERSON_STATUSES, page_no=number, pages=pages)


@router.get("/people/{person_id}")
def person(request: Request, person_id: str, saved: str = "", revoked: str = "", applied: str = "",
           proposal: str = "") -> Response:
    viewer = guard(request, "view_people", _target(person_id))
    if isinstance(viewer, Response):
        return viewer
    return _person_page(request, viewer, person_id, saved=saved == "1", revoked=_int(revoked), applied=_int(applied),
                        proposal=proposal == "1")


@router.post("/people/{person_id}/grants/{grant_id}/revoke")
def revoke_grant(request: Request, person_id: str, grant_id: str, form: Form) -> Response:
    viewer = guard_form(request, form, "manage_grants", _target(person_id))
    if isinstance(viewer, Response):
        return viewer
    services = request.app.state.services
    gid = db_id(grant_id)
    if data.get_person(services, person_id) is None or gid is None or data.grant_of(services, person_id, gid) is None:
        return not_found(request, viewer)
    try:
        services.grants.revoke_grant(actor=viewer.person_id, grant_id=gid, reason=form.get("reason", "").strip())
    except NotFound:
        return not_found(request, viewer)
    except AccessGovError as exc:
        return _person_page(request, viewer, person_id, error=exc.message, status=_status_of(exc))
    return redirect(viewer, f"/console/people/{person_id}?saved=1&revoked={gid}#grants")


@router.post("/people/{person_id}/least-privilege")
def apply_least_privilege(request: Request, person_id: str, form: Form) -> Response:
    viewer = guard_form(request, form, "manage_grants", _target(person_id))
    if isinstance(viewer, Response):
        return viewer
    services = request.app.state.services
    if data.get_person(services, person_id) is None:
        return not_found(request, viewer)
    picked = [db_id(v) for v in form_list(form, "grant")]
    grant_ids = [g for g in picked if g is not None]
    if not grant_ids or len(grant_ids) != len(picked):
        return _person_page(request, viewer, person_id, error="person.lp_none", status=422, proposal=True)
    try:
        done = services.audit.apply_least_privilege(person_id, grant_ids=grant_ids, actor=viewer.person_id,
                                                    reason=form.get("reason", "").strip())
    except NotFound:
        return not_found(request, viewer)
    except AccessGovError as exc:
        return _person_page(request, viewer, person_id, error=exc.message, status=_status_of(exc), proposal=True)
    applied = len(done["applied"])
    return redirect(viewer, f"/console/people/{person_id}?saved=1&proposal=1&applied={applied}#least-privilege")


def _person_page(request: Request, viewer: Viewer, person_id: str, *, saved: bool = False, revoked: int = 0,
                 applied: int = 0, error: str = "", status: int = 200, proposal: bool = False) -> Response:
    """The person's page. The least-privilege proposal reads the audit's whole population (seconds in a
    large company), so it is computed only when asked for (``?proposal=1``), not on every view."""
    services = request.app.state.services
    who = data.get_person(services, person_id)
    if who is None:
        return not_found(request, viewer)
    tz, lang = viewer.rt.settings.timezone, viewer.lang
    ask = {k: request.query_params.get(k, "").strip()[:MAX_PARAM] for k in EXPLAIN_KEYS}
    answer, explain_error = _explain(services, person_id, ask)
    if explain_error and not error:
        error, status = explain_error, 422
    weeks = data.usage_weeks(services, person_id, tz=tz)
    chart = trend_chart([{"quarter": f"{w['week']:%m/%d}", "open": w["total"]} for w in weeks], width=720)
    return page(request, viewer, "person.html", status, nav="people", p=who,
                accounts=data.person_accounts(services, person_id),
                grants=data.person_grants(services, person_id, lang), eff=data.effective(services, person_id),
                eff_shown=data.EFFECTIVE_SHOWN, types=data.resource_types(services), ask=ask, answer=answer,
                weeks=weeks, chart=chart, usage=data.usage_totals(services, person_id), days=data.USAGE_DAYS,
                findings=data.person_findings(services, person_id),
                lp=data.least_privilege(services, person_id) if proposal else None, lp_asked=proposal,
                may_manage=may(request, viewer, "manage_grants", _target(person_id)), saved=saved,
                revoked=revoked, applied=applied, error=error, day=lambda d: format_date(d, lang))


def _explain(services: Any, person_id: str, ask: dict[str, str]) -> tuple[dict[str, Any] | None, str]:
    """The explain API's answer for the form's question (none asked: None), or the error to show."""
    if not (ask["type"] and ask["action"]):
        return None, ""
    try:
        question = data.explain_request(person_id, ask)
    except ValidationError:
        return None, "person.explain_invalid"
    try:
        return data.explain(services, question), ""
    except AccessGovError as exc:
        return None, exc.message


def _target(person_id: str) -> str:
    return f"person:{person_id[:64]}"


def _int(value: str) -> int:
    return int(value) if value.isdigit() and len(value) <= 9 else 0




def _status_of(exc: AccessGovError) -> int:
    """409 for a conflict with the current state (already revoked), 422 for a refused value."""
    return 409 if isinstance(exc, Conflict) else 422


add_words({
    "person.search_title": ("人员权限", "People and their access"),
    "person.q": ("搜索（姓名、工号、人员编号、部门、账号）",
                 "Search (name, employee no., person id, department, account)"),
    "person.any_status": ("全部状态", "Any status"),
    "person.search": ("搜索", "Search"),
    "person.total": ("共 {n} 人", "{n} people"),
    "person.none": ("没有符合条件的人员。", "Nobody matches."),
    "person.page": ("第 {page} / {pages} 页", "Page {page} of {pages}"),
    "person.prev": ("上一页", "Previous"),
    "person.next": ("下一页", "Next"),
    "person.back": ("返回人员列表", "Back to the people"),
    "person.col.department": ("部门", "Department"),
    "person.col.position": ("岗位", "Position"),
    "person.col.accounts": ("账号", "Accounts"),
    "person.col.employee_no": ("工号", "Employee no."),
    "person.col.manager": ("直属上级", "Manager"),
    "person.col.hired_on": ("入职日期", "Hired on"),
    "person.col.left_on": ("离职日期", "Left on"),
    "person.col.email": ("邮箱", "Email"),
    "person.col.local_id": ("账号", "Account"),
    "person.col.display_name": ("显示名", "Display name"),
    "person.col.last_login": ("最近登录", "Last login"),
    "person.col.link": ("关联状态", "Link"),
    "person.col.role": ("角色", "Role"),
    "person.col.scope": ("部门范围", "Department scope"),
    "person.col.valid_from": ("生效", "Valid from"),
    "person.col.valid_until": ("失效", "Valid until"),
    "person.col.origin": ("来源", "Origin"),
    "person.col.state": ("状态", "State"),
    "person.col.revoke": ("撤销", "Revoke"),
    "person.col.type": ("资源类型", "Resource type"),
    "person.col.action": ("操作", "Action"),
    "person.col.effect": ("效果", "Effect"),
    "person.col.data_scope": ("数据范围", "Data scope"),
    "person.col.condition": ("条件", "Condition"),
    "person.col.path": ("授予路径（授权 → 角色 → 规则）", "Path (grant → role → rules)"),
    "person.col.week": ("周（起始日）", "Week of"),
    "person.col.allowed": ("允许", "Allowed"),
    "person.col.denied": ("拒绝", "Denied"),
    "person.col.total": ("合计", "Total"),
    "person.col.first_used": ("首次使用", "First used"),
    "person.col.last_used": ("最近使用", "Last used"),
    "person.col.grant": ("授权", "Grant"),
    "person.col.own": ("仅此授权提供的权限", "Permissions only this grant gives"),
    "person.col.own_used": ("其中已使用", "Of those used"),
    "person.col.proposal": ("建议", "Proposal"),
    "person.col.replacement": ("替换为", "Replace with"),
    "person.col.select": ("选择", "Select"),
    "person.col.delegator": ("委托人", "Delegated by"),
    "person.col.rule": ("规则", "Rule"),
    "person.col.outcome": ("结果", "Outcome"),
    "person.col.applies": ("是否适用", "Applies"),
    "person.col.why": ("说明", "Why"),
    "person.col.revoked_at": ("撤销时间", "Revoked at"),
    "person.col.revoked_by": ("撤销人", "Revoked by"),
    "person.accounts": ("各系统账号", "Accounts in each system"),
    "person.no_accounts": ("没有关联的账号。", "No linked accounts."),
    "person.grants": ("授权", "Grants"),
    "person.no_grants": ("没有生效或暂停中的授权。", "No grants in force or suspended."),
    "person.delegations": ("作为代理人获得的委托", "Roles held as a deputy"),
    "person.revoked_grants": ("已撤销的授权", "Revoked grants"),
    "person.whole_company": ("全公司", "Whole company"),
    "person.and_below": ("（含下级）", " (and below)"),
    "person.state.active": ("生效", "In force"),
    "person.state.suspended": ("已暂停待复核", "Suspended for review"),
    "person.state.expired": ("已过期", "Expired"),
    "person.state.pending": ("未到生效时间", "Not yet valid"),
    "person.state.revoked": ("已撤销", "Revoked"),
    "person.origin.sync": ("源系统同步：{source}", "Synced from {source}"),
    "person.origin.role": ("源角色 {role}", "source role {role}"),
    "person.origin.run": ("同步批次 #{run}", "sync run #{run}"),
    "person.origin.manual": ("手工授予", "Granted by hand"),
    "person.origin.campaign": ("复核活动 #{campaign} 回滚恢复（条目 #{item}）",
                               "Restored by a rollback in review #{campaign} (item #{item})"),
    "person.origin.least_privilege": ("最小权限缩减后的替换授权", "Replacement from a least-privilege reduction"),
    "person.origin.delegation": ("委托", "Delegation"),
    "person.origin.by": ("操作人 {by}", "by {by}"),
    "person.reason": ("原因（必填）", "Reason (required)"),
    "person.revoke": ("撤销", "Revoke"),
    "person.saved_revoked": ("已撤销授权 #{id}，决策即时生效。", "Grant #{id} revoked; decisions see it at once."),
    "person.saved_applied": ("已按最小权限建议处理 {n} 项授权。", "The proposal was applied to {n} grants."),
    "person.saved": ("已保存。", "Saved."),
    "person.refused": ("未执行：", "Not done: "),
    "person.lp_none": ("请至少选择一项建议撤销或缩减的授权。",
                       "Select at least one grant proposed for revocation or reduction."),
    "person.explain_invalid": ("解释请求的参数无效（长度或格式）。",
                               "The explain question is not valid (length or form)."),
    "person.effective": ("有效权限", "Effective permissions"),
    "person.effective_none": ("没有有效权限。", "No effective permissions."),
    "person.effective_missing": ("该人员尚未进入决策服务的目录（等待下次刷新）。",
                                 "The person is not in the decision service's directory yet (next refresh)."),
    "person.effective_total": ("共 {n} 条（按授权、角色与规则形状分组）",
                               "{n} in all (grouped by grant, role and rule shape)"),
    "person.effective_capped": ("仅显示前 {n} 条。", "Only the first {n} are shown."),
    "person.delegated_from": ("委托自 {id}", "delegated by {id}"),
    "person.explain": ("权限解释", "Explain a decision"),
    "person.explain_intro": ("给出资源类型、操作和记录（编号或所属部门），查看该人员会被允许还是拒绝，以及原因。",
                             "Give a resource type, an action and the record (its id, or its department) to see "
                             "whether this person would be allowed, and why."),
    "person.f.type": ("资源类型", "Resource type"),
    "person.f.action": ("操作", "Action"),
    "person.f.id": ("记录编号", "Record id"),
    "person.f.department": ("记录所属部门（编号）", "Record's department (id)"),
    "person.f.owner": ("记录负责人（人员编号或账号）", "Record's owner (person id or account)"),
    "person.f.fields": ("字段（逗号分隔）", "Fields (comma separated)"),
    "person.f.properties": ("其他属性（每行 名称=值；action. 开头为操作属性）",
                            "Other properties (one name=value a line; action.* for the action's)"),
    "person.f.ask": ("解释", "Explain"),
    "person.answer": ("结论", "Answer"),
    "person.allowed": ("允许", "Allowed"),
    "person.denied": ("拒绝", "Denied"),
    "person.code": ("原因代码", "Reason code"),
    "person.decided_by": ("决定规则", "Decided by"),
    "person.no_rule": ("无匹配的允许规则（默认拒绝）", "No rule allowed it (denied by default)"),
    "person.fields": ("字段可见性", "Field visibility"),
    "person.rules": ("候选规则", "Candidate rules"),
    "person.grants_here": ("授权是否覆盖该记录", "Whether each grant covers the record"),
    "person.detail": ("说明", "Detail"),
    "person.usage": ("使用情况（近 {days} 天，按周）", "Use over the last {days} days, by week"),
    "person.usage_desc": ("柱状图：每周关于此人的授权决策数", "Bar chart: decisions about this person each week"),
    "person.usage_totals": ("按资源与操作汇总（审计使用的统计）", "By resource and action (the audit's usage data)"),
    "person.no_usage": ("没有使用记录。", "No recorded use."),
    "person.findings": ("审计发现", "Findings"),
    "person.no_findings": ("没有关于此人的审计发现。", "No findings about this person."),
    "person.findings_total": ("共 {n} 条", "{n} in all"),
    "person.lp": ("最小权限建议", "Least-privilege proposal"),
    "person.lp_intro": ("根据近 {days} 天的实际使用：仅由某授权提供且未使用的权限建议撤销；"
                        "特权角色只用到普通部分的建议缩减。",
                        "From the use in the last {days} days: a grant whose own permissions went unused is "
                        "proposed for revocation; a privileged one used only for its ordinary part, for reduction."),
    "person.lp_missing": ("无法生成建议（该人员不在审计范围内）。",
                          "No proposal (the person is not in the audit's view)."),
    "person.lp_load": ("根据实际使用生成建议", "Work out a proposal from actual use"),
    "person.lp_load_note": ("生成建议需读取本次审计范围内全部人员的使用数据，可能需要数秒。",
                            "This reads the usage of everyone in the audit's scope and may take a few seconds."),
    "person.lp_none_proposed": ("没有可撤销或缩减的授权。", "Nothing to revoke or reduce."),
    "person.lp_apply": ("执行所选建议", "Apply to the selected grants"),
    "person.lp_used": ("窗口内使用过的权限", "Permissions used in the window"),
    "person.account_status.active": ("启用", "Enabled"),
    "person.account_status.disabled": ("已停用", "Disabled"),
    "person.link_state.auto": ("自动关联", "Linked automatically"),
    "person.link_state.confirmed": ("已确认", "Confirmed"),
    "person.link_state.broken": ("关联失效", "Broken"),
    "person.link_method.employee_no": ("按工号", "by employee no."),
    "person.link_method.mobile": ("按手机号", "by mobile"),
    "person.link_method.email": ("按邮箱", "by email"),
    "person.link_method.created": ("同步时新建", "created by the sync"),
    "person.link_method.admin": ("管理员关联", "by an administrator"),
    "person.link_method.demo": ("演示数据", "demo data"),
    "person.effect.allow": ("允许", "Allow"),
    "person.effect.deny": ("拒绝", "Deny"),
    "person.scope.all": ("全部记录", "All records"),
    "person.scope.own": ("本人负责的记录", "Own records"),
    "person.scope.dept": ("本部门", "Own department"),
    "person.scope.tree": ("本部门及下级", "Own department and below"),
})
