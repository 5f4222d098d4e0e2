"""The report as one self-contained HTML page: inline CSS, no scripts, no external resources, printable."""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from audit.i18n import t, utc_offset
from audit.reports.data import ReportData, pick
from audit.reports.sections import Label, build_sections, cell_text, summary_groups
from audit.reports.validation import checked_lang

_HEX64 = re.compile(r"[0-9a-f]{64}")


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("audit", "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True)
    env.tests["label"] = lambda v: isinstance(v, Label)
    env.tests["tuple"] = lambda v: isinstance(v, tuple)
    env.tests["datetime_value"] = lambda v: isinstance(v, datetime)
    env.tests["number_value"] = lambda v: isinstance(v, int) and not isinstance(v, bool)
    env.tests["hexdigest"] = lambda v: isinstance(v, str) and _HEX64.fullmatch(v) is not None
    return env


def render_html(data: ReportData, lang: str = "zh-CN") -> str:
    """The report as one HTML document in ``lang`` (zh-CN or en)."""
    lang = checked_lang(lang)

    def fmt(value: Any) -> str:
        return cell_text(value, lang, data.timezone)

    groups = summary_groups(data, lang)
    sections = [s for s in build_sections(data, lang) if s.key != "summary"]
    template = _environment().get_template("report.html.j2")
    return template.render(
        lang=lang, kind=data.kind, ref=str(data.ref), trail_head=data.trail_head,
        title=pick(data.title, lang) or t(f"report.title.{data.kind}", lang),
        organisation=pick(data.organisation, lang),
        tz_note=t("report.timezone_note", lang).format(
            tz=data.timezone, offset=utc_offset(data.generated_at, data.timezone)),
        report_group=groups[0], groups=groups[1:], sections=sections,
        fmt=fmt, t=lambda key: t(key, lang),
    )
