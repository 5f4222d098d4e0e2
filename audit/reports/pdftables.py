"""The PDF's tables: the report's sections with related columns set together, to fit an A4 landscape page.

CSV, XLSX and HTML keep one column per field (to sort and filter); on paper the person's id and
name share a cell, as do system and account, permission and field, the first and last sighting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from audit.i18n import t
from audit.reports.data import ReportData
from audit.reports.sections import Cell, Section, build_sections, cell_text

DETAILS_LIMIT = 400  # characters of evidence details on paper; the other formats carry them whole


@dataclass(frozen=True, slots=True)
class Detailed:
    """A cell with a main text and a smaller detail underneath."""

    text: str
    detail: str


PdfCell = Cell | Detailed


@dataclass(frozen=True, slots=True)
class PdfTable:
    """One table of the PDF: headers, column widths in points, rows."""

    title: str
    headers: tuple[str, ...]
    widths: tuple[float, ...]
    rows: list[tuple[PdfCell, ...]]
    note: str


def _lines(*parts: str | None) -> str:
    return "\n".join(p for p in parts if p)


def _finding(row: dict[str, Cell], lang: str, tz: str) -> tuple[PdfCell, ...]:
    def text(key: str) -> str:
        return cell_text(row[key], lang, tz)

    details = cell_text(row["evidence_details"], lang, tz, sep="; ")
    if len(details) > DETAILS_LIMIT:
        details = details[:DETAILS_LIMIT] + "… " + t("report.pdf_cut", lang)
    return (row["finding_id"], row["kind"], row["severity"], row["finding_status"],
            _lines(text("person_id"), text("person_name")), _lines(text("system"), text("account")),
            _lines(text("permission"), text("field")), Detailed(text("evidence_summary"), details),
            row["recommendation"], _lines(text("first_seen"), text("last_seen"), text("quarters")))


def _decision(row: dict[str, Cell], lang: str, tz: str) -> tuple[PdfCell, ...]:
    def text(key: str) -> str:
        return cell_text(row[key], lang, tz)

    until = text("accepted_until")
    decision = _lines(text("decision"), f"{t('col.accepted_until', lang)} {until}" if until else None)
    return (row["item_id"], _lines(text("person_id"), text("person_name")), row["grant"],
            row["system_recommendation"], row["reviewer"], decision, row["reason"], row["decided_at"],
            _lines(text("apply_result"), text("change_id"), text("apply_detail")))


def _keyed(section: Section) -> list[dict[str, Cell]]:
    keys = [c.key for c in section.columns]
    return [dict(zip(keys, row, strict=True)) for row in section.rows]


def _headers(keys: Sequence[str], lang: str) -> tuple[str, ...]:
    return tuple(" / ".join(t(f"col.{k}", lang) for k in key.split("+")) for key in keys)


def pdf_tables(data: ReportData, lang: str) -> list[PdfTable]:
    """The tables after the title page: population at launch, findings, decisions, population after."""
    tz = data.timezone
    tables: list[PdfTable] = []
    for section in build_sections(data, lang):
        if section.key in ("summary", "scope"):
            continue  # on the title page
        if section.key == "findings":
            headers = _headers(("finding_id", "kind", "severity", "finding_status", "person_id+person_name",
                                "system+account", "permission+field", "evidence_summary", "recommendation",
                                "first_seen+last_seen+quarters"), lang)
            widths: tuple[float, ...] = (38, 68, 40, 44, 66, 72, 88, 172, 94, 84)
            rows = [_finding(r, lang, tz) for r in _keyed(section)]
        elif section.key == "decisions":
            headers = _headers(("item_id", "person_id+person_name", "grant", "system_recommendation", "reviewer",
                                "decision", "reason", "decided_at", "apply_result+change_id"), lang)
            widths = (40, 70, 110, 90, 62, 70, 160, 68, 100)
            rows = [_decision(r, lang, tz) for r in _keyed(section)]
        else:
            headers = section.headers
            widths = (52, 56, 92, 84, 40, 130, 284, 32)
            rows = [tuple(r) for r in section.rows]
        tables.append(PdfTable(section.title, headers, widths, rows, section.note))
    return tables
