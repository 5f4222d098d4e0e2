"""Fill the audit's report contract (``audit.reports.ReportData``) from the database, per run and per campaign.

An audit run's report shows the findings the run saw and the people they concern as they are when
the report is made; a campaign's report shows the population snapshotted at launch, every decision
with its apply result, and the same people after remediation (as they are now).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from app.errors import NotFound
from audit import tables as t
from audit.population import Population
from audit.reports import DecisionRow, FindingRow, PersonRow, ReportData, ReportSummary

ORGANISATION = {"zh-CN": "本公司", "en": "The company"}
_ZERO = "0" * 64


def trail_head(conn: Connection) -> tuple[str, int | None]:
    """The trail's head hash and seq now (zeros before anything was sealed)."""
    row = conn.execute(select(t.trail_head.c.hash, t.trail_head.c.seq).where(t.trail_head.c.id == 1)).first()
    return (row.hash, row.seq) if row else (_ZERO, None)


def _evidence_summary(f: Mapping[str, Any]) -> dict[str, str]:
    ev = f["evidence"] or {}
    person = ev.get("person") or {}
    who = " ".join(x for x in (person.get("person_id"), person.get("name")) if x) or (f.get("account") or "")
    what = f.get("permission") or f.get("field") or f.get("account") or ""
    details = []
    for key in ("unused", "used_after_leaving", "rule", "held_in", "last_login_at", "ends", "ended", "share"):
        value = ev.get(key) if key in ev else (ev.get("grant") or {}).get(key)
        if value not in (None, [], ""):
            details.append(f"{key}={', '.join(value) if isinstance(value, list) else value}")
    text = " · ".join(x for x in (who, what, "; ".join(details)) if x)
    return {"zh-CN": text, "en": text}


def finding_rows(rows: Iterable[Any]) -> list[FindingRow]:
    out = []
    for r in rows:
        f = dict(r._mapping)
        rec = f["recommendation"] or {}
        person = (f["evidence"] or {}).get("person") or {}
        out.append(FindingRow(
            id=f["id"], kind=f["kind"], severity=f["severity"], status=f["status"], person_id=f["person_id"],
            person_name=person.get("name"), system=f["system"], permission=f["permission"], field=f["field"],
            evidence_summary=_evidence_summary(f), evidence=f["evidence"] or {},
            recommendation={"zh-CN": rec.get("zh", ""), "en": rec.get("en", "")},
            first_seen=f["first_seen_at"], last_seen=f["last_seen_at"], quarters=f["quarters"] or [],
            account=f["account"], evidence_quality=f["evidence_quality"]))
    return out


def people_rows(pop: Population, person_ids: Iterable[str]) -> list[PersonRow]:
    """The people as they are in ``pop``: accounts and the grants not revoked."""
    wanted = set(person_ids)
    accounts: dict[str, list[str]] = {}
    for a in pop.accounts:
        if a.person_id in wanted:
            accounts.setdefault(a.person_id, []).append(f"{a.system}:{a.local_id}" + (
                "" if a.status == "active" else f" ({a.status})"))
    grants: dict[str, list[str]] = {}
    privileged: set[str] = set()
    for g in pop.grants:
        if g.person_id in wanted:
            info = pop.roles.get(g.role)
            grants.setdefault(g.person_id, []).append(f"{info.title_zh if info else g.role} @ {g.domain}")
            if info is not None and info.privileged:
                privileged.add(g.person_id)
    return [PersonRow(person_id=p.id, name=p.name, department=pop.department_names.get(p.department_path)
                      or p.department_path, position=p.position or "", status=p.status,
                      accounts=sorted(accounts.get(p.id, [])), grants=sorted(grants.get(p.id, [])),
                      privileged=p.id in privileged)
            for p in sorted(pop.people, key=lambda p: p.id) if p.id in wanted]


def run_report(conn: Connection, run_id: int, pop: Population, *, timezone: str) -> ReportData:
    """The report of one audit run."""
    run = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
    if run is None:
        raise NotFound(f"audit run {run_id} not found")
    findings = finding_rows(conn.execute(select(t.findings).where(t.findings.c.last_run_id == run_id)
                                         .order_by(t.findings.c.id)))
    head, seq = trail_head(conn)
    params = run.params or {}
    counts = run.counts or {}
    people = people_rows(pop, {f.person_id for f in findings if f.person_id})
    return ReportData(
        kind="audit_run", ref=run_id,
        title={"zh-CN": f"访问权限审计报告（{run.quarter}，第 {run_id} 次运行）",
               "en": f"Access audit report ({run.quarter}, run {run_id})"},
        organisation=ORGANISATION, quarter=run.quarter, generated_at=pop.taken_at, trail_head=head, trail_seq=seq,
        scope={"usage_window_days": params.get("window_days"), "launched_by": run.actor,
               "launched_at": run.started_at, "systems": ["crm", "oa", "idp"], "trigger": run.trigger,
               "people_at_run": (run.population or {}).get("people"),
               "accounts_at_run": (run.population or {}).get("accounts"),
               "grants_at_run": (run.population or {}).get("grants")},
        population_after=people, population_after_at=pop.taken_at, findings=findings,
        summary=ReportSummary.from_findings(findings, other={
            k: int(counts.get(k, 0)) for k in ("new", "seen_again", "reopened", "resolved", "suppressed")}),
        timezone=timezone)


def campaign_report(conn: Connection, campaign_id: int, pop: Population, *, timezone: str,
                    quarter: str) -> ReportData:
    """The report of one review campaign."""
    c = conn.execute(select(t.campaigns).where(t.campaigns.c.id == campaign_id)).first()
    if c is None:
        raise NotFound(f"campaign {campaign_id} not found")
    launch = [PersonRow(person_id=r.person_id, name=r.snapshot.get("name", ""),
                        department=r.snapshot.get("department_name") or r.snapshot.get("department", ""),
                        position=r.snapshot.get("position") or "", status=r.snapshot.get("status", "active"),
                        accounts=r.snapshot.get("accounts", []), grants=r.snapshot.get("grants", []))
              for r in conn.execute(select(t.campaign_people).where(t.campaign_people.c.campaign_id == campaign_id)
                                    .order_by(t.campaign_people.c.person_id))]
    items = conn.execute(select(t.campaign_items).where(t.campaign_items.c.campaign_id == campaign_id)
                         .order_by(t.campaign_items.c.id)).all()
    names = {p.person_id: p.name for p in launch}
    decisions = []
    for i in items:
        result = i.apply_result or {}
        status = {"none": "not_required" if i.decision else "pending"}.get(i.apply_status, i.apply_status)
        decisions.append(DecisionRow(
            item_id=i.id, person_id=i.person_id, person_name=names.get(i.person_id),
            permission=f"{i.role} @ {i.held_in}",
            reviewer=i.decided_by or i.reviewer_id or "", decision=i.decision or "none", reason=i.reason or "",
            decided_at=i.decided_at, apply_result=status, change_id=result.get("grant_id"),
            recommendation=i.recommendation, accepted_until=i.accept_until,
            apply_detail=str(result.get("error") or (result.get("rolled_back") or {}).get("reason") or ""),
            finding_ids=i.finding_ids or []))
    finding_ids = sorted({fid for i in items for fid in (i.finding_ids or [])})
    findings = finding_rows(conn.execute(select(t.findings).where(t.findings.c.id.in_(finding_ids))
                                         .order_by(t.findings.c.id))) if finding_ids else []
    head, seq = trail_head(conn)
    return ReportData(
        kind="campaign", ref=campaign_id,
        title={"zh-CN": f"访问复核报告：{c.name}", "en": f"Access review report: {c.name}"},
        organisation=ORGANISATION, quarter=quarter, generated_at=pop.taken_at, trail_head=head, trail_seq=seq,
        scope={"launched_by": c.launched_by, "launched_at": c.launched_at, "due_at": c.due_at,
               "status": c.status, "no_response": c.no_response, "auto_revoke_cap": c.auto_revoke_cap,
               "departments": list((c.scope or {}).get("departments") or []),
               "systems": list((c.scope or {}).get("systems") or []) or ["crm", "oa"]},
        population_at_launch=launch, population_at_launch_at=c.launched_at,
        population_after=people_rows(pop, names), population_after_at=pop.taken_at,
        findings=findings, decisions=decisions, timezone=timezone)


def zip_files(files: Mapping[str, bytes]) -> bytes:
    """Several files (the CSV sections) as one ZIP."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=datetime.now(UTC).timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[name])
    return buf.getvalue()
