"""The PDF's long tables, laid out page by page here rather than by reportlab.

reportlab splits a long table one page at a time and re-measures the rest of it at every split,
which grows with the square of the rows (10,000 findings: over a minute).  Here every cell is
measured once, rows are dealt onto pages, and each page gets a table of known row heights, its own
header row and a page break: linear, and the header repeats on every page by construction.  A cell
too long for paper is cut (the other formats carry it whole) so that no row outgrows a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, LongTable, PageBreak, Paragraph, TableStyle

from audit.i18n import t
from audit.reports.pdftables import Detailed, PdfTable
from audit.reports.sections import Cell, Label, cell_text

PAD = 3  # left and right padding of a cell
VPAD = 2  # top and bottom padding
FONT_SIZE = 7.5
LEADING = 9.5
MAX_CHARS = 700  # a cell's text on paper
MAX_LINES = 24
SEVERITY_COLOURS = {"critical": "#7f0000", "high": "#c62828", "medium": "#b26a00", "low": "#455a64"}


class Styles:
    """The paragraph styles of one PDF."""

    def __init__(self, font: str, lang: str) -> None:
        wrap = "CJK" if lang == "zh-CN" else "LTR"  # Chinese breaks between any two characters
        self.title = ParagraphStyle("title", fontName=font, fontSize=20, leading=26, spaceAfter=6)
        self.subtitle = ParagraphStyle("subtitle", fontName=font, fontSize=13, leading=18, spaceAfter=10)
        self.h2 = ParagraphStyle("h2", fontName=font, fontSize=14, leading=19, spaceBefore=6, spaceAfter=6)
        self.h3 = ParagraphStyle("h3", fontName=font, fontSize=10.5, leading=14, spaceBefore=6, spaceAfter=3)
        self.body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12, wordWrap=wrap)
        self.cell = ParagraphStyle("cell", fontName=font, fontSize=FONT_SIZE, leading=LEADING, wordWrap=wrap)
        self.small = ParagraphStyle("small", fontName=font, fontSize=6.5, leading=8, wordWrap=wrap,
                                    textColor=colors.HexColor("#444444"))
        self.font = font
        self.lang = lang


def table_style(font: str) -> TableStyle:
    """Grid, header shading, striped rows, the report's font."""
    return TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font),
        ("FONTSIZE", (0, 0), (-1, -1), FONT_SIZE),
        ("LEADING", (0, 0), (-1, -1), LEADING),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#999999")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e4e4e4")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f7f7f7")]),
        ("LEFTPADDING", (0, 0), (-1, -1), PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), PAD),
        ("TOPPADDING", (0, 0), (-1, -1), VPAD),
        ("BOTTOMPADDING", (0, 0), (-1, -1), VPAD),
    ])


def para(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text (escaped: reportlab reads markup)."""
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def clip(text: str, lang: str) -> str:
    """``text`` cut to what a cell on paper can hold."""
    lines = text.split("\n")
    cut = False
    if len(lines) > MAX_LINES:
        more = len(lines) - MAX_LINES + 1
        lines = [*lines[: MAX_LINES - 1], f"… (+{more})"]
        cut = True
    text = "\n".join(lines)
    if len(text) > MAX_CHARS:
        text, cut = text[:MAX_CHARS] + "…", True
    return text + "\n" + t("report.pdf_cut", lang) if cut else text


def _fits(text: str, font: str, width: float) -> bool:
    return all(stringWidth(line, font, FONT_SIZE) <= width - 2 * PAD for line in text.split("\n"))


def pdf_cell(value: Cell | Detailed, width: float, st: Styles, tz: str) -> Any:
    """A plain string when every line fits (cheap), else wrapping paragraphs."""
    if isinstance(value, Detailed):
        if not value.detail:
            return pdf_cell(value.text, width, st, tz)
        return [para(clip(value.text, st.lang), st.cell), para(value.detail, st.small)]
    if isinstance(value, Label) and value.code in SEVERITY_COLOURS:
        return Paragraph(f'<font color="{SEVERITY_COLOURS[value.code]}">{escape(value.text)}</font>', st.cell)
    text = clip(cell_text(value, st.lang, tz, sep="\n"), st.lang)
    return text if _fits(text, st.font, width) else para(text, st.cell)


def _height(cell: Any, width: float) -> float:
    if isinstance(cell, str):
        return LEADING * (cell.count("\n") + 1) + 2 * VPAD
    flowables = cell if isinstance(cell, list) else [cell]
    return float(sum(f.wrap(width - 2 * PAD, 1e9)[1] for f in flowables)) + 2 * VPAD


def _page_slices(heights: Sequence[float], header: float, first: float, later: float) -> list[slice]:
    """Rows per page: as many as fit under the header (``first`` is the room on the section's first page)."""
    slices: list[slice] = []
    start, used, room = 0, header, first
    for i, h in enumerate(heights):
        if used + h > room and i > start:
            slices.append(slice(start, i))
            start, used, room = i, header, later
        used += h
    slices.append(slice(start, len(heights)))
    return slices


def paged_table(table: PdfTable, st: Styles, tz: str, first: float, later: float) -> list[Flowable]:
    """``table`` as one table per page, each with the header row and a page break after it."""
    widths = table.widths
    header = [para(h, st.cell) for h in table.headers]
    header_height = max(_height(c, w) for c, w in zip(header, widths, strict=True))
    rows = [[pdf_cell(v, w, st, tz) for v, w in zip(row, widths, strict=True)] for row in table.rows]
    heights = [max(_height(c, w) for c, w in zip(row, widths, strict=True)) for row in rows]
    style = table_style(st.font)
    story: list[Flowable] = []
    for part in _page_slices(heights, header_height, first, later):
        flowable = LongTable([header, *rows[part]], colWidths=widths, rowHeights=[header_height, *heights[part]],
                             repeatRows=1)  # should a page still overflow, reportlab splits it, header and all
        flowable.setStyle(style)
        story += [flowable, PageBreak()]
    return story[:-1]
