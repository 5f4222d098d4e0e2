"""Audit runs and the findings' lifecycle, in the audit's own tables (``audit/tables.py``).

A run claims its ``run_key`` first, in a transaction of its own: a second process due at the
same time fails on the unique key and does nothing (exactly once).  The findings of a run are then
merged into the stored ones in one transaction:

* a new key is stored ``open`` (or ``suppressed`` when an active suppression matches it);
* a finding seen again stays as it is, except that an acceptance past its date, a suppression that
  ended, and a finding already ``remediated`` or ``resolved`` become ``open`` again;
* a stored finding the run no longer sees is ``resolved`` (the condition cleared).

Every status change is an ``audit_finding_events`` row: who, when, from, to and why.  Each finding
remembers the quarters it was seen in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import JSON, Connection, Table, and_, bindparam, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from audit import tables as t
from audit.checks import Finding

STATUSES = ("open", "accepted", "remediated", "resolved", "suppressed")
SETTABLE = {  # what a person may move a finding to, from which statuses
    "accepted": {"open", "suppressed", "accepted"},
    "remediated": {"open", "accepted"},
    "open": {"accepted", "remediated", "resolved", "suppressed"},
}


class AuditError(ValueError):
    """A request the audit refuses (the message says why)."""


def quarter_of(at: datetime, tz: str = "Asia/Shanghai") -> str:
    """'2026Q4': the quarter ``at`` falls in, in the audit's time zone."""
    local = at.astimezone(ZoneInfo(tz))
    return f"{local.year}Q{(local.month - 1) // 3 + 1}"


def claim_run(conn: Connection, *, run_key: str, trigger: str, actor: str, quarter: str, now: datetime,
              due_at: datetime | None = None, params: Mapping[str, Any] | None = None) -> int | None:
    """Insert the run's row (committed by the caller at once); None when the key is taken."""
    try:
        with conn.begin_nested():
            rid = conn.execute(insert(t.runs).values(
                run_key=run_key, trigger=trigger, actor=actor, quarter=quarter, due_at=due_at, started_at=now,
                status="running", params=dict(params or {}), population={}, counts={}).returning(t.runs.c.id)
            ).scalar_one()
    except IntegrityError:
        return None
    return int(rid)


def finish_run(conn: Connection, run_id: int, *, status: str, now: datetime, counts: Mapping[str, Any] | None = None,
               population: Mapping[str, Any] | None = None, message: str | None = None) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": now, "message": message}
    if counts is not None:
        values["counts"] = dict(counts)
    if population is not None:
        values["population"] = dict(population)
    conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(**values))


def active_suppressions(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    rows = conn.execute(select(t.suppressions).where(and_(t.suppressions.c.revoked_at.is_(None),
                                                          t.suppressions.c.expires_at > now)))
    return [dict(r._mapping) for r in rows]


_MATCHABLE = ("person_id", "system", "account", "permission", "field")


def suppression_for(f: Finding, suppressions: Sequence[Mapping[str, Any]]) -> int | None:
    """The first active suppression matching a finding (kind, then every member of its ``match``)."""
    for s in suppressions:
        if s["kind"] not in ("*", f.kind):
            continue
        match = s["match"] or {}
        if all(getattr(f, k) == match[k] for k in _MATCHABLE if k in match):
            return int(s["id"])
    return None


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _json(value: Any) -> Any:
    """Findings carry mappings; the JSON columns want plain dicts (and lists for tuples).  Scalars,
    most of the values, are taken as they are without a call each."""
    if isinstance(value, Mapping):
        return {k: v if type(v) in _SCALARS else _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [v if type(v) in _SCALARS else _json(v) for v in value]
    return value


def merge_findings(conn: Connection, run_id: int, found: Iterable[Finding], *, quarter: str, now: datetime,
                   actor: str = "audit") -> dict[str, Any]:
    """Merge one run's findings into the stored ones (see the module's docstring); returns counts."""
    suppressions = active_suppressions(conn, now)
    live_suppressions = {int(s["id"]) for s in suppressions}
    stored = {r.key: r for r in conn.execute(select(
        t.findings.c.id, t.findings.c.key, t.findings.c.status, t.findings.c.quarters, t.findings.c.accepted_until,
        t.findings.c.suppression_id))}
    new_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    counts: dict[str, Any] = {"new": 0, "seen_again": 0, "reopened": 0, "resolved": 0, "suppressed": 0,
                              "by_kind": {}, "by_severity": {}}
    seen: set[str] = set()
    for f in found:
        seen.add(f.key)
        counts["by_kind"][f.kind] = counts["by_kind"].get(f.kind, 0) + 1
        counts["by_severity"][f.severity] = counts["by_severity"].get(f.severity, 0) + 1
        sup = suppression_for(f, suppressions)
        body = {"kind": f.kind, "severity": f.severity, "person_id": f.person_id, "system": f.system,
                "account": f.account, "permission": f.permission, "field": f.field, "grant_id": f.grant_id,
                "evidence": _json(f.evidence), "evidence_quality": f.evidence_quality,
                "recommendation": _json(f.recommendation), "last_run_id": run_id, "last_seen_at": now,
                "updated_at": now}
        old = stored.get(f.key)
        if old is None:
            status = "suppressed" if sup else "open"
            counts["new"] += 1
            counts["suppressed"] += status == "suppressed"
            new_rows.append({**body, "key": f.key, "status": status, "suppression_id": sup, "quarters": [quarter],
                             "first_run_id": run_id, "first_seen_at": now, "status_reason": None,
                             "status_owner": None, "accepted_until": None, "resolved_at": None})
            continue
        counts["seen_again"] += 1
        status, reason = old.status, None
        if status in ("remediated", "resolved"):
            status, reason = "open", "seen again after it was " + old.status
        elif status == "accepted" and old.accepted_until is not None and old.accepted_until <= now:
            status, reason = "open", "the accepted risk expired"
        elif status == "suppressed" and old.suppression_id not in live_suppressions:
            status, reason = "open", "the suppression ended"
        if status == "open" and sup:
            status, reason = "suppressed", f"matches suppression #{sup}"
        quarters = list(old.quarters or [])
        if quarter not in quarters:
            quarters.append(quarter)
        row = {**body, "b_id": old.id, "status": status, "quarters": quarters,
               "suppression_id": sup if status == "suppressed" else None}
        if status != old.status:
            counts["reopened"] += status == "open"
            events.append({"finding_id": old.id, "run_id": run_id, "at": now, "actor": actor,
                           "from_status": old.status, "to_status": status, "reason": reason})
            row.update(status_reason=reason, resolved_at=None)
        updates.append(row)
    if new_rows:
        # Inserted in bulk without RETURNING, then the run's new findings are read back by their
        # first run (psycopg composes a multi-row INSERT ... RETURNING in Python: most of the time
        # a store took).
        _insert_rows(conn, t.findings, new_rows)
        stored_new = conn.execute(select(t.findings.c.id, t.findings.c.status)
                                  .where(t.findings.c.first_run_id == run_id).order_by(t.findings.c.id))
        events.extend({"finding_id": i, "run_id": run_id, "at": now, "actor": actor, "from_status": None,
                       "to_status": st, "reason": "found"} for i, st in stored_new)
    if updates:
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in updates:
            by_shape.setdefault(tuple(sorted(row)), []).append(row)
        for rows in by_shape.values():
            _update_rows(conn, t.findings, rows)
    gone = [r for k, r in stored.items() if k not in seen and r.status in ("open", "accepted", "suppressed",
                                                                           "remediated")]
    if gone:
        ids = [r.id for r in gone]
        for chunk in _chunks(ids, 1000):
            conn.execute(update(t.findings).where(t.findings.c.id.in_(chunk)).values(
                status="resolved", resolved_at=now, updated_at=now, status_reason="the condition cleared"))
        events.extend({"finding_id": r.id, "run_id": run_id, "at": now, "actor": actor, "from_status": r.status,
                       "to_status": "resolved", "reason": "the condition cleared"} for r in gone)
        counts["resolved"] = len(gone)
    _insert_rows(conn, t.finding_events, events)
    counts["total"] = len(seen)
    return counts


# Bulk writes.  A run of 100,000 people stores ~80,000 findings and as many events, or updates as
# many findings seen again.  On PostgreSQL they go through COPY (psycopg's pipelined executemany
# costs tens of microseconds a row of this width, COPY a few); elsewhere one executemany per chunk.

def _insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows that all have the same keys."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        for chunk in _chunks(rows, 5000):
            conn.execute(insert(table), chunk)
        return
    _copy_rows(conn, table, table.name, list(rows[0]), rows)


def _update_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Update rows by their ``b_id``: each row sets the same columns.  On PostgreSQL the rows are
    copied into a temporary table and applied by one ``UPDATE ... FROM``."""
    if conn.dialect.name != "postgresql":
        stmt = update(table).where(table.c.id == bindparam("b_id"))
        for chunk in _chunks(rows, 1000):
            conn.execute(stmt, chunk)
        return
    columns = [c for c in rows[0] if c != "b_id"]
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    conn.execute(text(f"CREATE TEMPORARY TABLE audit_merge ON COMMIT DROP AS "  # noqa: S608 - our column names
                      f"SELECT id AS b_id, {names} FROM {table.name} WITH NO DATA"))
    _copy_rows(conn, table, "audit_merge", ["b_id", *columns], rows)
    assignments = ", ".join(f"{quote(c)} = m.{quote(c)}" for c in columns)
    conn.execute(text(f"UPDATE {table.name} SET {assignments} FROM audit_merge AS m "  # noqa: S608
                      f"WHERE {table.name}.id = m.b_id"))
    conn.execute(text("DROP TABLE audit_merge"))


def _copy_rows(conn: Connection, table: Table, target: str, columns: list[str],
               rows: Sequence[Mapping[str, Any]]) -> None:
    """COPY rows into ``target`` (``table`` or a table shaped like it); JSON columns as JSON text."""
    as_json = {c for c in columns if c in table.c and isinstance(table.c[c].type, JSON)}
    quote = conn.dialect.identifier_preparer.quote
    sql = f"COPY {target} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row([orjson.dumps(row[c]).decode() if c in as_json else row[c] for c in columns])
    finally:
        cursor.close()


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def set_status(conn: Connection, finding_id: int, *, to: str, actor: str, reason: str, now: datetime | None = None,
               until: datetime | None = None, owner: str | None = None) -> dict[str, Any]:
    """A person's decision on one finding: accept the risk until a date (with owner and reason),
    mark it remediated, or reopen it.  Refuses moves the lifecycle does not allow."""
    now = now or datetime.now(UTC)
    if to not in SETTABLE:
        raise AuditError(f"a finding cannot be set to {to!r}; allowed: {', '.join(sorted(SETTABLE))}")
    if not reason.strip():
        raise AuditError("a reason is required")
    row = conn.execute(select(t.findings).where(t.findings.c.id == finding_id).with_for_update()).first()
    if row is None:
        raise LookupError(f"finding {finding_id} not found")
    if row.status not in SETTABLE[to]:
        raise AuditError(f"a finding that is {row.status} cannot become {to}")
    values: dict[str, Any] = {"status": to, "status_reason": reason, "updated_at": now}
    if to == "accepted":
        if until is None or until <= now:
            raise AuditError("accepting a risk needs a future date (until)")
        if not owner:
            raise AuditError("accepting a risk needs an owner")
        values.update(accepted_until=until, status_owner=owner)
    else:
        values.update(accepted_until=None, status_owner=owner or actor)
    conn.execute(update(t.findings).where(t.findings.c.id == finding_id).values(**values))
    conn.execute(insert(t.finding_events).values(finding_id=finding_id, run_id=None, at=now, actor=actor,
                                                 from_status=row.status, to_status=to, reason=reason))
    return {**dict(row._mapping), **values}


def summary(conn: Connection) -> dict[str, Any]:
    """Findings by status, kind and severity (for the dashboard and the API)."""
    rows = conn.execute(select(t.findings.c.status, t.findings.c.kind, t.findings.c.severity, func.count())
                        .group_by(t.findings.c.status, t.findings.c.kind, t.findings.c.severity)).all()
    out: dict[str, Any] = {"by_status": {}, "open_by_kind": {}, "open_by_severity": {}}
    for status, kind, severity, n in rows:
        out["by_status"][status] = out["by_status"].get(status, 0) + n
        if status == "open":
            out["open_by_kind"][kind] = out["open_by_kind"].get(kind, 0) + n
            out["open_by_severity"][severity] = out["open_by_severity"].get(severity, 0) + n
    return out
