"""What the console pages need: who signed in, what they may do (asked of the decision service),
and the dashboard's figures.  No HTTP here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import desc, select

from app.decisions.resolve import Caller
from app.decisions.schemas import EvaluationRequest
from app.directory.models import Account, Person
from app.directory.service import held_duties
from app.sync.models import SyncRun
from audit import tables as t

log = logging.getLogger(__name__)
CONSOLE_TYPE = "accessgov.console"
CALLER = Caller(client_id="accessgov-console", scopes=frozenset())
TREND_QUARTERS = 4


@dataclass(frozen=True)
class SignedInPerson:
    """The directory's person behind an IdP subject, with the console duties the directory gives them."""

    id: str
    name: str
    duties: list[str]


def resolve_person(services: Any, *, source: str, subject: str) -> SignedInPerson | None:
    """The active person an IdP ``sub`` belongs to: the source's account of that id, else person.idp_subject."""
    with services.factory() as session:
        account = session.scalars(select(Account).where(Account.system == source, Account.local_id == subject)).first()
        person = None
        if account is not None and account.status == "active" and account.person_id is not None:
            person = session.get(Person, account.person_id)
        if person is None:
            person = session.scalars(select(Person).where(Person.idp_subject == subject)).first()
        if person is None or person.status != "active":
            return None
        return SignedInPerson(person.id, person.name, held_duties(session, person.id))


def resolve_person_by_id(services: Any, person_id: str) -> SignedInPerson | None:
    """A signed-in person as the directory has them now (None: gone or no longer active)."""
    with services.factory() as session:
        person = session.get(Person, person_id)
        if person is None or person.status != "active":
            return None
        return SignedInPerson(person.id, person.name, held_duties(session, person.id))


def record_sign_in(services: Any, *, source: str, claims: dict[str, Any]) -> None:
    """Hand the verified claims to the IdP source's claims ingestion (records the sign-in; grants nothing)."""
    result = services.sync.ingest_claims(source, claims, actor="accessgov-console", kind="id_token")
    log.info("console sign-in recorded", extra={"source": source, "status": result.get("status")})


def console_department(services: Any) -> str:
    """The department the console belongs to: the root of the company (a duty must be held company-wide)."""
    state = services.holder.current
    if state is None or not state.directory.departments:
        return ""
    deps = state.directory.departments
    return str(min(deps, key=lambda d: (deps[d].count("/"), deps[d])))


def decide(services: Any, *, person_id: str, action: str, target: str) -> dict[str, Any]:
    """Ask the decision service (the AuthZEN path, so the decision is logged) whether the person may."""
    request = EvaluationRequest.model_validate({
        "subject": {"type": "user", "id": person_id}, "action": {"name": action},
        "resource": {"type": CONSOLE_TYPE, "id": target, "properties": {"department": console_department(services)}},
    })
    return services.decisions.evaluate(caller=CALLER, request=request)  # type: ignore[no-any-return]


# -- the dashboard ---------------------------------------------------------------------------------


def quarter_of(at: datetime) -> tuple[int, int]:
    """(year, quarter) of a local time."""
    return at.year, (at.month - 1) // 3 + 1


def quarter_ends(now: datetime, count: int, tz: str) -> list[tuple[str, datetime]]:
    """The last ``count`` quarters as (label, end): past quarters end at their last instant, this one now."""
    local = now.astimezone(ZoneInfo(tz))
    year, quarter = quarter_of(local)
    out: list[tuple[str, datetime]] = []
    for back in range(count):
        q, y = quarter - back, year
        while q < 1:
            q, y = q + 4, y - 1
        if back == 0:
            end = now
        else:
            nq, ny = (q + 1, y) if q < 4 else (1, y + 1)
            end = datetime(ny, 3 * (nq - 1) + 1, 1, tzinfo=ZoneInfo(tz)).astimezone(UTC) - timedelta(microseconds=1)
        out.append((f"{y}Q{q}", end))
    return list(reversed(out))


def open_trend(services: Any, *, tz: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Findings open at the end of each of the last quarters, replayed from the findings' history."""
    ends = quarter_ends(now or datetime.now(UTC), TREND_QUARTERS, tz)
    with services.audit.engine.connect() as conn:
        events = conn.execute(select(t.finding_events.c.finding_id, t.finding_events.c.at,
                                     t.finding_events.c.to_status)
                              .order_by(t.finding_events.c.at, t.finding_events.c.id)).all()
    counts = {label: 0 for label, _ in ends}
    status_at: dict[int, str] = {}
    index = 0
    for label, end in ends:
        while index < len(events) and _utc(events[index].at) <= end:
            status_at[events[index].finding_id] = events[index].to_status
            index += 1
        counts[label] = sum(1 for s in status_at.values() if s == "open")
    return [{"quarter": label, "open": counts[label]} for label, _ in ends]


def sync_health(services: Any) -> list[dict[str, Any]]:
    """The last run of every configured source (None: never ran)."""
    names = sorted(services.sync.config.sources) if services.sync is not None else []
    out = []
    with services.factory() as session:
        for name in names:
            run = session.scalars(select(SyncRun).where(SyncRun.source == name)
                                  .order_by(desc(SyncRun.started_at), desc(SyncRun.id)).limit(1)).first()
            out.append({"source": name, "run": None if run is None else {
                "id": run.id, "status": run.status, "started_at": _utc(run.started_at),
                "finished_at": _utc(run.finished_at) if run.finished_at else None, "message": run.message}})
    return out


def active_campaigns(services: Any) -> list[dict[str, Any]]:
    """Campaigns in progress with the share of their items decided."""
    out = []
    for campaign in services.audit.list_campaigns(status="active"):
        progress = campaign.get("progress") or {}
        total = int(progress.get("total") or 0)
        pending = int((progress.get("by_decision") or {}).get("pending", 0))
        out.append({"id": campaign["id"], "name": campaign["name"], "due_at": parse_time(campaign.get("due_at")),
                    "total": total, "decided": total - pending})
    return out


def dashboard(services: Any, *, tz: str) -> dict[str, Any]:
    """Everything the dashboard shows."""
    summary = services.audit.summary()
    last = summary.get("last_run")
    return {"open_by_severity": summary.get("open_by_severity", {}), "open_by_kind": summary.get("open_by_kind", {}),
            "open_total": int(summary.get("by_status", {}).get("open", 0)),
            "last_run_at": parse_time(last.get("finished_at") or last.get("started_at")) if last else None,
            "trend": open_trend(services, tz=tz), "campaigns": active_campaigns(services),
            "sync": sync_health(services)}


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    """An aware datetime of a stored value (ISO text or datetime); None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc(value)
    return _utc(datetime.fromisoformat(str(value)))
