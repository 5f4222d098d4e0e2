"""The console's report pages: audit runs and review campaigns, each downloadable as HTML, CSV, XLSX or PDF in
either language, and as an evidence pack; the files are the API's own (the same service functions)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.audits.router import file_response
from app.console import service
from app.console.i18n import LANGS, add_words, t
from app.console.web import Viewer, db_id, guard, not_found, page
from app.errors import NotFound

router = APIRouter()
FORMATS = ("html", "csv", "xlsx", "pdf")
KINDS = {"runs": "run", "campaigns": "campaign"}  # path segment: the audit service's report kind
RUN_LIMIT = 100

add_words({
    "report.title": ("报告", "Reports"),
    "report.intro": ("下载审计运行和复核活动的报告。HTML、CSV、XLSX、PDF 与 API 生成的文件相同；"
                     "证据包含两种语言的全部格式、数据与审计记录校验结果，附 SHA-256 清单。",
                     "Download the reports of audit runs and review campaigns. HTML, CSV, XLSX and PDF are the files "
                     "the API makes; an evidence pack holds every format in both languages, the data and the audit "
                     "trail's verification, with a SHA-256 manifest."),
    "report.lang": ("报告语言", "Report language"),
    "report.lang.zh-CN": ("中文", "Chinese"),
    "report.lang.en": ("英文", "English"),
    "report.apply": ("应用", "Apply"),
    "report.runs": ("审计运行", "Audit runs"),
    "report.campaigns": ("复核活动", "Review campaigns"),
    "report.no_runs": ("还没有审计运行。", "The audit has not run yet."),
    "report.no_campaigns": ("还没有复核活动。", "No review campaign yet."),
    "report.col.quarter": ("季度", "Quarter"),
    "report.col.started": ("开始时间", "Started"),
    "report.col.trigger": ("触发方式", "Trigger"),
    "report.col.launched": ("发起时间", "Launched"),
    "report.col.downloads": ("下载", "Downloads"),
    "report.format.html": ("HTML", "HTML"),
    "report.format.csv": ("CSV", "CSV"),
    "report.format.xlsx": ("Excel", "Excel"),
    "report.format.pdf": ("PDF", "PDF"),
    "report.pack": ("证据包", "Evidence pack"),
    "report.download": ("下载 {what}：{name}", "Download {what}: {name}"),
    "report.bad_format": ("不支持的格式“{value}”，可选：html、csv、xlsx、pdf。",
                          "Unsupported format \"{value}\"; choose html, csv, xlsx or pdf."),
    "report.bad_lang": ("不支持的语言“{value}”，可选：zh-CN、en。",
                        "Unsupported language \"{value}\"; choose zh-CN or en."),
    "report.run_status.done": ("已完成", "Done"),
    "report.run_status.running": ("运行中", "Running"),
    "report.run_status.failed": ("失败", "Failed"),
    "report.campaign_status.active": ("进行中", "In progress"),
    "report.campaign_status.closed": ("已结束", "Closed"),
})


@router.get("/reports")
def reports(request: Request, lang: str = "") -> Response:
    viewer = guard(request, "view_reports", "reports")
    if isinstance(viewer, Response):
        return viewer
    return _index(request, viewer, lang=lang)


def _index(request: Request, viewer: Viewer, *, lang: str = "", error: str = "", status: int = 200) -> Response:
    audit = request.app.state.services.audit
    runs = [r | {"started_at": service.parse_time(r.get("started_at"))} for r in audit.list_runs(RUN_LIMIT)]
    campaigns = [c | {"launched_at": service.parse_time(c.get("launched_at")),
                      "due_at": service.parse_time(c.get("due_at"))} for c in audit.list_campaigns()]
    return page(request, viewer, "report_index.html", status, nav="reports", runs=runs, campaigns=campaigns,
                report_lang=lang if lang in LANGS else viewer.lang, langs=LANGS, formats=FORMATS, error=error)


@router.get("/reports/{kind}/{ref}")
def report_file(request: Request, kind: str, ref: str, format: str = "html", lang: str = "") -> Response:
    viewer = guard(request, "view_reports", f"report:{KINDS.get(kind, kind)[:16]}:{ref[:20]}")
    if isinstance(viewer, Response):
        return viewer
    number = db_id(ref)
    if kind not in KINDS or number is None:
        return not_found(request, viewer)
    lang = lang or viewer.lang
    if format not in FORMATS:
        return _index(request, viewer, error=t("report.bad_format", viewer.lang, value=format[:20]), status=422)
    if lang not in LANGS:
        return _index(request, viewer, error=t("report.bad_lang", viewer.lang, value=lang[:20]), status=422)
    try:
        body, media, name = request.app.state.services.audit.report(KINDS[kind], number, fmt=format, lang=lang)
    except NotFound:
        return not_found(request, viewer)
    return _attachment(viewer, body, media, name)


@router.get("/reports/{kind}/{ref}/evidence-pack")
def evidence_pack(request: Request, kind: str, ref: str) -> Response:
    viewer = guard(request, "view_reports", f"report:{KINDS.get(kind, kind)[:16]}:{ref[:20]}:evidence-pack")
    if isinstance(viewer, Response):
        return viewer
    number = db_id(ref)
    if kind not in KINDS or number is None:
        return not_found(request, viewer)
    try:
        body, digest, name = request.app.state.services.audit.evidence_pack(KINDS[kind], number)
    except NotFound:
        return not_found(request, viewer)
    return _attachment(viewer, body, "application/zip", name, **{"X-Evidence-Digest": digest})


def _attachment(viewer: Viewer, body: bytes, media: str, name: str, **headers: str) -> Response:
    """A file to save, never shown in the console's page (an HTML report has its own styles and the
    console's CSP would break them), headed as the API heads it."""
    response = file_response(body, media, name, **headers)
    viewer.rt.codec.write(response, viewer.session)
    return response


