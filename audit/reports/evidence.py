"""The evidence pack: every rendering of a report, its data as JSON and a manifest of SHA-256 digests, in one ZIP.

Layout (see audit/REPORTS.md)::

    manifest.json            every other part: path, size, sha256, media type; the report's identity
    manifest.sha256          "<sha256 of manifest.json>  manifest.json" (sha256sum -c checks it)
    SHA256SUMS               "<sha256>  <path>" for every part (sha256sum -c checks them all)
    data/report.json         kind, ref, title, organisation, quarter, generated_at, trail head, summary
    data/scope.json, data/population_at_launch.json, data/findings.json, data/decisions.json,
    data/population_after.json
    <lang>/report.html, <lang>/report.pdf, <lang>/report.xlsx, <lang>/csv/<section>.csv
    extra/<name>             parts the caller adds (a trail verification report, ...)

The pack's digest is the SHA-256 of manifest.json.  The ZIP is deterministic: names sorted, every
entry stamped ``generated_at``, so the same report data gives the same bytes and the same digest.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from audit.reports.csvfiles import render_csv
from audit.reports.data import ReportData
from audit.reports.fonts import ReportFont, resolve_font
from audit.reports.htmlpage import render_html
from audit.reports.pdfdoc import render_pdf
from audit.reports.validation import checked_lang
from audit.reports.workbook import render_xlsx

PACK_FORMAT = "accessgov-evidence-pack/1"
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
SUMS = "SHA256SUMS"
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_MEDIA_TYPES = {
    ".csv": "text/csv; charset=utf-8", ".html": "text/html; charset=utf-8", ".json": "application/json",
    ".pdf": "application/pdf", ".txt": "text/plain; charset=utf-8",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` in hex."""
    return hashlib.sha256(data).hexdigest()


def _jsonable(value: Any) -> Any:
    """Plain JSON values: datetimes in UTC ISO 8601, tuples as lists, mappings as objects with text keys."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def to_json(value: Any) -> bytes:
    """Deterministic, indented UTF-8 JSON (keys sorted)."""
    return orjson.dumps(_jsonable(value), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def data_parts(data: ReportData) -> dict[str, bytes]:
    """The report's data as JSON files."""
    listed = ("scope", "population_at_launch", "population_after", "findings", "decisions")
    report: dict[str, Any] = {f.name: getattr(data, f.name) for f in fields(data) if f.name not in listed}
    report["format"] = PACK_FORMAT
    return {
        "data/report.json": to_json(report),
        "data/scope.json": to_json(data.scope),
        "data/population_at_launch.json": to_json(data.population_at_launch),
        "data/population_after.json": to_json(data.population_after),
        "data/findings.json": to_json(data.findings),
        "data/decisions.json": to_json(data.decisions),
    }


def rendered_parts(data: ReportData, lang: str, font: ReportFont) -> dict[str, bytes]:
    """Every rendering of the report in one language."""
    parts = {
        f"{lang}/report.html": render_html(data, lang).encode("utf-8"),
        f"{lang}/report.xlsx": render_xlsx(data, lang),
        f"{lang}/report.pdf": render_pdf(data, lang, font=font),
    }
    parts.update({f"{lang}/csv/{name}": body for name, body in render_csv(data, lang).items()})
    return parts


def _media_type(path: str) -> str:
    suffix = path[path.rfind("."):] if "." in path.rsplit("/", 1)[-1] else ""
    return _MEDIA_TYPES.get(suffix.lower(), "application/octet-stream")


def _check_extra_name(name: str) -> str:
    if not _SAFE_NAME.fullmatch(name) or any(seg in (".", "..") for seg in name.split("/")):
        raise ValueError(f"extra part name {name!r}: use letters, digits, '.', '_', '-' and '/' only")
    return f"extra/{name}"


def manifest_for(data: ReportData, parts: Mapping[str, bytes]) -> bytes:
    """manifest.json for ``parts``."""
    listed = [{"path": path, "size": len(body), "sha256": sha256_hex(body), "media_type": _media_type(path)}
              for path, body in sorted(parts.items())]
    return to_json({
        "format": PACK_FORMAT, "hash_algorithm": "sha256", "kind": data.kind, "ref": str(data.ref),
        "quarter": data.quarter, "generated_at": data.generated_at, "trail_head": data.trail_head,
        "trail_seq": data.trail_seq, "parts": listed,
    })


def build_evidence_pack(data: ReportData, *, langs: Sequence[str] = ("zh-CN", "en"),
                        extra: Mapping[str, bytes] | None = None,
                        font: ReportFont | None = None) -> tuple[bytes, str]:
    """The evidence pack as ZIP bytes and its digest (the SHA-256 of its manifest.json)."""
    font = font or resolve_font()
    parts = data_parts(data)
    for lang in dict.fromkeys(checked_lang(lang) for lang in langs):
        parts.update(rendered_parts(data, lang, font))
    for name, body in (extra or {}).items():
        path = _check_extra_name(name)
        if path in parts:
            raise ValueError(f"extra part {name!r} given twice")
        parts[path] = bytes(body)
    manifest = manifest_for(data, parts)
    digest = sha256_hex(manifest)
    sums = "".join(f"{sha256_hex(body)}  {path}\n" for path, body in sorted({**parts, MANIFEST: manifest}.items()))
    entries = {**parts, MANIFEST: manifest, MANIFEST_DIGEST: f"{digest}  {MANIFEST}\n".encode(),
               SUMS: sums.encode()}
    return _zip(entries, data.generated_at.astimezone(ZoneInfo(data.timezone))), digest


def _zip(entries: Mapping[str, bytes], at: datetime) -> bytes:
    stamp = (max(at.year, 1980), at.month, at.day, at.hour, at.minute, at.second - at.second % 2)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # unix, so that the mode above means what it says
            archive.writestr(info, entries[name])
    return out.getvalue()
