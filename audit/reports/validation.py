"""Checks shared by the renderers."""

from __future__ import annotations

import re

from audit.i18n import is_supported, normalise_lang

# Characters XML 1.0 (XLSX, the PDF's paragraph markup) cannot carry; a hostile name must not break a report.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def checked_lang(lang: str) -> str:
    """``lang`` as zh-CN or en; ValueError for a language the reports do not speak."""
    if not is_supported(lang):
        raise ValueError(f"reports are written in zh-CN or en, not {lang!r}")
    return normalise_lang(lang)


def printable(text: str) -> str:
    """``text`` without control characters (tab and newlines stay)."""
    return _CONTROL.sub("\ufffd", text)
