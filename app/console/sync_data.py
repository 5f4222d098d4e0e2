"""What the console's sync pages show: each source's health, and accounts that belong to no active person.

No HTTP here; runs, conflicts and held runs come from the sync service as the API gets them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select

from app.console.service import parse_time
from app.directory.models import Account, Person
from app.sync.models import SyncRun

ORPHAN_LIMIT = 500
RUN_LIMIT = 50
# The audit's findings about an account nobody (still) holds: an orphan, or a leaver's live account.
ACCOUNT_FINDINGS = ("orphan_account", "leaver_active")


def source_rows(services: Any, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every configured source with its connector, kind, last run and health."""
    sync = services.sync
    if sync is None:
        return []
    now = now or datetime.now(UTC)
    out = []
    with services.factory() as session:
        for name, cfg in sorted(sync.config.sources.items()):
            run = session.scalars(select(SyncRun).where(SyncRun.source == name)
                                  .order_by(SyncRun.id.desc()).limit(1)).first()
            last = None if run is None else {
                "id": run.id, "status": run.status, "started_at": parse_time(run.started_at),
                "finished_at": parse_time(run.finished_at), "message": run.message}
            out.append({"name": name, "connector": cfg.connector, "kind": cfg.kind,
                        "interval_minutes": cfg.interval_minutes, "pullable": name in sync.pullers,
                        "last": last, "health": health(last, cfg.interval_minutes, now)})
    return out


def health(last: dict[str, Any] | None, interval_minutes: int, now: datetime) -> str:
    """never | running | held | failing | stale (a scheduled source two intervals late) | ok."""
    if last is None:
        return "never"
    status = last["status"]
    if status in ("running", "held"):
        return str(status)
    if status in ("failed", "rejected"):
        return "failing"
    if interval_minutes > 0 and last["started_at"] < now - timedelta(minutes=2 * interval_minutes):
        return "stale"
    return "ok"


def run_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The service's runs with their times as datetimes (for ``when``)."""
    return [r | {"started_at": parse_time(r.get("started_at")), "finished_at": parse_time(r.get("finished_at"))}
            for r in runs]


def conflict_rows(conflicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The service's conflicts with their times as datetimes."""
    return [c | {"first_seen": parse_time(c.get("first_seen")), "last_seen": parse_time(c.get("last_seen"))}
            for c in conflicts]


def orphan_rows(services: Any) -> dict[str, Any]:
    """Active accounts linked to nobody, whose link was broken, or whose person is no longer active,
    each with the audit's open finding about it (if the last run saw it)."""
    unowned = or_(Account.person_id.is_(None), Account.link_state == "broken", Person.status != "active")
    query = (select(Account, Person.status).outerjoin(Person, Person.id == Account.person_id)
             .where(Account.status == "active", unowned))
    with services.factory() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.execute(query.order_by(Account.system, Account.local_id).limit(ORPHAN_LIMIT)).all()
        accounts = [(a.system, a.local_id, a.display_name, a.person_id, a.link_state, a.last_login_at, status)
                    for a, status in rows]
    found = services.audit.list_findings(kind=list(ACCOUNT_FINDINGS), status=["open"], limit=1000)
    findings = {(f["system"], f["account"]): f["id"] for f in found["items"]}
    items = []
    for system, local_id, name, person_id, link_state, last_login, person_status in accounts:
        reason = ("unlinked" if person_id is None else "link_broken" if link_state == "broken"
                  else f"person_{person_status}")
        items.append({"system": system, "account": local_id, "name": name or "", "person_id": person_id,
                      "reason": reason, "last_login_at": parse_time(last_login),
                      "finding_id": findings.get((system, local_id))})
    return {"total": total, "rows": items, "limit": ORPHAN_LIMIT}
