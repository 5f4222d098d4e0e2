"""The console's identity sync pages: sources and runs, a run (confirm a held one), conflicts, orphan accounts."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.console import sync_data
from app.console.i18n import add_words, t
from app.console.web import Form, Viewer, db_id, guard, guard_form, may, not_found, page, redirect
from app.errors import AccessGovError, Conflict, NotFound

router = APIRouter()
SOURCE_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
CONFLICT_LIMIT = 200

add_words({
    "sync.title": ("身份同步", "Identity sync"),
    "sync.tab.overview": ("数据源与运行记录", "Sources and runs"),
    "sync.tab.conflicts": ("属性冲突", "Conflicts"),
    "sync.tab.orphans": ("孤立账号", "Orphan accounts"),
    "sync.sources": ("数据源", "Sources"),
    "sync.no_sources": ("尚未配置任何数据源（policies/sync/sources.yaml）。",
                        "No source is configured (policies/sync/sources.yaml)."),
    "sync.runs": ("最近的同步运行", "Recent sync runs"),
    "sync.no_runs": ("还没有同步运行记录。", "No sync has run yet."),
    "sync.col.kind": ("类别", "Kind"),
    "sync.col.connector": ("连接器", "Connector"),
    "sync.col.health": ("健康状况", "Health"),
    "sync.col.action": ("操作", "Action"),
    "sync.col.trigger": ("触发方式", "Trigger"),
    "sync.col.started": ("开始时间", "Started"),
    "sync.col.finished": ("结束时间", "Finished"),
    "sync.col.counts": ("变更统计", "Counts"),
    "sync.col.message": ("说明", "Message"),
    "sync.col.attribute": ("属性", "Attribute"),
    "sync.col.master": ("主数据源的值（保留）", "Master's value (kept)"),
    "sync.col.other": ("其他数据源的值", "Other source's value"),
    "sync.col.account": ("账号", "Account"),
    "sync.col.account_name": ("账号名称", "Account name"),
    "sync.col.last_login": ("最近登录", "Last sign-in"),
    "sync.col.why": ("原因", "Why"),
    "sync.col.finding": ("审计发现", "Finding"),
    "sync.col.key": ("记录", "Record"),
    "sync.run_now": ("立即同步", "Pull now"),
    "sync.run_now_label": ("立即从 {source} 拉取", "Pull {source} now"),
    "sync.push_only": ("仅接收推送", "Push only"),
    "sync.every": ("每 {n} 分钟", "every {n} min"),
    "sync.on_demand": ("按需", "on demand"),
    "sync.health.ok": ("正常", "OK"),
    "sync.health.never": ("从未运行", "Never run"),
    "sync.health.running": ("运行中", "Running"),
    "sync.health.held": ("待确认", "Awaiting confirmation"),
    "sync.health.failing": ("最近一次失败", "Last run failed"),
    "sync.health.stale": ("已逾期未同步", "Overdue"),
    "sync.status.confirmed": ("已确认", "Confirmed"),
    "sync.status.discarded": ("已放弃", "Discarded"),
    "sync.trigger.schedule": ("定时", "Scheduled"),
    "sync.trigger.manual": ("手动", "Manual"),
    "sync.trigger.push": ("推送", "Push"),
    "sync.trigger.events": ("增量事件", "Events"),
    "sync.trigger.confirm": ("确认后应用", "Confirmed"),
    "sync.trigger.cli": ("命令行", "Command line"),
    "sync.run.title": ("同步运行 #{id}", "Sync run #{id}"),
    "sync.run.back": ("返回身份同步", "Back to identity sync"),
    "sync.run.errors": ("未能应用的记录", "Records not applied"),
    "sync.run.no_errors": ("所有记录均已处理。", "Every record was handled."),
    "sync.run.no_counts": ("无", "None"),
    "sync.run.version": ("版本", "Version"),
    "sync.run.held": ("此次同步将停用较多账号，已暂停等待确认。确认后作为一次新的运行应用；放弃则不做任何更改。",
                      "This sync would disable many accounts and is held for confirmation. Applying it makes a new "
                      "run; discarding it changes nothing."),
    "sync.run.apply": ("确认并应用", "Apply it"),
    "sync.run.discard": ("放弃此次同步", "Discard it"),
    "sync.saved": ("已完成。", "Done."),
    "sync.bad_choice": ("请选择应用或放弃。", "Choose to apply or to discard."),
    "sync.need_reason": ("请填写原因（最多 2000 字）。", "Give a reason (at most 2,000 characters)."),
    "sync.run.reason": ("原因（记入同步记录）", "Reason (kept with the run)"),
    "sync.refused": ("未完成：", "Not done: "),
    "sync.conflicts.title": ("属性冲突", "Attribute conflicts"),
    "sync.conflicts.intro": ("各数据源对同一人员属性的取值不一致；以主数据源为准，其他数据源的值仅作记录。",
                             "Sources disagree on a person's attribute; the master's value is kept, the other "
                             "source's is recorded."),
    "sync.conflicts.none": ("没有未解决的冲突。", "No open conflicts."),
    "sync.orphans.title": ("孤立账号", "Orphan accounts"),
    "sync.orphans.intro": ("处于启用状态、但不属于任何在职人员的账号：未关联人员、关联已被解除，或其人员已离职或停用。",
                           "Active accounts that belong to no active person: linked to nobody, their link broken, "
                           "or their person left or disabled."),
    "sync.orphans.none": ("没有孤立账号。", "No orphan accounts."),
    "sync.orphans.total": ("共 {n} 个（最多显示 {limit} 个）", "{n} in all (at most {limit} shown)"),
    "sync.why.unlinked": ("未关联人员", "Linked to nobody"),
    "sync.why.link_broken": ("关联已解除", "Link broken"),
    "sync.why.person_left": ("人员已离职", "Person left"),
    "sync.why.person_disabled": ("人员已停用", "Person disabled"),
    "sync.attr.people": ("人员", "People"),
    "sync.attr.status": ("在职状态", "Status"),
    "sync.attr.name": ("姓名", "Name"),
    "sync.attr.department": ("部门", "Department"),
    "sync.attr.manager": ("直属上级", "Manager"),
    "sync.attr.position": ("职位", "Position"),
    "sync.attr.mobile": ("手机号", "Mobile"),
    "sync.attr.email": ("邮箱", "Email"),
    "sync.attr.employee_no": ("工号", "Employee no."),
})


@router.get("/sync")
def sync_index(request: Request) -> Response:
    viewer = guard(request, "view_sync", "sync")
    if isinstance(viewer, Response):
        return viewer
    return _index(request, viewer)


def _index(request: Request, viewer: Viewer, *, error: str = "", status: int = 200) -> Response:
    services = request.app.state.services
    runs = services.sync.list_runs(None, sync_data.RUN_LIMIT) if services.sync is not None else []
    return page(request, viewer, "sync_index.html", status, nav="sync", tab="overview",
                sources=sync_data.source_rows(services), runs=sync_data.run_rows(runs),
                may_manage=may(request, viewer, "manage_sync", "sync"), error=error)


@router.post("/sync/sources/{source}/run")
def run_source(request: Request, source: str, form: Form) -> Response:
    viewer = guard_form(request, form, "manage_sync", f"sync:{source[:64]}")
    if isinstance(viewer, Response):
        return viewer
    sync = request.app.state.services.sync
    if sync is None or not SOURCE_NAME.match(source):
        return not_found(request, viewer)
    try:
        run = sync.run(source, trigger="manual", actor=viewer.person_id)
    except NotFound:
        return not_found(request, viewer)
    except Conflict as exc:
        return _index(request, viewer, error=exc.message, status=409)
    except AccessGovError as exc:  # no pull connector here, credentials missing, ...
        return _index(request, viewer, error=exc.message, status=422)
    return redirect(viewer, f"/console/sync/runs/{run['id']}?saved=1")


@router.get("/sync/runs/{run_id}")
def sync_run(request: Request, run_id: str, saved: int = 0) -> Response:
    viewer = guard(request, "view_sync", f"sync:run:{run_id[:20]}")
    if isinstance(viewer, Response):
        return viewer
    return _run_page(request, viewer, run_id, saved=bool(saved))


def _run_page(request: Request, viewer: Viewer, run_id: str, *, saved: bool = False, error: str = "",
              status: int = 200) -> Response:
    sync = request.app.state.services.sync
    number = db_id(run_id)
    if sync is None or number is None:
        return not_found(request, viewer)
    try:
        run = sync.get_run(number)
    except NotFound:
        return not_found(request, viewer)
    may_confirm = run["status"] == "held" and may(request, viewer, "manage_sync", f"sync:run:{number}")
    return page(request, viewer, "sync_run.html", status, nav="sync", tab="overview",
                run=sync_data.run_rows([run])[0], may_confirm=may_confirm, saved=saved, error=error)


@router.post("/sync/runs/{run_id}/confirm")
def confirm_run(request: Request, run_id: str, form: Form) -> Response:
    viewer = guard_form(request, form, "manage_sync", f"sync:run:{run_id[:20]}")
    if isinstance(viewer, Response):
        return viewer
    sync = request.app.state.services.sync
    number = db_id(run_id)
    if sync is None or number is None:
        return not_found(request, viewer)
    choice = form.get("apply", "")
    if choice not in ("1", "0"):
        return _run_page(request, viewer, run_id, error=t("sync.bad_choice", viewer.lang), status=422)
    reason = form.get("reason", "").strip()
    if not reason or len(reason) > 2000:
        return _run_page(request, viewer, run_id, error=t("sync.need_reason", viewer.lang), status=422)
    try:
        run = sync.confirm(number, actor=viewer.person_id, apply=choice == "1", reason=reason)
    except NotFound:
        return not_found(request, viewer)
    except AccessGovError as exc:  # no longer held, another run of the source in progress
        return _run_page(request, viewer, run_id, error=exc.message, status=409)
    return redirect(viewer, f"/console/sync/runs/{run['id']}?saved=1")


@router.get("/sync/conflicts")
def sync_conflicts(request: Request) -> Response:
    viewer = guard(request, "view_sync", "sync:conflicts")
    if isinstance(viewer, Response):
        return viewer
    sync = request.app.state.services.sync
    found = sync.list_conflicts(open_only=True, person_id=None, limit=CONFLICT_LIMIT) if sync is not None else []
    return page(request, viewer, "sync_conflicts.html", nav="sync", tab="conflicts",
                conflicts=sync_data.conflict_rows(found))


@router.get("/sync/orphans")
def sync_orphans(request: Request) -> Response:
    viewer = guard(request, "view_sync", "sync:orphans")
    if isinstance(viewer, Response):
        return viewer
    return page(request, viewer, "sync_orphans.html", nav="sync", tab="orphans",
                orphans=sync_data.orphan_rows(request.app.state.services),
                may_findings=may(request, viewer, "view_findings", "findings"))


