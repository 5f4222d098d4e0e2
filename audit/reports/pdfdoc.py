"""The report as PDF (reportlab platypus): a title page with the scope and summary, then the tables.

A4 landscape; every table repeats its header row on each page; long cells wrap (Chinese anywhere,
English at spaces); every page says 第 N 页 / 共 M 页 or Page N of M.  The same data gives the same
bytes (reportlab's invariant mode, dated ``generated_at``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, PageBreak, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import BalancedColumns

from audit.i18n import t, utc_offset
from audit.reports.data import ReportData, pick
from audit.reports.fonts import ReportFont, resolve_font
from audit.reports.pdfgrid import Styles, paged_table, para, pdf_cell, table_style
from audit.reports.pdftables import pdf_tables
from audit.reports.sections import Cell, scope_rows, summary_groups
from audit.reports.validation import checked_lang

PAGE = landscape(A4)
MARGIN = 12 * mm
FRAME_PADDING = 6  # SimpleDocTemplate's frame pads each side by 6 points
HEADING_ROOM = 40  # the section heading above a table's first page


def _numbered_canvas(font: str, lang: str, left: str, right: str, stamp: tuple[int, ...]) -> type[Canvas]:
    """A canvas that writes the footer (with the page count) once every page is known."""

    class NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab has no type hints
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []
            ts = self._doc._timeStamp  # date the document generated_at, not 2000-01-01 of invariant mode
            ts.YMDhms, ts.dhh, ts.dmm = stamp, 0, 0

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._footer(total)
                super().showPage()
            super().save()

        def _footer(self, total: int) -> None:
            width, _ = self._pagesize
            self.saveState()
            self.setFont(font, 7.5)
            self.setFillColor(colors.HexColor("#555555"))
            y = MARGIN / 2
            self.drawString(MARGIN, y, left)
            self.drawCentredString(width / 2, y, t("report.page", lang).format(n=self._pageNumber, m=total))
            self.drawRightString(width - MARGIN, y, right)
            self.restoreState()

    return NumberedCanvas


def _key_values(rows: Sequence[tuple[str, Cell]], st: Styles, tz: str, widths: tuple[float, float],
                caption: str | None = None) -> Table:
    body: list[list[Any]] = [[para(k, st.cell), pdf_cell(v, widths[1], st, tz)] for k, v in rows]
    body = body or [[t("report.none", st.lang), ""]]
    if caption is not None:  # the group's title as a header row: it stays with its rows in a column
        body.insert(0, [para(caption, st.h3), ""])
    flowable = Table(body, colWidths=list(widths), repeatRows=1 if caption is not None else 0)
    flowable.setStyle(table_style(st.font))
    first = 1 if caption is not None else 0
    extra: list[tuple[Any, ...]] = [("BACKGROUND", (0, first), (0, -1), colors.HexColor("#f0f0f0")),
                                    ("ROWBACKGROUNDS", (0, first), (-1, -1), [colors.white])]
    if caption is not None:
        extra += [("SPAN", (0, 0), (1, 0)), ("BACKGROUND", (0, 0), (-1, 0), colors.white),
                  ("LINEABOVE", (0, 0), (-1, 0), 0, colors.white), ("LINEBEFORE", (0, 0), (0, 0), 0, colors.white),
                  ("LINEAFTER", (-1, 0), (-1, 0), 0, colors.white), ("LEFTPADDING", (0, 0), (0, 0), 0)]
    flowable.setStyle(TableStyle(extra))
    flowable.hAlign = "LEFT"
    return flowable


def _title_page(data: ReportData, st: Styles) -> list[Flowable]:
    lang, tz = st.lang, data.timezone
    title = pick(data.title, lang) or t(f"report.title.{data.kind}", lang)
    story: list[Flowable] = [para(title, st.title), para(pick(data.organisation, lang), st.subtitle)]
    groups = summary_groups(data, lang)
    front = Table([[_key_values(groups[0].items, st, tz, (100, 280), caption=groups[0].title),
                    _key_values(scope_rows(data, lang), st, tz, (130, 240), caption=t("section.scope", lang))]],
                  colWidths=[384, 384])  # the report's identity beside its scope
    front.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    front.hAlign = "LEFT"
    note = t("report.timezone_note", lang).format(tz=tz, offset=utc_offset(data.generated_at, tz))
    story += [front, Spacer(1, 4), para(note, st.small), para(t("section.summary", lang), st.h2)]
    blocks: list[Flowable] = []
    for group in groups[1:]:
        blocks += [_key_values(group.items, st, tz, (150, 86), caption=group.title), Spacer(1, 8)]
    story.append(BalancedColumns(blocks, nCols=3, innerPadding=12))
    return story


def render_pdf(data: ReportData, lang: str = "zh-CN", *, font: ReportFont | None = None) -> bytes:
    """The report as a PDF in ``lang``; ``font`` defaults to ``resolve_font()`` (see audit/reports/fonts.py)."""
    lang = checked_lang(lang)
    font = font or resolve_font()
    st = Styles(font.name, lang)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN,
        title=pick(data.title, lang) or t(f"report.title.{data.kind}", lang),
        author=pick(data.organisation, lang), creator="accessgov",
        subject=f"{data.kind} {data.ref} {data.quarter}; trail head {data.trail_head}",
        keywords=[font.describe(), f"lang: {lang}"], lang=lang, invariant=1, displayDocTitle=1)
    room = doc.height - 2 * FRAME_PADDING - 2  # two points to spare for rounding
    story = _title_page(data, st)
    for table in pdf_tables(data, lang):
        story += [PageBreak(), para(table.title, st.h2)]
        if table.rows:
            story += paged_table(table, st, data.timezone, room - HEADING_ROOM, room)
        else:
            story.append(para(table.note, st.body))
    stamp = data.generated_at.astimezone(UTC).timetuple()[:6]
    left = f"{pick(data.organisation, lang)} · {t(f'report.{data.kind}', lang)} {data.ref} · {data.quarter}"
    right = f"{t('summary.trail_head', lang)} {data.trail_head[:16]}…"
    doc.build(story, canvasmaker=_numbered_canvas(font.name, lang, left, right, stamp))
    return buffer.getvalue()
