"""Checking an evidence pack: every part against the manifest, the manifest against its digest."""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from typing import Any

import orjson

from audit.reports.evidence import MANIFEST, MANIFEST_DIGEST, PACK_FORMAT, SUMS, sha256_hex

MAX_PACK_MEMBER = 2 * 1024**3  # a member claiming more than this is refused, not read


def _read_manifest(body: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        manifest = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return None, [f"{MANIFEST}: not JSON ({exc})"]
    if not isinstance(manifest, dict) or not isinstance(manifest.get("parts"), list):
        return None, [f"{MANIFEST}: no list of parts"]
    if manifest.get("format") != PACK_FORMAT:
        return manifest, [f"{MANIFEST}: format {manifest.get('format')!r}, expected {PACK_FORMAT!r}"]
    return manifest, []


def _check_parts(manifest: dict[str, Any], members: dict[str, bytes]) -> list[str]:
    problems: list[str] = []
    listed: set[str] = set()
    for part in manifest["parts"]:
        path = part.get("path") if isinstance(part, dict) else None
        if not isinstance(path, str):
            problems.append(f"{MANIFEST}: a part without a path: {part!r}")
            continue
        listed.add(path)
        body = members.get(path)
        if body is None:
            problems.append(f"{path}: listed in the manifest but missing from the pack")
            continue
        if len(body) != part.get("size"):
            problems.append(f"{path}: size {len(body)}, the manifest says {part.get('size')}")
        if sha256_hex(body) != part.get("sha256"):
            problems.append(f"{path}: SHA-256 {sha256_hex(body)}, the manifest says {part.get('sha256')}")
    for path in sorted(set(members) - listed - {MANIFEST, MANIFEST_DIGEST, SUMS}):
        problems.append(f"{path}: in the pack but not in the manifest")
    return problems


def _check_sums(members: dict[str, bytes]) -> list[str]:
    body = members.get(SUMS)
    if body is None:
        return [f"{SUMS}: missing"]
    problems = []
    for line in body.decode("utf-8", "replace").splitlines():
        digest, _, path = line.partition("  ")
        if path not in members:
            problems.append(f"{SUMS}: names {path!r}, which is not in the pack")
        elif sha256_hex(members[path]) != digest:
            problems.append(f"{SUMS}: {path} does not match its line")
    return problems


def verify_evidence_pack(zip_bytes: bytes, *, expected_digest: str | None = None) -> list[str]:
    """Every problem with the pack (an empty list: intact); ``expected_digest`` is the digest recorded elsewhere."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except zipfile.BadZipFile as exc:
        return [f"not a ZIP archive: {exc}"]
    with archive:
        names = [i.filename for i in archive.infolist()]
        duplicates = [n for n, count in Counter(names).items() if count > 1]
        if duplicates:
            return [f"{n}: more than one entry with this name" for n in sorted(duplicates)]
        too_big = [i.filename for i in archive.infolist() if i.file_size > MAX_PACK_MEMBER]
        if too_big:
            return [f"{n}: larger than {MAX_PACK_MEMBER} bytes, not read" for n in too_big]
        try:
            members = {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}
        except (zipfile.BadZipFile, OSError) as exc:  # a corrupted entry fails its CRC check here
            return [f"the archive is damaged: {exc}"]
    if MANIFEST not in members:
        return [f"{MANIFEST}: missing"]
    digest = sha256_hex(members[MANIFEST])
    problems: list[str] = []
    recorded = members.get(MANIFEST_DIGEST, b"").decode("utf-8", "replace").split()
    if not recorded:
        problems.append(f"{MANIFEST_DIGEST}: missing")
    elif recorded[0] != digest:
        problems.append(f"{MANIFEST}: SHA-256 {digest}, {MANIFEST_DIGEST} says {recorded[0]}")
    if expected_digest is not None and expected_digest.lower() != digest:
        problems.append(f"{MANIFEST}: SHA-256 {digest}, expected {expected_digest}")
    manifest, manifest_problems = _read_manifest(members[MANIFEST])
    problems += manifest_problems
    if manifest is not None and isinstance(manifest.get("parts"), list):
        problems += _check_parts(manifest, members)
    problems += _check_sums(members)
    return problems
