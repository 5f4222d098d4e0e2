"""The report as CSV: one file per section, UTF-8 with a byte-order mark, so that Excel and WPS in China open it right.

One file per section because each section has its own columns: a spreadsheet opens each as one
clean table it can sort and filter, where a single file of stacked tables would not.  Times are
written ``2026-11-25 14:05`` in the report's time zone (Excel reads them as dates; the zone is in
summary.csv), lists are joined with "; ", and a text that a spreadsheet would run as a formula
(starting with = + - @, tab or carriage return) is prefixed with an apostrophe (CSV injection).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

from audit.reports.data import ReportData
from audit.reports.sections import Cell, build_sections, cell_text
from audit.reports.validation import checked_lang

BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Cell, lang: str, tz: str) -> str | int:
    """One cell as CSV writes it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    text = cell_text(value, lang, tz, sep="; ")
    return "'" + text if text.startswith(_FORMULA_START) else text


def render_csv(data: ReportData, lang: str = "zh-CN") -> dict[str, bytes]:
    """``{"summary.csv": ..., "scope.csv": ..., "population_at_launch.csv": ..., "findings.csv": ...,
    "decisions.csv": ..., "population_after.csv": ...}``, each with its header row."""
    lang = checked_lang(lang)
    files: dict[str, bytes] = {}
    for section in build_sections(data, lang):
        out = io.StringIO(newline="")
        out.write(BOM)
        writer = csv.writer(out, dialect="excel", lineterminator="\r\n")
        writer.writerow(section.headers)
        writer.writerows([csv_cell(v, lang, data.timezone) for v in row] for row in section.rows)
        files[f"{section.key}.csv"] = out.getvalue().encode("utf-8")
    return files
