"""The report as an XLSX workbook: one sheet per section, header bold and frozen, widths set, autofilter on."""

from __future__ import annotations

import io
import unicodedata
from datetime import UTC, datetime
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from audit.i18n import t
from audit.reports.data import ReportData, pick
from audit.reports.sections import Cell, Section, build_sections, cell_text
from audit.reports.validation import checked_lang

_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="E8E8E8")
_WRAP = Alignment(wrap_text=True, vertical="top")
_TOP = Alignment(vertical="top")
_DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
_MAX_WIDTH = 80
_WIDTH_SAMPLE = 200  # rows looked at to size a column


def display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: a CJK character counts twice."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cell_width(value: Cell, lang: str, tz: ZoneInfo) -> int:
    if isinstance(value, datetime):
        return 16
    text = cell_text(value, lang, tz.key, sep="\n")
    return max((display_width(line) for line in text.splitlines()), default=0)


def _write_row(ws: Worksheet, row_no: int, values: tuple[Cell, ...], lang: str, tz: ZoneInfo) -> None:
    for col, value in enumerate(values, start=1):
        cell = ws.cell(row=row_no, column=col)
        if isinstance(value, datetime):
            # Excel has no time zones: the report's zone, as the summary sheet says.
            cell.value = value.astimezone(tz).replace(tzinfo=None)
            cell.number_format = _DATETIME_FORMAT
        elif isinstance(value, int) and not isinstance(value, bool):
            cell.value = value
        else:
            cell.value = cell_text(value, lang, tz.key, sep="\n" if isinstance(value, tuple) else None)
            cell.data_type = "s"  # never a formula, whatever the text starts with
            if isinstance(value, tuple) and len(value) > 1:
                cell.alignment = _WRAP


def _fill_sheet(ws: Worksheet, section: Section, lang: str, tz: ZoneInfo) -> None:
    for col, header in enumerate(section.headers, start=1):
        cell = ws.cell(row=1, column=col, value=header)
        cell.data_type = "s"
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cell.alignment = _TOP
    for row_no, row in enumerate(section.rows, start=2):
        _write_row(ws, row_no, row, lang, tz)
    sample = section.rows[:_WIDTH_SAMPLE]
    for col, column in enumerate(section.columns, start=1):
        header_width = display_width(section.headers[col - 1]) + 4  # room for the filter button
        content = max((_cell_width(row[col - 1], lang, tz) for row in sample), default=0) + 2
        width = max(header_width, min(content, column.width))
        ws.column_dimensions[get_column_letter(col)].width = min(_MAX_WIDTH, width)
    ws.freeze_panes = "A2"
    last = get_column_letter(len(section.headers))
    ws.auto_filter.ref = f"A1:{last}{max(1, len(section.rows) + 1)}"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"


def render_xlsx(data: ReportData, lang: str = "zh-CN") -> bytes:
    """The report as an XLSX workbook in ``lang``; the same data gives the same bytes."""
    lang = checked_lang(lang)
    tz = ZoneInfo(data.timezone)
    wb = Workbook()
    first = True
    for section in build_sections(data, lang):
        ws = wb.active if first else wb.create_sheet()
        assert ws is not None
        ws.title = section.title[:31]
        first = False
        _fill_sheet(ws, section, lang, tz)
    stamp = data.generated_at.astimezone(UTC).replace(tzinfo=None)
    props = wb.properties
    props.title = pick(data.title, lang) or t(f"report.title.{data.kind}", lang)
    props.subject = f"{data.kind} {data.ref} {data.quarter}"
    props.creator = "accessgov"
    props.description = f"trail head {data.trail_head}"
    props.language = lang
    props.created = props.modified = stamp
    buffer = io.BytesIO()
    with ZipFile(buffer, "w", ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).save()  # not Workbook.save(): that stamps the current time
    return _fixed_zip_times(buffer.getvalue(), data.generated_at.astimezone(tz))


def _fixed_zip_times(data: bytes, at: datetime) -> bytes:
    """The same archive with every member stamped ``at``: the same workbook, the same bytes."""
    stamp = (max(at.year, 1980), at.month, at.day, at.hour, at.minute, at.second - at.second % 2)
    out = io.BytesIO()
    with ZipFile(io.BytesIO(data)) as src, ZipFile(out, "w", ZIP_DEFLATED, allowZip64=True) as dst:
        for info in src.infolist():
            member = ZipInfo(info.filename, date_time=stamp)
            member.compress_type = ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            dst.writestr(member, src.read(info))
    return out.getvalue()
