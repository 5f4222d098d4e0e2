"""What the policy pages need: versions, line diffs, and the impact of a change or a rollback before it
goes live (computed by ``app.policy.impact`` on a candidate engine).  No HTTP here."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from app.authz.policy import BUNDLE_FILES, Policy, PolicyDelta
from app.authz.rules import Inherit
from app.console.service import parse_time
from app.errors import Conflict, InvalidRequest
from app.policy.impact import Impact, delta_between, policy_impact

MAX_LINES = 1000  # as the API's PolicyChangeCreate
MAX_REASON = 2000
MAX_DIFF_LINES = 5000  # per file shown; the counts stay exact


@dataclass(frozen=True)
class Preview:
    """A change not yet made: its lines, the version it was computed on, and who gains and loses what."""

    impact: Impact
    base: int
    added: list[str]
    removed: list[str]
    departments: dict[str, str] = field(default_factory=dict)  # department id -> name


def version_rows(services: Any) -> list[dict[str, Any]]:
    """Every version, newest first (the service's own list), the first marked current."""
    people = _people(services)
    with services.factory() as session:
        versions = services.policy.list_versions(session)
        return [{"id": v.id, "parent_id": v.parent_id, "created_at": parse_time(v.created_at),
                 "created_by": v.created_by, "author": _author(people, v.created_by), "reason": v.reason,
                 "digest": v.digest, "current": i == 0} for i, v in enumerate(versions)]


def version_files(services: Any, version_id: int) -> dict[str, Any]:
    """One version with its files, or NotFound."""
    with services.factory() as session:
        v = services.policy.get_version_or_raise(session, version_id)
        active = services.policy.active_version(session)
        return {"id": v.id, "parent_id": v.parent_id, "created_at": parse_time(v.created_at),
                "created_by": v.created_by, "author": _author(_people(services), v.created_by), "reason": v.reason,
                "digest": v.digest, "current": active is not None and active.id == v.id, "files": dict(v.files)}


def file_diffs(old: dict[str, str], new: dict[str, str]) -> list[dict[str, Any]]:
    """A unified line diff of each bundle file: [(css class, line)] with counts; unchanged files flagged."""
    out = []
    for name in [*BUNDLE_FILES, *sorted((set(old) | set(new)) - set(BUNDLE_FILES))]:
        a, b = old.get(name, "").splitlines(), new.get(name, "").splitlines()
        lines: list[tuple[str, str]] = []
        for line in difflib.unified_diff(a, b, f"a/{name}", f"b/{name}", lineterm="", n=3):
            if line.startswith(("---", "+++")):
                continue
            cls = {"@": "hunk", "+": "add", "-": "del"}.get(line[:1], "ctx")
            lines.append((cls, line))
        out.append({"name": name, "lines": lines[:MAX_DIFF_LINES], "cut": max(0, len(lines) - MAX_DIFF_LINES),
                    "added": sum(1 for c, _ in lines if c == "add"), "removed": sum(1 for c, _ in lines if c == "del")})
    return out


def parse_lines(text: str) -> list[str]:
    """Policy lines of a textarea: one per line, blanks and # comments skipped."""
    return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]


def read_change(form: dict[str, str]) -> tuple[list[str], list[str], str]:
    """(add, remove, reason) of a change form, or InvalidRequest (the API's limits)."""
    add, remove, reason = parse_lines(form.get("add", "")), parse_lines(form.get("remove", "")), form.get(
        "reason", "").strip()
    if not add and not remove:
        raise InvalidRequest("policy.err.no_lines")
    if len(add) > MAX_LINES or len(remove) > MAX_LINES:
        raise InvalidRequest("policy.err.too_many")
    read_reason(reason)
    return add, remove, reason


def read_reason(reason: str) -> str:
    """A change's reason: required, at most 2,000 characters."""
    if not reason.strip():
        raise InvalidRequest("policy.err.reason")
    if len(reason) > MAX_REASON:
        raise InvalidRequest("policy.err.reason_long")
    return reason.strip()


def preview_change(services: Any, add: list[str], remove: list[str]) -> Preview:
    """The impact of adding and removing lines, validated and tested as the service will (nothing changed)."""
    services.policy.live.catch_up()  # preview against the newest version, as change_rules will edit it
    state = services.holder.require()
    new, delta = services.policy.validate_edit(state.engine, add, remove)
    return _preview(state, new, delta)


def preview_rollback(services: Any, to_version: int) -> Preview:
    """The impact of making an earlier version current again (nothing changed)."""
    with services.factory() as session:
        files = dict(services.policy.get_version_or_raise(session, to_version).files)
    services.policy.live.catch_up()
    state = services.holder.require()
    new = services.policy.validate(files)
    return _preview(state, new, delta_between(state.engine.policy, new))


def _preview(state: Any, new: Policy, delta: PolicyDelta) -> Preview:
    gone = (*delta.rules_removed, *delta.field_rules_removed, *delta.inherits_removed)
    came = (*delta.rules_added, *delta.field_rules_added, *delta.inherits_added)
    return Preview(policy_impact(state, new, delta), state.policy_version_id, [_text(i) for i in came],
                   [_text(i) for i in gone], dict(state.directory.department_names))


def check_base(services: Any, base: str) -> None:
    """Conflict unless the active version is still the one the preview was computed on."""
    with services.factory() as session:
        active = services.policy.active_version(session)
    if active is None or str(active.id) != base.strip():
        raise Conflict("policy.err.moved")


def _text(item: Any) -> str:
    return f"g, {item.role}, {item.parent}, {item.dom}" if isinstance(item, Inherit) else str(item.text)


def _people(services: Any) -> Any:
    state = services.holder.current
    return state.directory.people if state is not None else {}


def _author(people: Any, created_by: str) -> str:
    """The name of a version's author when they are a person (API clients and "test" have none)."""
    person = people.get(created_by)
    return str(person.name) if person is not None else ""
