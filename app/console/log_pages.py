"""The auditor's pages: the decision log (search, one record) and the audit trail (state, verify). Reading only:
the console offers no way to edit, delete or purge either."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.console import log_data
from app.console.i18n import add_words
from app.console.web import guard, not_found, page

router = APIRouter()

add_words({
    "log.title": ("决策日志", "Decision log"),
    "log.intro": ("每一次访问决策（包括控制台自身的授权判断）都记录在此，并封存进防篡改审计记录。",
                  "Every access decision (the console's own included) is recorded here and sealed into the "
                  "tamper-evident audit trail."),
    "log.search": ("查询条件", "Search"),
    "log.person": ("人员编号", "Person ID"),
    "log.resource_type": ("资源类型", "Resource type"),
    "log.resource_id": ("资源编号", "Resource ID"),
    "log.system": ("系统", "System"),
    "log.action": ("操作", "Action"),
    "log.effect": ("结果", "Effect"),
    "log.effect.any": ("全部", "Any"),
    "log.effect.allow": ("允许", "Allowed"),
    "log.effect.deny": ("拒绝", "Denied"),
    "log.from": ("起始时间", "From"),
    "log.to": ("截止时间（含）", "To (inclusive)"),
    "log.size": ("每页条数", "Per page"),
    "log.time_hint": ("时间按 {tz} 时区理解；只填日期时，截止时间包含当天全天。",
                      "Times are read in the {tz} time zone; a date alone as the end includes that whole day."),
    "log.apply": ("查询", "Search"),
    "log.reset": ("清除条件", "Clear"),
    "log.none": ("没有符合条件的决策记录。", "No decision matches."),
    "log.shown": ("本页 {n} 条，按时间倒序。", "{n} on this page, newest first."),
    "log.first": ("第一页", "First page"),
    "log.next": ("下一页", "Next"),
    "log.col.time": ("时间", "Time"),
    "log.col.person": ("人员", "Person"),
    "log.col.resource": ("资源", "Resource"),
    "log.col.reason": ("原因", "Reason"),
    "log.col.record": ("记录", "Record"),
    "log.details": ("详情", "Details"),
    "log.refused": ("查询条件有误：", "The search is not valid: "),
    "log.bad.too_long": ("{field}过长。", "{field} is too long."),
    "log.bad.text": ("{field}含有控制字符。", "{field} contains control characters."),
    "log.bad.system": ("系统代码只能由小写字母、数字和下划线组成。",
                       "A system code is lower-case letters, digits and underscores."),
    "log.bad.effect": ("结果只能是全部、允许或拒绝。", "The effect must be any, allow or deny."),
    "log.bad.time": ("{field}的格式应为 YYYY-MM-DD 或 YYYY-MM-DDTHH:MM。",
                     "{field} must be YYYY-MM-DD or YYYY-MM-DDTHH:MM."),
    "log.bad.range": ("截止时间须晚于起始时间。", "The end must be after the start."),
    "log.bad.cursor": ("翻页位置无效，请从第一页重新查询。",
                       "The page position is not valid; search again from the first page."),
    "log.bad.size": ("每页条数应为正整数。", "Per page must be a positive whole number."),
    "log.record.title": ("决策记录", "Decision record"),
    "log.record.back": ("返回决策日志", "Back to the decision log"),
    "log.record.id": ("决策编号", "Decision ID"),
    "log.record.caller": ("调用方", "Caller"),
    "log.record.subject": ("主体", "Subject"),
    "log.record.policy_version": ("策略版本", "Policy version"),
    "log.record.reason_code": ("决策原因", "Reason"),
    "log.record.reason": ("决策依据", "Grounds"),
    "log.record.fields": ("字段可见性", "Field visibility"),
    "log.record.field": ("字段", "Field"),
    "log.record.level": ("可见性", "Visibility"),
    "log.record.seal": ("封存于审计记录", "Sealed in the audit trail"),
    "log.record.seal_entry": ("第 {seq} 条", "entry {seq}"),
    "log.record.unsealed": ("尚未封存（写入中）", "not sealed yet (being written)"),
    "log.record.same_person": ("此人的全部决策", "All decisions about this person"),
    "log.record.same_resource": ("此资源的全部决策", "All decisions about this resource"),
    "log.record.not_stored": ("决策日志不保存请求上下文和耗时；原因、规则与授权依据如上。",
                              "The decision log does not keep the request's context or its latency; the reason, "
                              "rule and grant are above."),
    "log.level.visible": ("可见", "visible"),
    "log.level.masked": ("脱敏", "masked"),
    "log.level.hidden": ("隐藏", "hidden"),
    "trail.title": ("审计记录", "Audit trail"),
    "trail.intro": ("决策、策略变更、审计运行、发现处理和复核决定都按写入顺序封存进一条 SHA-256 哈希链；"
                    "校验会逐条重算，指出被修改、删除、插入或调换顺序的记录。",
                    "Decisions, policy changes, audit runs, finding decisions and review decisions are sealed in "
                    "the order written into one SHA-256 hash chain; verifying recomputes it and names any record "
                    "edited, deleted, inserted or reordered."),
    "trail.state": ("当前状态", "State"),
    "trail.kind": ("记录类型", "Kind of record"),
    "trail.entries": ("封存条目", "Entries"),
    "trail.records": ("封存记录", "Records sealed"),
    "trail.total": ("合计", "In all"),
    "trail.empty": ("审计记录尚无条目。", "The trail holds no entry yet."),
    "trail.last": ("最近封存", "Last sealed"),
    "trail.last_entry": ("第 {seq} 条（{kind}），{at}", "entry {seq} ({kind}), {at}"),
    "trail.head": ("链头哈希", "Head hash"),
    "trail.retained_from": ("保留起点", "Retained from"),
    "trail.anchor": ("请将链头哈希另行保存（如工单、日志）：整条链从某处起被重写，只能与外部保存的哈希比对发现。",
                     "Keep the head hash somewhere else (a ticket, a log): a chain rewritten whole from some "
                     "entry on is caught only against such an outside copy."),
    "trail.verify": ("校验完整性", "Verify integrity"),
    "trail.verify_hint": ("只读操作：重算哈希链和每条封存记录，不改变任何数据。",
                          "Reading only: recomputes the chain and every sealed record; changes nothing."),
    "trail.verify_run": ("立即校验", "Verify now"),
    "trail.ok": ("完整：哈希链和全部封存记录均未被篡改。", "Intact: the chain and every sealed record match."),
    "trail.broken": ("发现 {n} 处不一致：", "{n} problem(s) found:"),
    "trail.more": ("另有 {n} 处未列出。", "and {n} more not listed."),
    "trail.not_run": ("校验未能运行（数据库不可用？），请联系系统管理员并用命令行 accessgov audit verify 复查。",
                      "The verification could not run (is the database reachable?); ask the system administrator "
                      "to check with `accessgov audit verify`."),
    "trail.checked": ("已校验 {entries} 个条目、{records} 条记录，用时 {seconds} 秒。",
                      "{entries} entries and {records} records checked in {seconds} s."),
    "trail.col.table": ("数据表", "Table"),
    "trail.col.record": ("记录", "Record"),
    "trail.col.entry": ("条目", "Entry"),
    "trail.col.what": ("问题", "Problem"),
    "trail.no_delete": ("控制台不能删除、清空或修改审计记录和决策日志，任何职责都不能。超过保留期（至少 180 天）的"
                        "清理只能由系统管理员在服务器上用命令行执行，清理本身也会记入审计记录。",
                        "Nobody can delete, empty or edit the audit trail or the decision log from the console, "
                        "whatever their duty. Records past their retention (at least 180 days) are purged only "
                        "from the server's command line, and the purge itself is recorded in the trail."),
    "trail.kind.decisions": ("访问决策", "Decisions"),
    "trail.kind.change": ("策略与授权变更", "Policy and grant changes"),
    "trail.kind.audit_run": ("审计运行", "Audit runs"),
    "trail.kind.finding_event": ("发现处理", "Finding decisions"),
    "trail.kind.review": ("复核决定", "Review decisions"),
    "trail.kind.retention": ("保留期清理", "Retention purges"),
})


@router.get("/decisions")
def decisions(request: Request) -> Response:
    viewer = guard(request, "view_decision_log", "decisions")
    if isinstance(viewer, Response):
        return viewer
    services = request.app.state.services
    tz = viewer.rt.settings.timezone
    context: dict[str, Any] = {"nav": "decisions", "tz_name": tz, "systems": log_data.known_systems(services),
               "types": log_data.known_types(services), "effects": log_data.EFFECTS,
               "max_size": log_data.MAX_PAGE_SIZE}
    try:
        query = log_data.parse_query(request.query_params, tz)
        found = log_data.search_decisions(services.factory, query)
    except log_data.BadQuery as exc:
        form = {k: str(request.query_params.get(k, "")) for k in log_data.QUERY_FIELDS}
        return page(request, viewer, "log_decisions.html", 422, form=form, error=exc, found=None, **context)
    return page(request, viewer, "log_decisions.html", form=query.form, found=found, error=None,
                first=query.link() if query.after else None,
                next=query.link(after=found.next_after) if found.next_after else None, **context)


@router.get("/decisions/{decision_id}")
def decision(request: Request, decision_id: str) -> Response:
    viewer = guard(request, "view_decision_log", f"decision:{decision_id}")
    if isinstance(viewer, Response):
        return viewer
    record = log_data.get_decision(request.app.state.services.factory, decision_id)
    if record is None:
        return not_found(request, viewer)
    return page(request, viewer, "log_decision.html", nav="decisions", d=record)


@router.get("/trail")
def audit_trail(request: Request, verify: str = "") -> Response:
    viewer = guard(request, "view_trail", "trail")
    if isinstance(viewer, Response):
        return viewer
    engine = request.app.state.services.factory.kw["bind"]
    checked = log_data.verify_trail(engine) if verify == "1" else None
    return page(request, viewer, "log_trail.html", nav="trail", state=log_data.trail_state(engine), checked=checked)
