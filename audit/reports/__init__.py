"""Audit reports a regulator accepts: HTML, CSV, XLSX and PDF in zh-CN and en, and a digested evidence pack.

Fill a ``ReportData`` from the audit's rows, then render it (audit/REPORTS.md describes the formats)::

    html = render_html(data, "zh-CN")
    pack, digest = build_evidence_pack(data, extra={"trail-verification.json": report})
    assert verify_evidence_pack(pack, expected_digest=digest) == []
"""

from audit.reports.csvfiles import render_csv
from audit.reports.data import (
    DecisionRow,
    FindingRow,
    PersonRow,
    PopulationChanges,
    PopulationTotals,
    ReportData,
    ReportSummary,
    population_changes,
    population_totals,
)
from audit.reports.evidence import build_evidence_pack
from audit.reports.fonts import ReportFont, resolve_font
from audit.reports.htmlpage import render_html
from audit.reports.pdfdoc import render_pdf
from audit.reports.verify import verify_evidence_pack
from audit.reports.workbook import render_xlsx

__all__ = [
    "DecisionRow",
    "FindingRow",
    "PersonRow",
    "PopulationChanges",
    "PopulationTotals",
    "ReportData",
    "ReportFont",
    "ReportSummary",
    "build_evidence_pack",
    "population_changes",
    "population_totals",
    "render_csv",
    "render_html",
    "render_pdf",
    "render_xlsx",
    "resolve_font",
    "verify_evidence_pack",
]
