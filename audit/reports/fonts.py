"""The CJK font of the PDF reports: an embedded TrueType font when one is found, else reportlab's STSong-Light.

Looked for, in order: ``ACCESSGOV_REPORT_FONT`` (a .ttf/.ttc file, or a directory holding some),
the fonts vendored in ``audit/fonts/``, then the Debian packages fonts-wqy-microhei,
fonts-wqy-zenhei, fonts-arphic-uming/ukai and fonts-droid-fallback.  reportlab embeds (a subset of)
TrueType-outline fonts only: CFF-based OpenType such as Noto Sans CJK .otf is skipped.  Without any,
the PDF names the CID font STSong-Light, which is not embedded: a viewer substitutes its own Song
typeface (every Chinese PDF viewer has one), and the text stays extractable.  Which one was used
is logged and written into the PDF's keywords.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont

log = logging.getLogger(__name__)

FONT_ENV = "ACCESSGOV_REPORT_FONT"
CID_FALLBACK = "STSong-Light"
VENDORED_DIR = Path(__file__).resolve().parent.parent / "fonts"
SYSTEM_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf",
)
_FONT_SUFFIXES = (".ttf", ".ttc")
_lock = threading.Lock()
_registered: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class ReportFont:
    """The font a PDF is set in: reportlab's name for it, whether it is embedded and where it came from."""

    name: str
    embedded: bool
    source: str  # the font file, or "STSong-Light"

    def describe(self) -> str:
        """One line for the log and the PDF metadata."""
        how = "embedded TrueType" if self.embedded else "CID font, not embedded: the viewer substitutes"
        return f"font: {self.source} ({how})"


def _in_directory(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in _FONT_SUFFIXES)


def candidate_paths(configured: str | None = None, system: Sequence[str] = SYSTEM_FONTS) -> list[Path]:
    """Where to look, in order: the configured path (file or directory), vendored fonts, system fonts."""
    found: list[Path] = []
    setting = configured if configured is not None else os.environ.get(FONT_ENV, "")
    if setting:
        path = Path(setting).expanduser()
        if path.is_dir():
            found += _in_directory(path)
        elif path.is_file():
            found.append(path)
        else:
            log.warning("%s=%s: no such font file or directory", FONT_ENV, setting)
    if VENDORED_DIR.is_dir():
        found += _in_directory(VENDORED_DIR)
    found += [Path(p) for p in system if Path(p).is_file()]
    return found


def _register_ttf(path: Path) -> str:
    """Register ``path`` with reportlab (once) and return its name; TTFError if reportlab cannot use it."""
    key = str(path.resolve())
    with _lock:
        if key in _registered:
            return _registered[key]
        name = "AGCJK-" + hashlib.sha256(key.encode()).hexdigest()[:10]
        font = TTFont(name, key, subfontIndex=0) if path.suffix.lower() == ".ttc" else TTFont(name, key)
        if font.face.charToGlyph.get(ord("权")) is None:
            raise TTFError(f"{path} has no Chinese glyphs")
        pdfmetrics.registerFont(font)
        _registered[key] = name
        return name


def _register_cid() -> str:
    with _lock:
        if CID_FALLBACK not in _registered:
            pdfmetrics.registerFont(UnicodeCIDFont(CID_FALLBACK))
            _registered[CID_FALLBACK] = CID_FALLBACK
    return CID_FALLBACK


def resolve_font(paths: Iterable[Path] | None = None) -> ReportFont:
    """The first usable TrueType CJK font among ``paths`` (default ``candidate_paths()``), else STSong-Light."""
    for path in candidate_paths() if paths is None else paths:
        try:
            name = _register_ttf(path)
        except (TTFError, OSError, ValueError) as exc:
            log.warning("report font %s is not usable (%s); trying the next", path, exc)
            continue
        font = ReportFont(name=name, embedded=True, source=str(path))
        log.info("PDF reports: %s", font.describe())
        return font
    font = ReportFont(name=_register_cid(), embedded=False, source=CID_FALLBACK)
    log.warning("PDF reports: no TrueType CJK font found (set %s or install fonts-wqy-microhei); %s",
                FONT_ENV, font.describe())
    return font
