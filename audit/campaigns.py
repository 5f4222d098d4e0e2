"""Review campaigns: snapshot a population, ask reviewers to keep or revoke each grant, apply the answers.

A campaign takes the people in its scope as they are at launch (``audit_campaign_people``) and one
item per grant they hold (``audit_campaign_items``), with the open findings about that grant, a
recommendation (revoke / reduce / keep) and a risk (the findings' worst severity; ``low`` without a
finding).  Each item's reviewer comes from the directory: the person's manager, else the owner of
the system the grant is about, else a security officer, never the person themselves.

Decisions are keep, revoke, reduce or accept the risk until a date, each with a reason.  Revoke and
reduce are applied at once through a ``Remediator`` (the service's own change service, so each is a
recorded change in the change log that can be rolled back).  At the end, items nobody decided follow
the campaign's rule for no response (keep, revoke, or follow the recommendation), with a cap on how
many grants may be revoked automatically; ``close_preview`` shows the effect first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, and_, bindparam, func, insert, select, update

from audit import tables as t
from audit.config import SEVERITIES
from audit.population import Population

DECISIONS = ("keep", "revoke", "reduce", "accept_risk")

NO_RESPONSE = ("keep", "revoke", "recommendation")
_FIX_TO_RECOMMENDATION = {"revoke_grant": "revoke", "reduce_grant": "reduce"}


class CampaignError(ValueError):
    """A request the campaign refuses (the message says why)."""


class Remediator(Protocol):
    """How a decision becomes a change: the service's change service implements it."""

    def revoke(self, grant_id: int, *, actor: str, reason: str) -> Mapping[str, Any]: ...

    def restore(self, snapshot: Mapping[str, Any], *, actor: str, reason: str) -> Mapping[str, Any]: ...


def reviewer_for(person_id: str, system: str | None, managers: Mapping[str, str | None],
                 active: set[str], owners: Mapping[str, str], officers: Sequence[str]) -> tuple[str | None, str]:
    """The person's manager, else the system's owner, else a security officer; never the person."""
    manager = managers.get(person_id)
    if manager and manager != person_id and manager in active:
        return manager, "manager"
    owner = owners.get(system or "")
    if owner and owner != person_id and owner in active:
        return owner, "system_owner"
    for officer in officers:
        if officer != person_id and officer in active:
            return officer, "security_officer"
    return None, "none"


def _system_of_role(pop: Population, role: str) -> str | None:
    info = pop.roles.get(role)
    systems = {p.resource_type.partition(".")[0] for p in (info.perms if info else ())}
    return systems.pop() if len(systems) == 1 else None


def launch(conn: Connection, pop: Population, *, name: str, scope: Mapping[str, Any], due_at: datetime,
           no_response: str, auto_revoke_cap: int, actor: str, owners: Mapping[str, str],
           officers: Sequence[str], open_findings: Sequence[Mapping[str, Any]]) -> int:
    """Create a campaign over the population's grants in ``scope``; returns its id."""
    now = pop.taken_at
    if no_response not in NO_RESPONSE:
        raise CampaignError(f"no_response must be one of {', '.join(NO_RESPONSE)}")
    if due_at <= now:
        raise CampaignError("due_at must be in the future")
    departments = tuple(scope.get("departments") or ())
    systems = set(scope.get("systems") or ())
    roles = set(scope.get("roles") or ())
    only_findings = bool(scope.get("only_findings"))
    by_grant: dict[int, list[Mapping[str, Any]]] = {}
    for f in open_findings:
        if f.get("grant_id"):
            by_grant.setdefault(int(f["grant_id"]), []).append(f)
    people = {p.id: p for p in pop.people}
    managers = {p.id: p.manager_id for p in pop.people}
    active = {p.id for p in pop.people if p.status == "active"}
    accounts: dict[str, list[str]] = {}
    for a in pop.accounts:
        if a.person_id:
            accounts.setdefault(a.person_id, []).append(f"{a.system}:{a.local_id}:{a.status}")
    items: list[dict[str, Any]] = []
    in_scope: dict[str, list[dict[str, Any]]] = {}
    for g in pop.grants:
        person = people.get(g.person_id)
        if person is None:
            continue
        if departments and not any(person.department_path.startswith(d) for d in departments):
            continue
        system = g.source_system if g.source_system in ("crm", "oa") else _system_of_role(pop, g.role)
        if systems and system not in systems:
            continue
        if roles and g.role not in roles:
            continue
        found = by_grant.get(g.id, [])
        if only_findings and not found:
            continue
        fixes = {_FIX_TO_RECOMMENDATION.get(str((f.get("recommendation") or {}).get("action")), "keep")
                 for f in found}
        recommendation = "revoke" if "revoke" in fixes else "reduce" if "reduce" in fixes else "keep"
        risk = max((str(f["severity"]) for f in found), key=SEVERITIES.index, default="low")
        info = pop.roles.get(g.role)
        if info is not None and info.privileged and risk == "low":
            risk = "medium"
        reviewer, basis = reviewer_for(g.person_id, system, managers, active, owners, officers)
        snapshot = {"grant_id": g.id, "person_id": g.person_id, "role": g.role, "held_in": g.domain,
                    "source_system": g.source_system, "source_role": g.source_role,
                    "valid_from": g.valid_from.isoformat() if g.valid_from else None,
                    "valid_until": g.valid_until.isoformat() if g.valid_until else None,
                    "suspended": g.suspended_at is not None, "granted_by": g.granted_by}
        items.append({"person_id": g.person_id, "grant_id": g.id, "role": g.role, "held_in": g.domain,
                      "system": system, "finding_ids": sorted(int(f["id"]) for f in found),
                      "recommendation": recommendation, "risk": risk, "reviewer_id": reviewer,
                      "reviewer_basis": basis, "automatic": False, "apply_status": "none", "snapshot": snapshot})
        in_scope.setdefault(g.person_id, []).append(snapshot)
    cid = conn.execute(insert(t.campaigns).values(
        name=name, status="active", scope=dict(scope), launched_at=now, launched_by=actor, due_at=due_at,
        no_response=no_response, auto_revoke_cap=auto_revoke_cap,
        population={"people": len(in_scope), "items": len(items),
                    "with_findings": sum(bool(i["finding_ids"]) for i in items)}).returning(t.campaigns.c.id)
    ).scalar_one()
    rows = []
    for pid, grants in in_scope.items():
        p = people[pid]
        rows.append({"campaign_id": cid, "person_id": pid, "snapshot": {
            "name": p.name, "department": p.department_path,
            "department_name": pop.department_names.get(p.department_path, ""), "position": p.position,
            "status": p.status, "accounts": sorted(accounts.get(pid, [])),
            "grants": sorted(f"{g['role']}@{g['held_in']}" for g in grants)}})
    for start in range(0, len(rows), 1000):
        conn.execute(insert(t.campaign_people), rows[start:start + 1000])
    for start in range(0, len(items), 1000):
        conn.execute(insert(t.campaign_items), [{**i, "campaign_id": cid} for i in items[start:start + 1000]])
    return int(cid)


def _campaign(conn: Connection, campaign_id: int, *, lock: bool = False) -> Any:
    q = select(t.campaigns).where(t.campaigns.c.id == campaign_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise LookupError(f"campaign {campaign_id} not found")
    return row


def _apply(item: Any, decision: str, *, actor: str, reason: str, remediator: Remediator,
           now: datetime) -> tuple[str, dict[str, Any] | None]:
    if decision not in ("revoke", "reduce"):
        return "none", None
    why = f"campaign {item.campaign_id} item {item.id}: {decision}: {reason}"
    try:
        result = dict(remediator.revoke(int(item.grant_id), actor=actor, reason=why))
    except Exception as exc:  # recorded on the item: the reviewer's decision stands, the change did not happen
        return "failed", {"error": f"{type(exc).__name__}: {exc}"[:1000], "at": now.isoformat()}
    return "applied", {**result, "at": now.isoformat()}


def decide(conn: Connection, campaign_id: int, item_id: int, *, decision: str, reason: str, reviewer: str,
           actor: str, remediator: Remediator, until: datetime | None = None, now: datetime | None = None,
           bulk: bool = False) -> dict[str, Any]:
    """A reviewer's decision on one item, applied at once when it revokes or reduces."""
    now = now or datetime.now(UTC)
    if decision not in DECISIONS:
        raise CampaignError(f"decision must be one of {', '.join(DECISIONS)}")
    if not reason.strip():
        raise CampaignError("a reason is required")
    campaign = _campaign(conn, campaign_id)
    if campaign.status != "active":
        raise CampaignError(f"campaign {campaign_id} is {campaign.status}")
    item = conn.execute(select(t.campaign_items).where(and_(
        t.campaign_items.c.id == item_id, t.campaign_items.c.campaign_id == campaign_id)).with_for_update()).first()
    if item is None:
        raise LookupError(f"item {item_id} of campaign {campaign_id} not found")
    if item.person_id == reviewer:
        raise CampaignError("nobody reviews their own access")
    if item.decision is not None:
        raise CampaignError(f"item {item_id} was already decided ({item.decision})")
    if bulk and item.risk != "low":
        raise CampaignError(f"item {item_id} is {item.risk} risk: bulk decisions are for low-risk items only")
    if decision == "accept_risk" and (until is None or until <= now):
        raise CampaignError("accepting a risk needs a future date (until)")
    status, result = _apply(item, decision, actor=actor, reason=reason, remediator=remediator, now=now)
    conn.execute(update(t.campaign_items).where(t.campaign_items.c.id == item_id).values(
        decision=decision, reason=reason, accept_until=until if decision == "accept_risk" else None,
        decided_by=reviewer, decided_at=now, apply_status=status, apply_result=result))
    return dict(conn.execute(select(t.campaign_items).where(t.campaign_items.c.id == item_id)).one()._mapping)


def rollback(conn: Connection, campaign_id: int, item_id: int, *, actor: str, reason: str,
             remediator: Remediator, now: datetime | None = None) -> dict[str, Any]:
    """Undo an applied revocation: the grant is given back (a new recorded change)."""
    now = now or datetime.now(UTC)
    item = conn.execute(select(t.campaign_items).where(and_(
        t.campaign_items.c.id == item_id, t.campaign_items.c.campaign_id == campaign_id)).with_for_update()).first()
    if item is None:
        raise LookupError(f"item {item_id} of campaign {campaign_id} not found")
    if item.apply_status != "applied":
        raise CampaignError(f"item {item_id} has nothing applied to roll back ({item.apply_status})")
    restored = dict(remediator.restore(item.snapshot, actor=actor,
                                       reason=f"rollback of campaign {campaign_id} item {item_id}: {reason}"))
    result = {**(item.apply_result or {}), "rolled_back": {**restored, "at": now.isoformat(), "by": actor,
                                                           "reason": reason}}
    conn.execute(update(t.campaign_items).where(t.campaign_items.c.id == item_id).values(
        apply_status="rolled_back", apply_result=result))
    return dict(conn.execute(select(t.campaign_items).where(t.campaign_items.c.id == item_id)).one()._mapping)


def pending_by_reviewer(conn: Connection, campaign_id: int) -> dict[str | None, int]:
    rows = conn.execute(select(t.campaign_items.c.reviewer_id, func.count()).where(and_(
        t.campaign_items.c.campaign_id == campaign_id, t.campaign_items.c.decision.is_(None)))
        .group_by(t.campaign_items.c.reviewer_id)).all()
    return {r: int(n) for r, n in rows}


def close_preview(conn: Connection, campaign_id: int) -> dict[str, Any]:
    """What closing would do to the undecided items: the rule's outcome for each, capped revocations."""
    campaign = _campaign(conn, campaign_id)
    undecided = conn.execute(select(t.campaign_items).where(and_(
        t.campaign_items.c.campaign_id == campaign_id, t.campaign_items.c.decision.is_(None)))
        .order_by(t.campaign_items.c.id)).all()
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}  # critical first
    outcome: dict[int, str] = {}
    wants_revoke = []
    for item in undecided:
        rule = campaign.no_response
        wanted = item.recommendation if rule == "recommendation" else rule
        if wanted in ("revoke", "reduce"):
            wants_revoke.append(item)
        else:
            outcome[item.id] = "keep"
    wants_revoke.sort(key=lambda i: (rank.get(i.risk, 9), i.id))
    capped = []
    for n, item in enumerate(wants_revoke):
        if n < campaign.auto_revoke_cap:
            outcome[item.id] = "revoke"
        else:
            outcome[item.id] = "keep"
            capped.append(item.id)
    return {"campaign_id": campaign_id, "rule": campaign.no_response, "cap": campaign.auto_revoke_cap,
            "undecided": len(undecided), "revoke": sorted(i for i, o in outcome.items() if o == "revoke"),
            "keep": sorted(i for i, o in outcome.items() if o == "keep"), "kept_by_cap": capped}


def close(conn: Connection, campaign_id: int, *, actor: str, remediator: Remediator,
          now: datetime | None = None) -> dict[str, Any]:
    """Apply the no-response rule (as previewed) and close the campaign."""
    now = now or datetime.now(UTC)
    campaign = _campaign(conn, campaign_id, lock=True)
    if campaign.status != "active":
        raise CampaignError(f"campaign {campaign_id} is already {campaign.status}")
    preview = close_preview(conn, campaign_id)
    items = {r.id: r for r in conn.execute(select(t.campaign_items).where(
        t.campaign_items.c.id.in_(preview["revoke"] + preview["keep"])))} if preview["undecided"] else {}
    # every change first, then every write of ours: the remediator writes through its own
    # connection, which must not wait behind this transaction's write lock (SQLite)
    updates = []
    for item_id, item in items.items():
        decision = "revoke" if item_id in preview["revoke"] else "keep"
        reason = (f"no response by {campaign.due_at.date().isoformat()}: rule '{campaign.no_response}'"
                  + (" (automatic revocations capped)" if item_id in preview["kept_by_cap"] else ""))
        status, result = _apply(item, decision, actor=actor, reason=reason, remediator=remediator, now=now)
        updates.append({"b_id": item_id, "decision": decision, "reason": reason, "decided_by": "no-response rule",
                        "decided_at": now, "automatic": True, "apply_status": status, "apply_result": result})
    if updates:
        conn.execute(update(t.campaign_items).where(t.campaign_items.c.id == bindparam("b_id")), updates)
    applied = sum(u["apply_status"] == "applied" for u in updates)
    failed = sum(u["apply_status"] == "failed" for u in updates)
    result = {**{k: v for k, v in preview.items() if k != "campaign_id"}, "applied": applied, "failed": failed}
    conn.execute(update(t.campaigns).where(t.campaigns.c.id == campaign_id).values(
        status="closed", closed_at=now, closed_by=actor, result=result))
    return result


def progress(conn: Connection, campaign_id: int) -> dict[str, Any]:
    """Items by decision and by reviewer, and how many remain."""
    rows = conn.execute(select(t.campaign_items.c.decision, t.campaign_items.c.apply_status, func.count())
                        .where(t.campaign_items.c.campaign_id == campaign_id)
                        .group_by(t.campaign_items.c.decision, t.campaign_items.c.apply_status)).all()
    by_decision: dict[str, int] = {}
    applied: dict[str, int] = {}
    total = 0
    for decision, status, n in rows:
        total += n
        by_decision[decision or "pending"] = by_decision.get(decision or "pending", 0) + n
        applied[status] = applied.get(status, 0) + n
    return {"total": total, "by_decision": by_decision, "apply_status": applied,
            "pending_by_reviewer": {str(k): v for k, v in pending_by_reviewer(conn, campaign_id).items() if v}}
