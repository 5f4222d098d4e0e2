"""Rendering: the Jinja2 environment, the page context, and the trend chart's geometry (inline SVG)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request

from app.console import i18n

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)
_env.filters["json_text"] = lambda value: json.dumps(value, ensure_ascii=False, default=str)  # escaped by autoescape


# The console's sections: (nav id, href, the action its page is guarded by, the duties the rules give it).
# Links are shown by duty so nobody is shown a door that is shut; the page itself is still decided by
# the engine (tests/test_console_nav.py checks this table against policies/rules.csv).
NAV: tuple[tuple[str, str, str, frozenset[str]], ...] = (
    ("dashboard", "/console/", "view_dashboard",
     frozenset({"console_system_admin", "console_security_admin", "console_auditor"})),
    ("findings", "/console/findings", "view_findings", frozenset({"console_security_admin", "console_auditor"})),
    ("campaigns", "/console/campaigns", "view_campaigns", frozenset({"console_security_admin", "console_auditor"})),
    ("people", "/console/people", "view_people", frozenset({"console_security_admin", "console_auditor"})),
    ("policy", "/console/policy", "view_policy", frozenset({"console_security_admin", "console_auditor"})),
    ("decisions", "/console/decisions", "view_decision_log", frozenset({"console_auditor"})),
    ("trail", "/console/trail", "view_trail", frozenset({"console_auditor"})),
    ("sync", "/console/sync", "view_sync", frozenset({"console_system_admin", "console_security_admin"})),
    ("reports", "/console/reports", "view_reports", frozenset({"console_security_admin", "console_auditor"})),
)


def nav_for(duty: str) -> list[tuple[str, str]]:
    """(nav id, href) of the sections a duty may open."""
    return [(key, href) for key, href, _action, duties in NAV if duty in duties]


@dataclass(frozen=True)
class Chart:
    """Bars of a small chart, in SVG user units."""

    width: int
    height: int
    bars: list[dict[str, Any]]
    baseline: int


def trend_chart(points: list[dict[str, Any]], *, width: int = 480, height: int = 200) -> Chart:
    """Bar geometry for (quarter, open) points; the tallest bar fills the plot."""
    top, bottom, left = 24, 36, 16
    plot_h = height - top - bottom
    most = max((p["open"] for p in points), default=0) or 1
    slot = (width - 2 * left) / max(len(points), 1)
    bars = []
    for i, p in enumerate(points):
        h = round(plot_h * p["open"] / most)
        x = round(left + i * slot + slot * 0.2)
        bars.append({"x": x, "y": top + plot_h - h, "w": round(slot * 0.6), "h": h, "label": p["quarter"],
                     "value": p["open"], "cx": round(left + i * slot + slot / 2)})
    return Chart(width, height, bars, top + plot_h)


def render(request: Request, template: str, *, lang: str, **context: Any) -> str:
    """A console page in ``lang``."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")

    def t(key: str, **values: object) -> str:
        return i18n.t(key, lang, **values)

    def label(group: str, code: str | None) -> str:
        return i18n.label(group, code, lang)

    def when(at: Any) -> str:
        return i18n.format_datetime(at, lang, context.get("tz", "Asia/Shanghai")) if at else ""

    def number(value: int | float) -> str:
        return i18n.format_number(value, lang)

    base = {"lang": lang, "html_lang": "en" if lang == "en" else "zh-CN", "t": t, "label": label, "when": when,
            "number": number, "here_quoted": quote(here, safe=""), "nav_for": nav_for,
            "other_langs": [x for x in i18n.LANGS if x != lang]}
    return _env.get_template(template).render(**base, **context)
