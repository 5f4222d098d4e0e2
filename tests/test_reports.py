"""Audit reports: HTML, CSV, XLSX and PDF in zh-CN and en, and the evidence pack with its digests."""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import openpyxl
import pypdf
import pytest

from audit import i18n
from audit.i18n import t
from audit.reports import (
    DecisionRow,
    FindingRow,
    PersonRow,
    ReportData,
    ReportSummary,
    build_evidence_pack,
    render_csv,
    render_html,
    render_pdf,
    render_xlsx,
    resolve_font,
    verify_evidence_pack,
)
from audit.reports.fonts import candidate_paths
from tests.conftest import in_ci

ROOT = Path(__file__).resolve().parent.parent
GENERATED = datetime(2026, 11, 25, 6, 5, tzinfo=UTC)  # 14:05 in Shanghai
LAUNCHED = datetime(2026, 10, 8, 1, 30, tzinfo=UTC)
HEAD = hashlib.sha256(b"trail head").hexdigest()
HOSTILE_NAME = '<script>alert("x")</script>张三'
FORMULA = '=HYPERLINK("http://evil.example","点此")'

ZH_KINDS = {
    "unused_permission": "未使用的权限", "dormant_account": "休眠账号", "orphan_account": "孤儿账号",
    "leaver_active": "离职人员仍有访问", "stale_grant_after_move": "调岗后残留授权", "sod_conflict": "职责分离冲突",
    "peer_outlier": "同岗异常权限", "privileged_role": "特权角色", "broad_grant": "过宽授权",
    "direct_grant": "角色外直接授权", "expired_access": "已过期的临时授权", "expiring_access": "即将到期的临时授权",
    "cross_system_inconsistency": "跨系统不一致", "unused_sensitive_field": "未使用的敏感字段权限",
}
SHEETS = {"zh-CN": ["概要", "范围", "启动时人员", "发现", "决定", "整改后人员"],
          "en": ["Summary", "Scope", "Population at launch", "Findings", "Decisions", "Population after"]}
CSV_FILES = ["summary.csv", "scope.csv", "population_at_launch.csv", "findings.csv", "decisions.csv",
             "population_after.csv"]

PEOPLE = [
    PersonRow("P00013", "张伟", "市场部", "市场专员", "active", ["crm:zhangwei01", "oa:1013"],
              ["销售经理 @ 华东大区", "市场专员 @ 市场部"]),
    PersonRow("P00092", "李娜", "华南销售部", "销售代表", "left", ["crm:lina", "oa:1092"], ["销售代表 @ 华南大区"]),
    PersonRow("P00057", "王芳", "法务部", "法务专员", "active", ["crm:wangfang", "oa:1057"],
              ["销售经理 @ 华南大区", "法务专员 @ 法务部"]),
    PersonRow("P00237", "陈静", "会计部", "会计", "active", ["oa:1237"],
              ["会计 @ 会计部", "财务总监 @ 财务中心"], True),
    PersonRow("P00266", "赵磊", "信息技术部", "系统管理员", "active", ["crm:zhaolei"], ["CRM管理员 @ 全公司"], True),
    PersonRow("P00149", "周杰", "西部大区", "销售代表", "active", ["crm:zhoujie"],
              ["销售代表 @ 西部大区", "大区总监 @ 华北大区", "财务专员 @ 财务中心"]),
    PersonRow("P00227", "吴敏", "审计部", "审计员", "active", ["oa:1227"], ["审计员 @ 全公司 (至 2026-10-31)"]),
    PersonRow("P00136", "黄涛", "华东大区", "销售代表", "active", ["crm:huangtao"], ["销售代表 @ 华东大区"]),
    PersonRow("P00300", HOSTILE_NAME, "华南销售部", FORMULA, "active", ["crm:zhangsan"], ["销售代表 @ 华南大区"]),
    PersonRow("", "", "", "", "active", ["crm:test01"], []),
]
AFTER = [
    replace(PEOPLE[0], grants=["市场专员 @ 市场部"]),
    replace(PEOPLE[1], accounts=[], grants=[]),
    *PEOPLE[2:9],
]


def finding(n: int, kind: str, person: PersonRow | None, severity: str = "medium", status: str = "open",
            **extra: object) -> FindingRow:
    values: dict[str, object] = {
        "id": n, "kind": kind, "severity": severity, "status": status,
        "person_id": person.person_id if person else None, "person_name": person.name if person else None,
        "system": "crm", "permission": "crm.contract:approve", "field": None,
        "evidence_summary": {"zh-CN": f"{t('kind.' + kind)}：90 天内未见使用", "en": "not used in 90 days"},
        "evidence": {"last_used": None, "window_days": 90, "grant": {"id": n, "role": "sales_manager"}},
        "recommendation": i18n.texts("recommendation.review_grant"),
        "first_seen": LAUNCHED - timedelta(days=92), "last_seen": LAUNCHED, "quarters": ["2026Q3", "2026Q4"],
    }
    values.update(extra)
    return FindingRow(**values)  # type: ignore[arg-type]


def sample_findings() -> list[FindingRow]:
    p = {row.person_id: row for row in PEOPLE}
    return [
        finding(1, "unused_permission", p["P00266"], "high"),
        finding(2, "unused_sensitive_field", p["P00013"], field="id_number", permission="crm.customer:read"),
        finding(3, "dormant_account", p["P00136"], account="huangtao", permission=None),
        finding(4, "orphan_account", None, "high", account="test01", permission=None,
                evidence_summary="CRM 账号 test01 未关联任何人员"),
        finding(5, "leaver_active", p["P00092"], "critical", evidence_summary="2026年9月30日离职后仍登录 CRM 3 次"),
        finding(6, "stale_grant_after_move", p["P00013"], "high", permission="销售经理 @ 华东大区"),
        finding(7, "sod_conflict", p["P00057"], "critical", permission="crm.contract:create + crm.contract:approve"),
        finding(8, "peer_outlier", p["P00149"], permission="大区总监 @ 华北大区"),
        finding(9, "privileged_role", p["P00266"], "high", status="accepted", permission="CRM管理员"),
        finding(10, "broad_grant", p["P00237"], system="oa", permission="财务总监 @ 全公司"),
        finding(11, "direct_grant", p["P00149"], "low", status="suppressed", permission="财务专员"),
        finding(12, "expired_access", p["P00227"], system="oa", status="remediated", permission="审计员"),
        finding(13, "expiring_access", p["P00013"], "low", status="resolved"),
        finding(14, "cross_system_inconsistency", p["P00092"], system="idp",
                evidence={"idp": "disabled", "crm": "active", "note": "</td><b>x</b>"}),
        finding(15, "unused_permission", p["P00300"], evidence_summary=FORMULA),
    ]


def sample_decisions() -> list[DecisionRow]:
    at = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    return [
        DecisionRow(101, "P00013", "张伟", "销售经理 @ 华东大区", "钱总监", "revoke", "已调至市场部，不再需要", at,
                    "applied", 8812, i18n.texts("recommendation.revoke_grant"), finding_ids=[6]),
        DecisionRow(102, "P00092", "李娜", "crm:lina", "孙经理", "revoke", "已离职", at, "applied", 8813),
        DecisionRow(103, "P00057", "王芳", "销售经理 @ 华南大区", "钱总监", "reduce", "仅保留只读", at, "failed", None,
                    apply_detail="CRM 返回 503，工单 IT-2291"),
        DecisionRow(104, "P00266", "赵磊", "CRM管理员 @ 全公司", "信息安全部", "accept_risk",
                    "年底系统割接期间需要", at, "not_required",
                    accepted_until=datetime(2027, 1, 31, 16, 0, tzinfo=UTC)),
        DecisionRow(105, "P00149", "周杰", "大区总监 @ 华北大区", "钱总监", "keep", "兼任华北区项目", at,
                    "not_required"),
        DecisionRow(106, "P00136", "黄涛", "crm:huangtao", "李经理", "none", "", None, None),
        DecisionRow(107, "P00237", "陈静", "财务总监 @ 财务中心", "钱总监", "revoke", "职责分离", at,
                    "rolled_back", 8815, apply_detail="月结期间回滚，12 月重新执行"),
    ]


def sample_report(kind: str = "campaign", findings: list[FindingRow] | None = None) -> ReportData:
    return ReportData(
        kind=kind,  # type: ignore[arg-type]
        ref="C-2026Q4-01" if kind == "campaign" else 42,
        title={"zh-CN": "2026 年第四季度访问权限复核", "en": "Q4 2026 access review"},
        organisation={"zh-CN": "演示科技有限公司", "en": "Demo Technology Co., Ltd."},
        quarter="2026Q4", generated_at=GENERATED, trail_head=HEAD, trail_seq=1207,
        scope={"usage_window_days": 90, "systems": ["crm", "oa"], "departments": ["华南销售部", "法务部", "会计部"],
               "launched_by": "security.officer@demo.cn", "launched_at": LAUNCHED,
               "审计依据": "GB/T 22239-2019 8.1.4.2"},
        population_at_launch=PEOPLE, population_after=AFTER if kind == "campaign" else [],
        population_at_launch_at=LAUNCHED, population_after_at=GENERATED,
        findings=sample_findings() if findings is None else findings,
        decisions=sample_decisions() if kind == "campaign" else [],
        summary=None if findings is not None else replace(
            ReportSummary.from_findings(sample_findings()), other={"new": 11, "seen_again": 4}),
    )


@pytest.fixture(scope="module")
def report() -> ReportData:
    return sample_report()


# --------------------------------------------------------------------------- catalogue


def test_catalogue_speaks_both_languages_for_every_vocabulary() -> None:
    groups = {"kind": i18n.FINDING_KINDS, "severity": i18n.SEVERITIES, "finding_status": i18n.FINDING_STATUSES,
              "decision": i18n.DECISIONS, "system": i18n.SYSTEMS, "apply": i18n.APPLY_RESULTS}
    for group, codes in groups.items():
        for code in codes:
            key = f"{group}.{code}"
            assert i18n.has(key), key
            assert t(key, "zh-CN") != t(key, "en") or group == "system"
    assert {k: t(f"kind.{k}") for k in i18n.FINDING_KINDS} == ZH_KINDS
    assert t("kind.sod_conflict", "en") == "Separation-of-duties conflict"
    assert [t(f"severity.{s}", "zh-CN") for s in i18n.SEVERITIES] == ["严重", "高", "中", "低"]
    assert t("decision.accept_risk", "zh") == "接受风险"
    assert t("decision.revoke", "en-GB") == "Revoke"


def test_unknown_keys_and_languages_fall_back_visibly() -> None:
    assert t("kind.shared_account", "zh-CN") == "kind.shared_account"
    assert t("kind.shared_account", "en") == "kind.shared_account"
    assert t("kind.orphan_account", "fr") == "孤儿账号"  # zh-CN is the default
    assert t("kind.orphan_account", "") == "孤儿账号"
    assert i18n.label("kind", "shared_account", "en") == "shared_account"
    with pytest.raises(ValueError, match="zh-CN or en"):
        render_html(sample_report(), "fr")


def test_dates_and_numbers_per_locale() -> None:
    assert i18n.format_datetime(GENERATED, "zh-CN") == "2026年11月25日 14:05"
    assert i18n.format_datetime(GENERATED, "en") == "25 Nov 2026 14:05"
    assert i18n.format_datetime(GENERATED, "en", "UTC") == "25 Nov 2026 06:05"
    assert i18n.format_date(GENERATED.date(), "zh-CN") == "2026年11月25日"
    assert i18n.format_number(1234567, "zh-CN") == "1,234,567"
    assert i18n.format_number(1234567, "en") == "1,234,567"
    assert i18n.utc_offset(GENERATED, "Asia/Shanghai") == "UTC+08:00"
    assert i18n.join(["CRM", "OA"], "zh-CN") == "CRM、OA"


def test_report_data_refuses_what_a_report_cannot_show_truthfully() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(sample_report(), generated_at=datetime(2026, 11, 25, 14, 5))
    with pytest.raises(ValueError, match="SHA-256"):
        replace(sample_report(), trail_head="not-a-hash")
    with pytest.raises(ValueError, match="kind"):
        replace(sample_report(), kind="quarterly")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        finding(1, "unused_permission", None, first_seen=datetime(2026, 1, 1))
    counted = sample_report(findings=sample_findings())
    assert counted.counts.by_kind["unused_permission"] == 2
    assert list(counted.counts.by_severity) == ["critical", "high", "medium", "low"]


# --------------------------------------------------------------------------- HTML


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.section: str | None = None
        self.text_by_section: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "section":
            self.section = dict(attrs).get("id")

    def handle_data(self, data: str) -> None:
        if self.section:
            self.text_by_section.setdefault(self.section, []).append(data)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_html_is_one_safe_page_with_every_finding_labelled(report: ReportData, lang: str) -> None:
    page = render_html(report, lang)
    parsed = _Tags()
    parsed.feed(page)
    html_tag = next(attrs for tag, attrs in parsed.tags if tag == "html")
    assert html_tag["lang"] == lang
    assert all(attrs.get("scope") in ("col", "row") for tag, attrs in parsed.tags if tag == "th")
    assert not [tag for tag, _ in parsed.tags if tag in ("script", "link", "img", "iframe", "object")]
    assert all((attrs.get("href") or "#").startswith("#") for tag, attrs in parsed.tags if tag == "a")
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;张三" in page
    assert "&lt;/td&gt;&lt;b&gt;x&lt;/b&gt;" in page  # evidence details escaped as well
    findings_text = "".join(parsed.text_by_section["findings"])
    for kind in i18n.FINDING_KINDS:
        assert t(f"kind.{kind}", lang) in findings_text, kind
    other = "en" if lang == "zh-CN" else "zh-CN"
    assert t("kind.sod_conflict", other) not in findings_text
    assert t("section.population_at_launch", lang) in page and t("section.population_after", lang) in page
    decisions_text = "".join(parsed.text_by_section["decisions"])
    assert t("decision.accept_risk", lang) in decisions_text and t("apply.rolled_back", lang) in decisions_text
    assert ("2026年11月25日 14:05" if lang == "zh-CN" else "25 Nov 2026 14:05") in page
    assert HEAD in page and "李娜" in page and "华南销售部" in page


def test_an_audit_run_without_findings_renders_in_every_format() -> None:
    data = sample_report("audit_run", findings=[])
    page = render_html(data, "zh-CN")
    assert t("report.not_applicable", "zh-CN") in page  # a run has no decisions
    assert t("report.empty_population", "zh-CN") in page  # nor a population after
    assert t("report.no_findings", "zh-CN") in page
    assert render_csv(data, "en")["findings.csv"].decode("utf-8-sig").count("\r\n") == 1  # the header alone
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(data, "en")))
    assert wb["Decisions"].max_row == 1 and wb["Decisions"].auto_filter.ref == "A1:M1"
    _, text = _pdf_text(render_pdf(data, "en", font=resolve_font([])))
    assert "Audit run 42" in text and t("report.not_applicable", "en") in text


# --------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_csv_files_open_in_excel_with_their_header(report: ReportData, lang: str) -> None:
    files = render_csv(report, lang)
    assert list(files) == CSV_FILES
    for body in files.values():
        assert body.startswith(b"\xef\xbb\xbf")
        assert b"\r\n" in body
    rows = list(csv.reader(io.StringIO(files["findings.csv"].decode("utf-8-sig"), newline="")))
    assert rows[0][:4] == [t(c, lang) for c in ("col.finding_id", "col.kind", "col.severity", "col.finding_status")]
    assert len(rows) == 1 + len(report.findings)
    assert {r[1] for r in rows[1:]} == {t(f"kind.{k}", lang) for k in i18n.FINDING_KINDS}
    orphan = next(r for r in rows[1:] if r[0] == "4")
    assert orphan[7] == "test01" and orphan[4] == ""
    assert next(r for r in rows[1:] if r[0] == "5")[13] == "2026-07-08 09:30"  # Shanghai time
    injected = next(r for r in rows[1:] if r[0] == "15")
    assert injected[10] == "'" + FORMULA  # a spreadsheet shows it, never runs it
    people = list(csv.reader(io.StringIO(files["population_at_launch.csv"].decode("utf-8-sig"), newline="")))
    assert people[1][:3] == ["P00013", "张伟", "市场部"] and people[1][5] == "crm:zhangwei01; oa:1013"
    decisions = list(csv.reader(io.StringIO(files["decisions.csv"].decode("utf-8-sig"), newline="")))
    assert decisions[0][6] == t("col.decision", lang) and len(decisions) == 8


# --------------------------------------------------------------------------- XLSX


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_xlsx_has_a_sheet_per_section_with_frozen_bold_filtered_headers(report: ReportData, lang: str) -> None:
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(report, lang)))
    assert wb.sheetnames == SHEETS[lang]
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2"
        assert ws["A1"].font.b
        assert ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:")
        assert ws.column_dimensions["A"].width >= 8
    findings = wb[SHEETS[lang][3]]
    header = [c.value for c in findings[1]]
    assert header[:3] == [t("col.finding_id", lang), t("col.kind", lang), t("col.severity", lang)]
    assert findings.auto_filter.ref == f"A1:P{1 + len(report.findings)}"
    kinds = {row[1] for row in findings.iter_rows(min_row=2, values_only=True)}
    assert kinds == {t(f"kind.{k}", lang) for k in i18n.FINDING_KINDS}
    first_seen = findings.cell(row=2, column=header.index(t("col.first_seen", lang)) + 1)
    assert first_seen.value == datetime(2026, 7, 8, 9, 30)  # a real date, in Shanghai time
    people = wb[SHEETS[lang][2]]
    hostile = next(r for r in people.iter_rows(min_row=2) if r[0].value == "P00300")
    assert hostile[1].value == HOSTILE_NAME
    assert hostile[3].value == FORMULA and hostile[3].data_type == "s"  # text, not a formula
    decisions = wb[SHEETS[lang][4]]
    assert decisions.max_row == 1 + len(report.decisions)
    summary = [tuple(r) for r in wb[SHEETS[lang][0]].iter_rows(values_only=True)]
    assert (t("summary.report", lang), t("summary.trail_head", lang), HEAD) in summary
    assert wb.properties.created == datetime(2026, 11, 25, 6, 5)


# --------------------------------------------------------------------------- PDF


def _pdf_text(pdf: bytes) -> tuple[pypdf.PdfReader, str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def _meta(reader: pypdf.PdfReader) -> dict[str, str]:
    return {str(k): str(v) for k, v in (reader.metadata or {}).items()}


def _font_files(reader: pypdf.PdfReader) -> set[str]:
    """Which kinds of embedded font file the PDF carries (FontFile2 = TrueType)."""
    found: set[str] = set()
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for ref in resources.get("/Font", {}).values():
            font = ref.get_object()
            for desc in [font, *[d.get_object() for d in font.get("/DescendantFonts", [])]]:
                descriptor = desc.get("/FontDescriptor")
                if descriptor is not None:
                    found.update(k for k in ("/FontFile", "/FontFile2", "/FontFile3") if k in descriptor.get_object())
    return found


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_pdf_with_the_cid_fallback_font_carries_the_chinese_text(report: ReportData, lang: str) -> None:
    font = resolve_font(paths=[])
    assert not font.embedded and font.name == "STSong-Light"
    reader, text = _pdf_text(render_pdf(report, lang, font=font))
    pages = len(reader.pages)
    assert pages >= 4
    if lang == "zh-CN":
        assert "未使用的权限" in text and "职责分离冲突" in text and "离职人员仍有访问" in text
        assert f"第 1 页 / 共 {pages} 页" in text and f"第 {pages} 页 / 共 {pages} 页" in text
    else:
        assert "Unused permission" in text and "Separation-of-duties conflict" in text
        assert f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    for name in ("张伟", "李娜", "王芳", "华南销售部"):
        assert name in text, name
    assert '<script>alert("x")</script>张三' in text.replace("\n", "")  # escaped for reportlab, wrapped
    assert "STSong-Light" in _meta(reader)["/Keywords"]
    assert _font_files(reader) == set()  # named, not embedded


def test_pdf_embeds_a_truetype_cjk_font_when_one_is_installed(report: ReportData) -> None:
    usable = [p for p in candidate_paths(configured="") if p.suffix in (".ttf", ".ttc")]
    if not usable:
        if in_ci():
            pytest.fail("no TrueType CJK font: CI must apt-get install fonts-wqy-microhei")
        pytest.skip("no TrueType CJK font installed (apt-get install fonts-wqy-microhei)")
    font = resolve_font()
    assert font.embedded, font
    reader, text = _pdf_text(render_pdf(report, "zh-CN", font=font))
    assert "未使用的权限" in text and "孤儿账号" in text and "张伟" in text and "第 1 页 / 共" in text
    assert "/FontFile2" in _font_files(reader)
    assert "embedded TrueType" in _meta(reader)["/Keywords"]
    assert _meta(reader)["/Title"] == "2026 年第四季度访问权限复核"


def test_a_configured_font_that_reportlab_cannot_use_is_skipped(tmp_path: Path) -> None:
    bad = tmp_path / "NotoSansCJK-Regular.ttf"
    bad.write_bytes(b"OTTO" + b"\0" * 64)  # a CFF OpenType header: reportlab cannot embed it
    font = resolve_font(paths=[bad])
    assert not font.embedded and font.name == "STSong-Light"
    assert candidate_paths(configured=str(tmp_path))[0] == bad


# --------------------------------------------------------------------------- same data, same bytes


def test_every_rendering_is_deterministic(report: ReportData) -> None:
    font = resolve_font(paths=[])
    assert render_xlsx(report, "zh-CN") == render_xlsx(report, "zh-CN")
    assert render_pdf(report, "en", font=font) == render_pdf(report, "en", font=font)
    assert render_html(report, "zh-CN") == render_html(sample_report(), "zh-CN")


# --------------------------------------------------------------------------- evidence pack


def _rezip(pack: bytes, change: dict[str, bytes | None]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(pack)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = change.get(info.filename, src.read(info))
            if body is not None:
                dst.writestr(info, body)
    return out.getvalue()


@pytest.fixture(scope="module")
def pack(report: ReportData) -> tuple[bytes, str]:
    return build_evidence_pack(report, extra={"trail-verification.json": b'{"ok": true}'}, font=resolve_font([]))


def test_evidence_pack_lists_every_part_with_its_digest(pack: tuple[bytes, str]) -> None:
    body, digest = pack
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = archive.namelist()
        members = {n: archive.read(n) for n in names}
        assert {i.date_time for i in archive.infolist()} == {(2026, 11, 25, 14, 5, 0)}
    assert names == sorted(names)
    manifest = json.loads(members["manifest.json"])
    assert hashlib.sha256(members["manifest.json"]).hexdigest() == digest
    assert members["manifest.sha256"] == f"{digest}  manifest.json\n".encode()
    assert manifest["trail_head"] == HEAD and manifest["ref"] == "C-2026Q4-01"
    listed = {p["path"]: p for p in manifest["parts"]}
    assert set(listed) == set(names) - {"manifest.json", "manifest.sha256", "SHA256SUMS"}
    for path, part in listed.items():
        assert part["sha256"] == hashlib.sha256(members[path]).hexdigest(), path
        assert part["size"] == len(members[path])
    for lang in ("zh-CN", "en"):
        for name in ("report.html", "report.pdf", "report.xlsx", *(f"csv/{c}" for c in CSV_FILES)):
            assert f"{lang}/{name}" in listed
    for name in ("findings", "population_at_launch", "population_after", "decisions", "scope", "report"):
        assert f"data/{name}.json" in listed
    assert members["extra/trail-verification.json"] == b'{"ok": true}'
    findings = json.loads(members["data/findings.json"])
    assert findings[4]["kind"] == "leaver_active" and findings[4]["first_seen"] == "2026-07-08T01:30:00Z"
    assert json.loads(members["data/scope.json"])["systems"] == ["crm", "oa"]
    sums = dict(line.split("  ")[::-1] for line in members["SHA256SUMS"].decode().splitlines())
    assert sums["manifest.json"] == digest and sums["zh-CN/report.pdf"] == listed["zh-CN/report.pdf"]["sha256"]
    assert verify_evidence_pack(body, expected_digest=digest) == []


def test_evidence_pack_is_reproducible(report: ReportData, pack: tuple[bytes, str]) -> None:
    again = build_evidence_pack(report, extra={"trail-verification.json": b'{"ok": true}'}, font=resolve_font([]))
    assert again == pack


def test_verify_names_a_modified_missing_or_added_part(pack: tuple[bytes, str]) -> None:
    body, digest = pack
    tampered = _rezip(body, {"data/findings.json": b"[]\n"})
    problems = verify_evidence_pack(tampered, expected_digest=digest)
    assert any(p.startswith("data/findings.json: size") for p in problems)
    assert any(p.startswith("data/findings.json: SHA-256") for p in problems)
    assert verify_evidence_pack(_rezip(body, {"zh-CN/report.pdf": None})) == [
        "zh-CN/report.pdf: listed in the manifest but missing from the pack",
        "SHA256SUMS: names 'zh-CN/report.pdf', which is not in the pack"]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    manifest["parts"] = [p for p in manifest["parts"] if p["path"] != "en/report.html"]
    forged = _rezip(body, {"manifest.json": json.dumps(manifest).encode()})
    problems = verify_evidence_pack(forged, expected_digest=digest)
    assert any("manifest.sha256 says" in p for p in problems)
    assert any(p.endswith(f"expected {digest}") for p in problems)
    assert "en/report.html: in the pack but not in the manifest" in problems
    assert verify_evidence_pack(b"not a zip")[0].startswith("not a ZIP archive")


def test_extra_part_names_cannot_escape_the_pack(report: ReportData) -> None:
    for name in ("../etc/passwd", "/abs", "a/../../b", "a\\b", ""):
        with pytest.raises(ValueError, match="extra part name"):
            build_evidence_pack(report, langs=("en",), extra={name: b"x"}, font=resolve_font([]))


# --------------------------------------------------------------------------- volume


@pytest.mark.slow
def test_ten_thousand_findings_render_in_every_format() -> None:
    base = sample_findings()
    many = [replace(base[i % len(base)], id=i + 1) for i in range(10_000)]
    data = sample_report(findings=many)
    font = resolve_font()
    timings = {}
    for name, render in (("html", lambda: render_html(data, "zh-CN")), ("csv", lambda: render_csv(data, "zh-CN")),
                         ("xlsx", lambda: render_xlsx(data, "zh-CN")),
                         ("pdf", lambda: render_pdf(data, "zh-CN", font=font))):
        started = time.perf_counter()
        out = render()
        timings[name] = time.perf_counter() - started
        assert out
    print("10,000 findings:", ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()), f"({font.describe()})")
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(data, "en")), read_only=True)
    assert wb["Findings"].max_row == 10_001


# --------------------------------------------------------------------------- structure


def test_audit_package_never_imports_app() -> None:
    offenders = []
    for path in (ROOT / "audit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            offenders += [f"{path.name}: {n}" for n in names if n == "app" or n.startswith("app.")]
    assert offenders == []
    code = ("import sys, audit.reports, audit.i18n; "
            "sys.exit(any(m == 'app' or m.startswith('app.') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60).returncode == 0
