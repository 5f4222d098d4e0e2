"""The console's policy pages: versions, a version's files, the diff of two, and changes and rollbacks that
show their impact (who gains and loses what) before they go live through the same service as the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.console import policy_data as data
from app.console.i18n import add_words
from app.console.web import Form, Viewer, db_id, guard, guard_form, may, not_found, page, redirect
from app.errors import AccessGovError, NotFound

router = APIRouter()
TARGET = "policy"


@router.get("/policy")
def versions(request: Request, saved: str = "") -> Response:
    viewer = guard(request, "view_policy", TARGET)
    if isinstance(viewer, Response):
        return viewer
    return _index(request, viewer, saved=saved == "1")


def _index(request: Request, viewer: Viewer, status: int = 200, *, saved: bool = False,
           error: AccessGovError | None = None, form: dict[str, str] | None = None) -> Response:
    rows = data.version_rows(request.app.state.services)
    return page(request, viewer, "policy_versions.html", status, nav="policy", versions=rows, saved=saved,
                may_change=may(request, viewer, "change_policy", TARGET), error=error.message if error else "",
                details=_details(error), form=form or {},
                diff_from=rows[1]["id"] if len(rows) > 1 else (rows[0]["id"] if rows else ""),
                diff_to=rows[0]["id"] if rows else "")


@router.get("/policy/versions/{version_id}")
def version(request: Request, version_id: str) -> Response:
    viewer = guard(request, "view_policy", TARGET)
    if isinstance(viewer, Response):
        return viewer
    number = db_id(version_id)
    if number is None:
        return not_found(request, viewer)
    try:
        found = data.version_files(request.app.state.services, number)
    except NotFound:
        return not_found(request, viewer)
    files = [(name, found["files"][name]) for name in sorted(found["files"])]
    return page(request, viewer, "policy_version.html", nav="policy", v=found, files=files)


@router.get("/policy/diff")
def diff(request: Request, from_: Annotated[str, Query(alias="from")] = "", to: str = "") -> Response:
    viewer = guard(request, "view_policy", TARGET)
    if isinstance(viewer, Response):
        return viewer
    old_id, new_id = db_id(from_), db_id(to)
    if old_id is None or new_id is None:
        return page(request, viewer, "policy_diff.html", 422, nav="policy", error="policy.err.bad_ids", files=[],
                    old=None, new=None)
    services = request.app.state.services
    try:
        old, new = data.version_files(services, old_id), data.version_files(services, new_id)
    except NotFound:
        return not_found(request, viewer)
    return page(request, viewer, "policy_diff.html", nav="policy", error="", old=old, new=new,
                files=data.file_diffs(old["files"], new["files"]))


@router.post("/policy/preview")
def preview(request: Request, form: Form) -> Response:
    viewer = guard_form(request, form, "change_policy", TARGET)
    if isinstance(viewer, Response):
        return viewer
    try:
        add, remove, reason = data.read_change(form)
        found = data.preview_change(request.app.state.services, add, remove)
    except AccessGovError as exc:
        return _index(request, viewer, exc.status if exc.status in (409, 422) else 422, error=exc, form=form)
    return page(request, viewer, "policy_preview.html", nav="policy", kind="change", p=found, reason=reason)


@router.post("/policy/apply")
def apply(request: Request, form: Form) -> Response:
    viewer = guard_form(request, form, "change_policy", TARGET)
    if isinstance(viewer, Response):
        return viewer
    services = request.app.state.services
    try:
        add, remove, reason = data.read_change(form)
        data.check_base(services, form.get("base", ""))
        services.policy.change_rules(actor=viewer.person_id, reason=reason, add=add, remove=remove)
    except AccessGovError as exc:
        return _index(request, viewer, 409 if exc.status == 409 else 422, error=exc, form=form)
    return redirect(viewer, "/console/policy?saved=1")


@router.get("/policy/rollback-preview")
def rollback_preview(request: Request, to: str = "") -> Response:
    viewer = guard(request, "change_policy", TARGET)
    if isinstance(viewer, Response):
        return viewer
    number = db_id(to)
    if number is None:
        return _index(request, viewer, 422, error=AccessGovError("policy.err.bad_ids"))
    try:
        found = data.preview_rollback(request.app.state.services, number)
    except NotFound:
        return not_found(request, viewer)
    except AccessGovError as exc:
        return _index(request, viewer, 409 if exc.status == 409 else 422, error=exc)
    return page(request, viewer, "policy_preview.html", nav="policy", kind="rollback", p=found, to=number, reason="")


@router.post("/policy/rollback")
def rollback(request: Request, form: Form) -> Response:
    viewer = guard_form(request, form, "change_policy", TARGET)
    if isinstance(viewer, Response):
        return viewer
    services = request.app.state.services
    number = db_id(form.get("to", ""))
    if number is None:
        return _index(request, viewer, 422, error=AccessGovError("policy.err.bad_ids"))
    try:
        reason = data.read_reason(form.get("reason", ""))
        data.check_base(services, form.get("base", ""))
        services.policy.rollback(actor=viewer.person_id, reason=reason, to_version=number)
    except NotFound:
        return not_found(request, viewer)
    except AccessGovError as exc:
        return _index(request, viewer, 409 if exc.status == 409 else 422, error=exc)
    return redirect(viewer, "/console/policy?saved=1")




def _details(error: AccessGovError | None) -> list[str]:
    details: Any = error.details if error else None
    return [str(d) for d in details] if isinstance(details, list) else []


add_words({
    "policy.title": ("策略版本", "Policy versions"),
    "policy.intro": ("每次变更或回滚都会生成一个新版本，并记录操作人和原因；最新版本即当前生效的策略。",
                     "Every change or rollback makes a new version, recorded with who and why; the newest is "
                     "the policy in force."),
    "policy.col.created": ("创建时间", "Created"),
    "policy.col.author": ("操作人", "By"),
    "policy.col.reason": ("原因", "Reason"),
    "policy.col.current": ("状态", "State"),
    "policy.col.actions": ("操作", "Actions"),
    "policy.current": ("当前生效", "In force"),
    "policy.view": ("查看", "View"),
    "policy.diff_parent": ("与上一版比较", "Compare with previous"),
    "policy.rollback": ("回滚到此版本…", "Roll back to this…"),
    "policy.none": ("尚无策略版本。", "No policy version yet."),
    "policy.saved": ("策略已生效。", "The policy is in force."),
    "policy.refused": ("未生效：", "Not applied: "),
    "policy.diff.title": ("版本比较", "Compare versions"),
    "policy.diff.from": ("原版本", "From version"),
    "policy.diff.to": ("新版本", "To version"),
    "policy.diff.show": ("比较", "Compare"),
    "policy.diff.heading": ("版本 #{old} → #{new}", "Version #{old} → #{new}"),
    "policy.diff.unchanged": ("无变化", "unchanged"),
    "policy.diff.counts": ("+{added} / −{removed} 行", "+{added} / −{removed} lines"),
    "policy.diff.cut": ("另有 {n} 行未显示。", "{n} more lines not shown."),
    "policy.diff.none": ("两个版本内容相同。", "The two versions have the same contents."),
    "policy.back": ("返回策略版本", "Back to the policy versions"),
    "policy.version.title": ("策略版本 #{id}", "Policy version #{id}"),
    "policy.version.parent": ("上一版本", "Previous version"),
    "policy.version.digest": ("摘要", "Digest"),
    "policy.version.files": ("策略文件", "Policy files"),
    "policy.change.title": ("变更策略", "Change the policy"),
    "policy.change.intro": ("按行添加或删除策略（p、g、p2 行，每行一条，格式同 rules.csv / field_rules.csv）。"
                            "提交后先显示影响预览，确认后才生效。",
                            "Add or remove policy lines (p, g or p2, one per line, as in rules.csv / "
                            "field_rules.csv). You will see the impact first; nothing goes live until you confirm."),
    "policy.change.add": ("要添加的行", "Lines to add"),
    "policy.change.remove": ("要删除的行", "Lines to remove"),
    "policy.change.reason": ("原因（必填，如工单号）", "Reason (required, e.g. the ticket)"),
    "policy.change.submit": ("预览影响", "Preview the impact"),
    "policy.preview.title": ("变更影响预览", "Impact of the change"),
    "policy.preview.rollback_title": ("回滚影响预览：回到版本 #{id}", "Impact of rolling back to version #{id}"),
    "policy.preview.not_live": ("以下为预览，尚未生效。确认后才会生效。",
                                "This is a preview; nothing is in force until you confirm."),
    "policy.preview.base": ("基于当前版本 #{id} 计算", "Computed on the version in force, #{id}"),
    "policy.preview.lines": ("变更的策略行", "Lines changed"),
    "policy.preview.no_lines": ("没有策略行变化。", "No policy line changes."),
    "policy.preview.roles": ("涉及角色", "Roles named"),
    "policy.preview.checked": ("已比对持有相关角色的 {n} 人", "Compared {n} people holding those roles"),
    "policy.preview.gains": ("获得的权限", "Permissions gained"),
    "policy.preview.losses": ("失去的权限", "Permissions lost"),
    "policy.preview.count": ("{rows} 项，涉及 {people} 人", "{rows} in all, {people} people"),
    "policy.preview.capped": ("仅显示前 {shown} 项。", "Only the first {shown} are shown."),
    "policy.preview.none_gained": ("无人获得新权限。", "Nobody gains a permission."),
    "policy.preview.none_lost": ("无人失去权限。", "Nobody loses a permission."),
    "policy.preview.confirm": ("确认生效", "Confirm and apply"),
    "policy.preview.confirm_rollback": ("确认回滚", "Confirm the rollback"),
    "policy.preview.cancel": ("取消", "Cancel"),
    "policy.preview.reason": ("原因", "Reason"),
    "policy.col.department": ("部门", "Department"),
    "policy.col.type": ("资源类型", "Resource type"),
    "policy.col.action": ("操作", "Action"),
    "policy.col.effect": ("效果 / 字段级别", "Effect / field level"),
    "policy.col.scope": ("数据范围", "Data scope"),
    "policy.col.condition": ("条件", "Condition"),
    "policy.col.area": ("适用部门", "Where"),
    "policy.col.role": ("通过角色", "Through role"),
    "policy.err.no_lines": ("请至少填写一条要添加或删除的策略行。", "Give at least one line to add or remove."),
    "policy.err.too_many": ("一次最多添加或删除 1000 行。", "At most 1,000 lines to add or to remove at a time."),
    "policy.err.reason": ("请填写原因。", "A reason is required."),
    "policy.err.reason_long": ("原因最多 2000 字。", "The reason may be 2,000 characters at most."),
    "policy.err.bad_ids": ("版本号无效。", "Not a valid version number."),
    "policy.err.moved": ("预览之后策略已被他人修改，未做任何更改。请重新预览。",
                         "The policy changed after your preview; nothing was changed. Preview again."),
})
