"""Structural checks of a snapshot before anything is written: a snapshot that fails them is refused whole.

Structural problems (a missing or duplicated key, a wrong status, a department tree with a cycle, an
assignment naming an account or role the snapshot lacks, oversized values, control characters) make
the whole snapshot invalid: it was truncated or produced wrongly, and applying part of it would
half-apply a source.  Problems confined to one record's optional value (an e-mail without ``@``) are
not structural: the value is dropped and the record reported, the rest applies.
"""

from __future__ import annotations

import re
from dataclasses import replace

from app.errors import InvalidRequest
from app.sync.canonical import ACCOUNT_STATUSES, SCOPE_TYPES, Snapshot, SourceAccount

MAX_KEY = 200
MAX_NAME = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MOBILE = re.compile(r"^\+?[0-9][0-9 -]{4,30}$")


class InvalidSnapshot(InvalidRequest):
    """A snapshot that cannot be applied as a whole; nothing was changed."""

    status = 422
    code = "invalid_snapshot"


def check_snapshot(snap: Snapshot, max_rows: int) -> tuple[Snapshot, list[tuple[str, str, str]]]:
    """The snapshot with bad optional values dropped, and those per-record notes; or InvalidSnapshot."""
    problems: list[str] = []
    rows = len(snap.departments) + len(snap.accounts) + len(snap.roles) + len(snap.assignments)
    if rows > max_rows:
        raise InvalidSnapshot(f"snapshot has {rows:,} rows; at most {max_rows:,} per snapshot "
                              "(ACCESSGOV_SYNC__MAX_ROWS)")
    dept_keys = _keys("department", [d.key for d in snap.departments], problems)
    account_keys = _keys("account", [a.key for a in snap.accounts], problems)
    role_keys = _keys("role", [r.key for r in snap.roles], problems)
    for d in snap.departments:
        _text(f"department {d.key}", "name", d.name, problems, required=True)
        if d.status not in ("active", "disabled"):
            problems.append(f"department {d.key}: status must be active or disabled, not {d.status!r}")
        if d.parent_key is not None and "departments" in snap.complete and d.parent_key not in dept_keys:
            problems.append(f"department {d.key}: parent {d.parent_key} is not in the snapshot")
    problems.extend(_cycles({d.key: d.parent_key for d in snap.departments}))
    notes: list[tuple[str, str, str]] = []
    accounts = []
    for a in snap.accounts:
        where = f"account {a.key}"
        _text(where, "name", a.name, problems, required=True)
        for attr in ("login", "employee_no", "position", "manager_key", "primary_department"):
            _text(where, attr, getattr(a, attr), problems)
        if a.status not in ACCOUNT_STATUSES:
            problems.append(f"{where}: status must be one of {', '.join(ACCOUNT_STATUSES)}, not {a.status!r}")
        for key in a.department_keys:
            _text(where, "department", key, problems)
            if "departments" in snap.complete and snap.departments and key not in dept_keys:
                problems.append(f"{where}: department {key} is not in the snapshot")
        if a.primary_department is not None and a.primary_department not in a.department_keys:
            problems.append(f"{where}: primary department {a.primary_department} is not one of its departments")
        accounts.append(_clean_optional(a, notes))
    for r in snap.roles:
        _text(f"role {r.key}", "name", r.name, problems, required=True)
    for i, asg in enumerate(snap.assignments):
        where = f"assignment {i + 1} ({asg.account_key} -> {asg.role_key})"
        if asg.account_key not in account_keys and "accounts" in snap.complete:
            problems.append(f"{where}: account {asg.account_key} is not in the snapshot")
        if asg.role_key not in role_keys and "roles" in snap.complete:
            problems.append(f"{where}: role {asg.role_key} is not in the snapshot")
        if asg.scope_type is not None and asg.scope_type not in SCOPE_TYPES:
            problems.append(f"{where}: scope must be one of {', '.join(SCOPE_TYPES)}, not {asg.scope_type!r}")
        if asg.scope_type in ("listed",) and not asg.scope_keys:
            problems.append(f"{where}: a listed scope names its departments")
    if len(set(snap.assignments)) != len(snap.assignments):
        problems.append("assignments: the same assignment appears twice")
    if problems:
        shown = problems[:200]
        more = [f"... and {len(problems) - 200} more"] if len(problems) > 200 else []
        raise InvalidSnapshot(f"snapshot of {snap.source} has {len(problems)} problem(s); nothing was changed",
                              details=shown + more)
    return replace(snap, accounts=tuple(accounts)), notes


def _keys(kind: str, keys: list[str], problems: list[str]) -> set[str]:
    seen: set[str] = set()
    for key in keys:
        if not isinstance(key, str) or not key.strip():
            problems.append(f"{kind}: a key is missing or empty")
            continue
        if len(key) > MAX_KEY or _CONTROL.search(key):
            problems.append(f"{kind} {key[:40]!r}: keys are at most {MAX_KEY} characters without control characters")
        if key in seen:
            problems.append(f"{kind} {key}: appears twice")
        seen.add(key)
    return seen


def _text(where: str, attr: str, value: str | None, problems: list[str], *, required: bool = False) -> None:
    if value is None:
        if required:
            problems.append(f"{where}: {attr} is missing")
        return
    if not isinstance(value, str):
        problems.append(f"{where}: {attr} must be a string")
    elif required and not value.strip():
        problems.append(f"{where}: {attr} is empty")
    elif len(value) > MAX_NAME or _CONTROL.search(value):
        problems.append(f"{where}: {attr} is longer than {MAX_NAME} characters or holds control characters")


def _cycles(parents: dict[str, str | None]) -> list[str]:
    out: list[str] = []
    done: set[str] = set()
    for start in parents:
        path: list[str] = []
        node: str | None = start
        while node is not None and node not in done:
            if node in path:
                out.append(f"department {node}: the parent chain loops ({' -> '.join([*path, node])})")
                break
            path.append(node)
            node = parents.get(node)
        done.update(path)
    return out


def _clean_optional(a: SourceAccount, notes: list[tuple[str, str, str]]) -> SourceAccount:
    """Drop an unusable e-mail or mobile (reported), normalise the usable ones."""
    email, mobile = a.email, a.mobile
    if email is not None:
        email = email.strip().lower()
        if email.count("@") != 1 or len(email) > 320 or _CONTROL.search(email) or " " in email:
            notes.append(("account", a.key, f"e-mail {a.email!r} is not an address; ignored"))
            email = None
    if mobile is not None:
        mobile = mobile.strip()
        if not _MOBILE.match(mobile):
            notes.append(("account", a.key, f"mobile {a.mobile!r} is not a phone number; ignored"))
            mobile = None
        else:
            digits = re.sub(r"[^0-9]", "", mobile)
            if len(digits) == 11 and digits.startswith("1"):
                mobile = "+86" + digits
            elif len(digits) == 13 and digits.startswith("861"):
                mobile = "+" + digits
    return replace(a, email=email or None, mobile=mobile or None)
