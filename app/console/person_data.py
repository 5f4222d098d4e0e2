"""What the person pages show: search, a person's accounts and grants (with where each came from),
effective permissions, an explanation, usage over time, findings and the least-privilege proposal.
No HTTP here; every answer comes from the service the matching API calls."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from app.console.service import CALLER
from app.decisions.models import DecisionRecord, Usage
from app.decisions.schemas import EvaluationRequest
from app.directory.models import Account, Delegation, Department, Grant, Person, Role
from app.errors import NotFound
from app.policy.models import Change

SEARCH_LIMIT = 50
USAGE_DAYS = 90
EFFECTIVE_SHOWN = 500
USAGE_ROWS = 30
PERSON_ID = re.compile(r"^[\w.\-:@]{1,64}$")
PERSON_STATUSES = ("active", "disabled", "left")


def valid_person_id(person_id: str) -> bool:
    """A person id the directory could hold (anything else is an unknown person)."""
    return bool(PERSON_ID.match(person_id))


def _like(column: Any, q: str) -> Any:
    return column.icontains(q, autoescape=True)


# -- search ----------------------------------------------------------------------------------------


def search_people(services: Any, *, q: str, status: str, limit: int = SEARCH_LIMIT, offset: int = 0
                  ) -> dict[str, Any]:
    """People whose id, name, employee no., department or an account (login or name) matches ``q``."""
    where: list[Any] = []
    if q:
        account = exists().where(Account.person_id == Person.id,
                                 or_(_like(Account.local_id, q), _like(Account.display_name, q)))
        where.append(or_(_like(Person.id, q), _like(Person.name, q), Person.employee_no == q,
                         _like(Department.name, q), Department.code == q, Department.id == q, account))
    if status:
        where.append(Person.status == status)
    base = select(Person, Department).outerjoin(Department, Department.id == Person.department_id).where(*where)
    with services.factory() as session:
        total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
        rows = session.execute(base.order_by(Person.id).limit(limit).offset(offset)).all()
        ids = [p.id for p, _ in rows]
        accounts: dict[str, list[str]] = {}
        for a in session.scalars(select(Account).where(Account.person_id.in_(ids)).order_by(
                Account.system, Account.local_id)):
            accounts.setdefault(str(a.person_id), []).append(f"{a.system}:{a.local_id}")
    items = [{"id": p.id, "name": p.name, "department": d.name if d else "", "path": d.path if d else "",
              "position": p.position, "status": p.status, "accounts": accounts.get(p.id, [])} for p, d in rows]
    return {"total": int(total), "items": items}


# -- the person ------------------------------------------------------------------------------------


def get_person(services: Any, person_id: str) -> dict[str, Any] | None:
    """The person with their department and manager, or None."""
    if not valid_person_id(person_id):
        return None
    with services.factory() as session:
        person = session.get(Person, person_id)
        if person is None:
            return None
        dept = session.get(Department, person.department_id) if person.department_id else None
        manager = session.get(Person, person.manager_id) if person.manager_id else None
        return {"id": person.id, "name": person.name, "employee_no": person.employee_no, "email": person.email,
                "department": dept.name if dept else "", "department_id": person.department_id,
                "path": dept.path if dept else "", "position": person.position, "status": person.status,
                "manager_id": person.manager_id, "manager": manager.name if manager else "",
                "hired_on": person.hired_on, "left_on": person.left_on}


def person_accounts(services: Any, person_id: str) -> list[dict[str, Any]]:
    """The person's accounts in every system (the same rows as GET /v1/accounts?person_id=)."""
    with services.factory() as session:
        rows = session.scalars(select(Account).where(Account.person_id == person_id)
                               .order_by(Account.system, Account.local_id)).all()
        return [{"id": a.id, "system": a.system, "local_id": a.local_id, "display_name": a.display_name,
                 "status": a.status, "last_login_at": _last_login(a), "link_method": a.link_method,
                 "link_state": a.link_state} for a in rows]


def _last_login(a: Account) -> datetime | None:
    """The later of the source's last login and the sign-in accessgov saw (as the audit reads it)."""
    login = _utc(a.last_login_at)
    seen = (a.attributes or {}).get("last_sign_in_at")
    if isinstance(seen, str):
        try:
            at = _utc(datetime.fromisoformat(seen))
        except ValueError:
            at = None
        if at is not None and (login is None or at > login):
            return at
    return login


def person_grants(services: Any, person_id: str, lang: str) -> dict[str, Any]:
    """The person's grants in force or suspended, those revoked, and the delegations they hold as deputy."""
    now = datetime.now(UTC)
    with services.factory() as session:
        grants = session.scalars(select(Grant).where(Grant.person_id == person_id).order_by(Grant.id)).all()
        paths = _department_names(session, {g.department_id for g in grants if g.department_id})
        titles = role_titles(session, lang)
        runs = _sync_runs(session, [g.id for g in grants if g.source_system != "manual"])
        rows = [_grant_row(g, paths, titles, runs, now) for g in grants]
        delegated = session.scalars(select(Delegation).where(Delegation.to_person_id == person_id,
                                                             Delegation.revoked_at.is_(None))
                                    .order_by(Delegation.id)).all()
        names = dict(session.execute(select(Person.id, Person.name).where(
            Person.id.in_({d.from_person_id for d in delegated}))).all())
        delegations = [{"id": d.id, "from_id": d.from_person_id, "from_name": names.get(d.from_person_id, ""),
                        "role": d.role, "role_title": titles.get(d.role, d.role), "valid_from": _utc(d.valid_from),
                        "valid_until": _utc(d.valid_until), "reason": d.reason, "created_by": d.created_by,
                        "in_force": _utc(d.valid_from) <= now < _utc(d.valid_until)}  # type: ignore[operator]
                       for d in delegated]
    return {"active": [r for r in rows if r["state"] != "revoked"],
            "revoked": [r for r in rows if r["state"] == "revoked"], "delegations": delegations}


def role_titles(session: Session, lang: str) -> dict[str, str]:
    """Each central role's title in the reader's language."""
    return {name: (en if lang == "en" else zh) or name
            for name, zh, en in session.execute(select(Role.name, Role.title_zh, Role.title_en))}


def _department_names(session: Session, ids: set[str]) -> dict[str, tuple[str, str]]:
    rows = session.execute(select(Department.id, Department.name, Department.path).where(Department.id.in_(ids)))
    return {i: (n, p) for i, n, p in rows}


def _sync_runs(session: Session, grant_ids: list[int]) -> dict[int, Any]:
    """The sync run that created each grant (from the change recorded with it)."""
    if not grant_ids:
        return {}
    targets = {f"grant:{i}": i for i in grant_ids}
    out: dict[int, Any] = {}
    for target, details in session.execute(select(Change.target, Change.details).where(
            Change.kind == "grant.create", Change.target.in_(targets))):
        run = (details or {}).get("sync_run")
        if run is not None:
            out[targets[target]] = run
    return out


def _grant_row(g: Grant, depts: dict[str, tuple[str, str]], titles: dict[str, str], runs: dict[int, Any],
               now: datetime) -> dict[str, Any]:
    name, path = depts.get(g.department_id, ("", "")) if g.department_id else ("", "")
    valid_from, valid_until = _utc(g.valid_from), _utc(g.valid_until)
    if g.revoked_at is not None:
        state = "revoked"
    elif g.suspended_at is not None:
        state = "suspended"
    elif valid_until is not None and valid_until <= now:
        state = "expired"
    elif valid_from is not None and now < valid_from:
        state = "pending"
    else:
        state = "active"
    return {"id": g.id, "role": g.role, "role_title": titles.get(g.role, g.role), "department_id": g.department_id,
            "department": name, "path": path, "subtree": g.include_subtree, "system": g.source_system,
            "source_role": g.source_role, "valid_from": valid_from, "valid_until": valid_until, "state": state,
            "origin": grant_origin(g, runs.get(g.id)), "granted_by": g.granted_by, "reason": g.reason,
            "created_at": _utc(g.created_at), "revoked_at": _utc(g.revoked_at), "revoked_by": g.revoked_by,
            "revoke_reason": g.revoke_reason, "suspend_reason": g.suspend_reason}


def grant_origin(g: Grant, sync_run: Any = None) -> dict[str, Any]:
    """Where a grant comes from: a campaign rollback, a least-privilege reduction, a source's sync, or by hand."""
    campaign = re.match(r"rollback of campaign (\d+) item (\d+)", g.reason or "")
    if campaign:
        return {"kind": "campaign", "campaign": int(campaign.group(1)), "item": int(campaign.group(2)),
                "by": g.granted_by}
    if (g.reason or "").startswith("least privilege:"):
        return {"kind": "least_privilege", "by": g.granted_by}
    if g.source_system != "manual":
        return {"kind": "sync", "source": g.source_system, "source_role": g.source_role, "run": sync_run,
                "by": g.granted_by}
    return {"kind": "manual", "by": g.granted_by}


def grant_of(services: Any, person_id: str, grant_id: int) -> Grant | None:
    """The person's grant ``grant_id`` (None: no such grant, or someone else's)."""
    with services.factory() as session:
        grant = session.get(Grant, grant_id)
        return grant if grant is not None and grant.person_id == person_id else None


# -- effective permissions and explain -------------------------------------------------------------


def effective(services: Any, person_id: str) -> dict[str, Any] | None:
    """GET /v1/people/{id}/effective-permissions's answer (None: not in the decision state yet)."""
    try:
        out: dict[str, Any] = services.insight.effective(person_id=person_id)
    except NotFound:
        return None
    return out


def resource_types(services: Any) -> dict[str, list[str]]:
    """Each resource type of the live policy with its actions."""
    state = services.holder.current
    if state is None:
        return {}
    return {name: sorted(r.actions) for name, r in sorted(state.engine.policy.resources.items())}


def explain_request(person_id: str, ask: dict[str, str]) -> EvaluationRequest:
    """The explain API's request for the form's values (raises pydantic's ValidationError when invalid)."""
    record: dict[str, Any] = {}
    action: dict[str, Any] = {}
    for line in ask.get("properties", "").splitlines():
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            continue
        target, name = (action, key[7:]) if key.startswith("action.") else (record, key.removeprefix("record."))
        target[name] = _value(value.strip())
    for key in ("department", "owner"):
        if ask.get(key):
            record[key] = ask[key]
    fields = [f.strip() for f in re.split(r"[,\s，]+", ask.get("fields", "")) if f.strip()]
    if fields:
        record["fields"] = fields
    return EvaluationRequest.model_validate({
        "subject": {"type": "user", "id": person_id},
        "action": {"name": ask.get("action", ""), "properties": action or None},
        "resource": {"type": ask.get("type", ""), "id": ask.get("id", ""), "properties": record or None}})


def _value(text: str) -> Any:
    """A property value as typed: a number when it reads as one, true/false, else the text."""
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def explain(services: Any, request: EvaluationRequest) -> dict[str, Any]:
    """POST /v1/explain's answer, its rules that applied listed first."""
    out: dict[str, Any] = services.insight.explain(caller=CALLER, request=request)
    rules = out.get("rules") or []
    out["rules"] = sorted(rules, key=lambda r: str(r.get("outcome", "")).startswith("skipped"))
    return out


# -- usage -----------------------------------------------------------------------------------------


def usage_weeks(services: Any, person_id: str, *, tz: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Decisions about the person per local week (Monday first) over the last 90 days, from the decision log."""
    now = now or datetime.now(UTC)
    zone = ZoneInfo(tz)
    since = now - timedelta(days=USAGE_DAYS)
    first = since.astimezone(zone).date()
    first -= timedelta(days=first.weekday())
    weeks: dict[Any, dict[str, Any]] = {}
    day = first
    while day <= now.astimezone(zone).date():
        weeks[day] = {"week": day, "allowed": 0, "denied": 0}
        day += timedelta(days=7)
    with services.factory() as session:
        hour = _hour(session, DecisionRecord.at)
        rows = session.execute(select(hour, DecisionRecord.allowed, func.count()).where(
            DecisionRecord.person_id == person_id, DecisionRecord.at >= since)
            .group_by(hour, DecisionRecord.allowed)).all()
    for bucket, allowed, n in rows:
        local = datetime.strptime(str(bucket), "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(zone).date()
        week = weeks.get(local - timedelta(days=local.weekday()))
        if week is not None:
            week["allowed" if allowed else "denied"] += int(n)
    return [{**w, "total": w["allowed"] + w["denied"]} for w in weeks.values()]


def _hour(session: Session, column: Any) -> Any:
    """The UTC hour of a timestamp as text (``2026-11-25 06``): local weeks are cut from hours."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    return func.strftime("%Y-%m-%d %H", column)


def usage_totals(services: Any, person_id: str) -> list[dict[str, Any]]:
    """The usage aggregate the audit reads: per resource type and action, most recent first."""
    with services.factory() as session:
        rows = session.scalars(select(Usage).where(Usage.person_id == person_id)
                               .order_by(Usage.last_used.desc()).limit(USAGE_ROWS)).all()
        return [{"resource_type": u.resource_type, "action": u.action, "count": u.count, "allows": u.allows,
                 "denies": u.denies, "first_used": _utc(u.first_used), "last_used": _utc(u.last_used)}
                for u in rows]


# -- findings and least privilege ------------------------------------------------------------------


def person_findings(services: Any, person_id: str) -> dict[str, Any]:
    """The audit's findings about the person (every status, most severe first)."""
    found: dict[str, Any] = services.audit.list_findings(person_id=person_id, sort="severity", limit=SEARCH_LIMIT)
    for f in found["items"]:
        f["last_seen_at"] = _parse(f.get("last_seen_at"))
    return found


def least_privilege(services: Any, person_id: str) -> dict[str, Any] | None:
    """GET /v1/audit/people/{id}/least-privilege's proposal (None: the person is not in the audit's view)."""
    try:
        out: dict[str, Any] = services.audit.least_privilege(person_id)
    except NotFound:
        return None
    return out


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _parse(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return _utc(value)
    return _utc(datetime.fromisoformat(str(value)))
