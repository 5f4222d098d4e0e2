"""What the decision-log and audit-trail pages read: the decision log searched like ``GET /v1/decisions``
(plus resource id, system and action, paged by keyset), one record, the trail's state and its verification.
No HTTP here."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.console.service import parse_time
from app.decisions.models import DecisionRecord, log_filter
from audit import tables as t
from audit import trail

log = logging.getLogger(__name__)
PAGE_SIZE, MAX_PAGE_SIZE = 50, 200
EFFECTS = ("any", "allow", "deny")
# (form field, longest value): the decision log's column widths
TEXT_FIELDS = (("person", 64), ("resource_type", 64), ("resource_id", 400), ("system", 32), ("action", 64))
QUERY_FIELDS = (*(name for name, _ in TEXT_FIELDS), "effect", "from", "to", "size")
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?$")
_SYSTEM_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_ID_RE = re.compile(r"^[0-9A-Za-z-]{1,36}$")


class BadQuery(ValueError):
    """A search parameter the page cannot use: ``key`` is the console word saying why, ``name`` the field."""

    def __init__(self, key: str, name: str) -> None:
        super().__init__(f"{name}: {key}")
        self.key, self.name = key, name


@dataclass(frozen=True)
class DecisionQuery:
    """A search of the decision log, validated; ``form`` keeps the values as given (for the form and links)."""

    person: str = ""
    resource_type: str = ""
    resource_id: str = ""
    system: str = ""
    action: str = ""
    effect: str = "any"
    since: datetime | None = None
    until: datetime | None = None
    after: str = ""
    size: int = PAGE_SIZE
    form: dict[str, str] = field(default_factory=dict)

    def link(self, *, after: str = "") -> str:
        """This search's URL, from its first page or after the record ``after``."""
        params = {k: v for k, v in self.form.items() if v and k in QUERY_FIELDS}
        if after:
            params["after"] = after
        return "/console/decisions" + (f"?{urlencode(params)}" if params else "")


def parse_query(params: Mapping[str, str], tz: str) -> DecisionQuery:
    """The search a query string asks for; ``BadQuery`` for a value it cannot mean."""
    form = {k: str(params.get(k, "")).strip() for k in (*QUERY_FIELDS, "after")}
    for name, longest in TEXT_FIELDS:
        value = form[name]
        if len(value) > longest:
            raise BadQuery("log.bad.too_long", name)
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise BadQuery("log.bad.text", name)
    if form["system"] and not _SYSTEM_RE.match(form["system"]):
        raise BadQuery("log.bad.system", "system")
    effect = form["effect"] or "any"
    if effect not in EFFECTS:
        raise BadQuery("log.bad.effect", "effect")
    since = parse_local_time(form["from"], tz, end=False, name="from")
    until = parse_local_time(form["to"], tz, end=True, name="to")
    if since is not None and until is not None and since >= until:
        raise BadQuery("log.bad.range", "to")
    if form["after"] and not _ID_RE.match(form["after"]):
        raise BadQuery("log.bad.cursor", "after")
    size = PAGE_SIZE
    if form["size"]:
        if not form["size"].isdigit() or len(form["size"]) > 6:
            raise BadQuery("log.bad.size", "size")
        size = min(max(int(form["size"]), 1), MAX_PAGE_SIZE)
    return DecisionQuery(person=form["person"], resource_type=form["resource_type"], resource_id=form["resource_id"],
                         system=form["system"], action=form["action"], effect=effect, since=since, until=until,
                         after=form["after"], size=size, form=form)


def parse_local_time(value: str, tz: str, *, end: bool, name: str) -> datetime | None:
    """A date or a local date and time (``datetime-local``) in the console's time zone, as UTC.

    An end is inclusive at the precision given: a day up to its last instant, a minute up to its last second;
    the calendar's first and last days bound nothing.
    """
    if not value:
        return None
    if not _TIME_RE.match(value):
        raise BadQuery("log.bad.time", name)
    try:
        if len(value) == 10:
            at = datetime.combine(date.fromisoformat(value), time(), ZoneInfo(tz))
            step = timedelta(days=1)
        else:
            at = datetime.fromisoformat(value.replace(" ", "T")).replace(tzinfo=ZoneInfo(tz))
            step = timedelta(minutes=1) if len(value) == 16 else timedelta(seconds=1)
    except ValueError:
        raise BadQuery("log.bad.time", name) from None
    try:
        return (at + step if end else at).astimezone(UTC)
    except OverflowError:  # the first or last representable day: no bound on that side
        return None


@dataclass(frozen=True)
class DecisionPage:
    """One page of a search, newest first, and the record the next page starts after (None: the last page)."""

    rows: list[dict[str, Any]]
    next_after: str | None


def search_decisions(factory: sessionmaker[Session], query: DecisionQuery) -> DecisionPage:
    """The decision log's records matching ``query``, newest first (ties by id), ``query.size`` of them.

    The filters of ``GET /v1/decisions`` (person, resource type, effect, time, ``until`` exclusive), plus
    resource id, system (the resource type's prefix) and action; the next page by keyset after a record.
    """
    r = DecisionRecord
    stmt = select(r).where(*log_filter(
        person_id=query.person, resource_type=query.resource_type, resource_id=query.resource_id,
        system=query.system, action=query.action, allowed=None if query.effect == "any" else query.effect == "allow",
        since=query.since, until=query.until)).order_by(r.at.desc(), r.id.desc()).limit(query.size + 1)
    with factory() as session:
        if query.after:
            anchor = session.execute(select(r.at, r.id).where(r.id == query.after)).first()
            if anchor is None:
                raise BadQuery("log.bad.cursor", "after")
            stmt = stmt.where(or_(r.at < anchor.at, and_(r.at == anchor.at, r.id < anchor.id)))
        found = list(session.scalars(stmt))
    more = len(found) > query.size
    rows = [decision_row(d) for d in found[:query.size]]
    return DecisionPage(rows, rows[-1]["id"] if more and rows else None)


def get_decision(factory: sessionmaker[Session], decision_id: str) -> dict[str, Any] | None:
    """One record of the decision log (None: no such record)."""
    if not _ID_RE.match(decision_id):
        return None
    with factory() as session:
        record = session.get(DecisionRecord, decision_id)
        return decision_row(record) if record is not None else None


def decision_row(d: DecisionRecord) -> dict[str, Any]:
    """A record as the pages show it."""
    reason = dict(d.reason or {})
    rule = reason.get("rule") if isinstance(reason.get("rule"), dict) else None
    return {"id": d.id, "at": parse_time(d.at), "caller": d.caller, "subject": d.subject, "person_id": d.person_id,
            "action": d.action, "resource_type": d.resource_type, "resource_id": d.resource_id,
            "system": d.resource_type.partition(".")[0] if "." in d.resource_type else "",
            "allowed": bool(d.allowed), "reason": reason, "reason_code": str(reason.get("code") or ""),
            "rule_id": rule.get("id") if rule else None, "fields": dict(d.fields or {}),
            "policy_version": d.policy_version, "seal": d.seal}


def known_systems(services: Any) -> list[str]:
    """The systems of the loaded policy's resource types (for the search form)."""
    state = services.holder.current
    if state is None:
        return []
    return sorted({rt.system for rt in state.engine.policy.resources.values()})


def known_types(services: Any) -> list[str]:
    """The loaded policy's resource types (suggested in the search form)."""
    state = services.holder.current
    return sorted(state.engine.policy.resources) if state is not None else []


# -- the audit trail -------------------------------------------------------------------------------


def trail_state(engine: Any) -> dict[str, Any]:
    """Entries and records per kind, the head, the last entry and when it was sealed."""
    c = t.trail.c
    with engine.connect() as conn:
        kinds = conn.execute(select(c.kind, func.count(), func.coalesce(func.sum(c["count"]), 0))
                             .group_by(c.kind).order_by(c.kind)).all()
        last = conn.execute(select(c.seq, c.at, c.kind, c.source_table, c.hash).order_by(c.seq.desc()).limit(1)).first()
        head = conn.execute(select(t.trail_head.c.seq, t.trail_head.c.hash, t.trail_head.c.retained_from)).first()
    return {"kinds": [{"kind": k, "entries": int(n), "records": int(records)} for k, n, records in kinds],
            "entries": sum(int(n) for _, n, _ in kinds),
            "last": None if last is None else {"seq": last.seq, "at": parse_time(last.at), "kind": last.kind,
                                               "table": last.source_table, "hash": last.hash},
            "head": None if head is None else {"seq": head.seq, "hash": head.hash, "retained_from": head.retained_from}}


def verify_trail(engine: Any) -> dict[str, Any]:
    """``accessgov audit verify``: the chain walked and every sealed record re-hashed (reads only)."""
    try:
        with engine.connect() as conn:
            report = trail.verify(conn)
    except Exception:  # like the command line: "could not run" is an outcome to show, not a crash
        log.exception("the audit trail could not be verified from the console")
        return {"ran": False}
    return {"ran": True, "ok": report.ok, "entries": report.entries, "records": report.records,
            "head_seq": report.head_seq, "head_hash": report.head_hash, "retained_from": report.retained_from,
            "seconds": report.seconds, "more": report.more_problems, "notes": report.notes,
            "problems": [{"table": p.table, "ref": p.ref, "seq": p.seq, "what": p.what, "where": p.where(),
                          "link": _record_link(p)} for p in report.problems]}


def _record_link(p: trail.Problem) -> str | None:
    """The record page of a decision that is still there to read (edited, inserted, unsealed)."""
    if p.table != "decision_log" or not p.ref or "deleted" in p.what or "missing" in p.what:
        return None
    return f"/console/decisions/{p.ref}" if _ID_RE.match(p.ref) else None
