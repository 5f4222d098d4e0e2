"""The service side of the quarterly audit: runs (on demand and on schedule), findings, suppressions.

The audit engine is the ``audit`` package; this module gives it the population (the directory,
the live policy, the usage data) and a database, and turns its refusals into API errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, asc, desc, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audits.population import build_population
from app.authz.directory import StateHolder
from app.config import AuditSettings
from app.errors import Conflict, InvalidPolicy, InvalidRequest, NotFound
from audit import campaigns as camp
from audit import tables as t
from audit import trail
from audit.config import KINDS, AuditConfig, AuditConfigError, load_config
from audit.leastpriv import propose
from audit.population import Population
from audit.runner import run_audit
from audit.schedule import latest_due, next_due, schedule_key
from audit.store import AuditError, set_status, summary

log = logging.getLogger(__name__)
CATCH_UP_AFTER_SECONDS = 600  # a scheduled run started this long after its due time is a catch-up
SORTS = {"severity": t.findings.c.severity, "kind": t.findings.c.kind, "last_seen": t.findings.c.last_seen_at,
         "first_seen": t.findings.c.first_seen_at, "person": t.findings.c.person_id, "id": t.findings.c.id}
_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


class AuditService:
    """Runs the audit and answers the audit API."""

    def __init__(self, *, factory: sessionmaker[Session], holder: StateHolder, settings: AuditSettings,
                 policies_dir: Any, remediator: Any = None, seal: Any = None) -> None:
        self._factory, self._holder, self.settings = factory, holder, settings
        self._policies_dir = policies_dir
        self._remediator = remediator
        self._seal = seal

    @property
    def engine(self) -> Any:
        return self._factory.kw["bind"]

    def config(self) -> AuditConfig:
        """``policies/audit.yaml`` and ``policies/sod.yaml`` with the settings' windows (422 when invalid)."""
        try:
            return load_config(self._policies_dir, window_days=self.settings.window_days,
                               dormant_days=self.settings.dormant_days, expiring_days=self.settings.expiring_days)
        except AuditConfigError as exc:
            raise InvalidPolicy(f"the audit's policy files are invalid: {exc}") from exc

    def population(self, now: datetime) -> Population:
        """The population as of ``now``, read in one transaction."""
        state = self._holder.require()
        with self._factory() as session, session.begin():
            return build_population(session, state.engine.policy, now)

    # ----------------------------------------------------------------- runs

    def run(self, *, trigger: str, actor: str, run_key: str | None = None, due_at: datetime | None = None,
            now: datetime | None = None) -> dict[str, Any] | None:
        """One audit run; None when ``run_key`` already ran (in any process)."""
        cfg = self.config()
        self._holder.require()
        return run_audit(self.engine, self.population, cfg, trigger=trigger, actor=actor, run_key=run_key,
                         due_at=due_at, now=now, tz=self.settings.timezone, seal=self._seal or seal_run)

    def due(self, now: datetime | None = None) -> datetime | None:
        """The latest due time of the schedule at or before now."""
        return latest_due(self.settings.cron, self.settings.timezone, now or datetime.now(UTC))

    def run_if_due(self, now: datetime | None = None) -> dict[str, Any] | None:
        """Run the scheduled audit if its latest due time has no run yet (exactly once across processes)."""
        now = now or datetime.now(UTC)
        due = self.due(now)
        if due is None:
            return None
        key = schedule_key(due)
        with self.engine.connect() as conn:
            if conn.execute(select(t.runs.c.id).where(t.runs.c.run_key == key)).first() is not None:
                return None
        late = (now - due).total_seconds() > CATCH_UP_AFTER_SECONDS
        return self.run(trigger="catchup" if late else "schedule", actor="scheduler", run_key=key, due_at=due,
                        now=now)

    def schedule(self, now: datetime | None = None) -> dict[str, Any]:
        """The schedule, its latest and next due times, and whether the latest one ran."""
        now = now or datetime.now(UTC)
        due, nxt = self.due(now), next_due(self.settings.cron, self.settings.timezone, now)
        ran = None
        if due is not None:
            with self.engine.connect() as conn:
                row = conn.execute(select(t.runs.c.id, t.runs.c.status).where(
                    t.runs.c.run_key == schedule_key(due))).first()
            ran = {"run_id": row.id, "status": row.status} if row else None
        return {"cron": self.settings.cron, "timezone": self.settings.timezone, "enabled": self.settings.schedule,
                "latest_due": due.isoformat() if due else None, "latest_run": ran,
                "next_due": nxt.isoformat() if nxt else None, "window_days": self.settings.window_days}

    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.runs).order_by(desc(t.runs.c.id)).limit(limit)).all()
        return [_run(r) for r in rows]

    def get_run(self, run_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"audit run {run_id} not found")
        return _run(row)

    # ----------------------------------------------------------------- findings

    def list_findings(self, *, status: list[str] | None = None, kind: list[str] | None = None,
                      severity: list[str] | None = None, person_id: str | None = None, system: str | None = None,
                      run_id: int | None = None, sort: str = "severity", order: str = "asc", limit: int = 100,
                      offset: int = 0) -> dict[str, Any]:
        """Findings matching every filter given, sorted (severity: most severe first), paged."""
        c = t.findings.c
        where: list[Any] = []
        if status:
            where.append(c.status.in_(status))
        if kind:
            where.append(c.kind.in_(kind))
        if severity:
            where.append(c.severity.in_(severity))
        if person_id:
            where.append(c.person_id == person_id)
        if system:
            where.append(c.system == system)
        if run_id is not None:
            where.append(c.last_run_id == run_id)
        cond = and_(*where) if where else None
        q = select(t.findings)
        count = select(func.count()).select_from(t.findings)
        if cond is not None:
            q, count = q.where(cond), count.where(cond)
        direction = asc if order == "asc" else desc
        if sort == "severity":
            from sqlalchemy import case

            rank = case(_SEVERITY_RANK, value=c.severity, else_=9)
            q = q.order_by(direction(rank), c.kind, c.id)
        else:
            q = q.order_by(direction(SORTS[sort]), c.id)
        with self.engine.connect() as conn:
            total = conn.execute(count).scalar_one()
            rows = conn.execute(q.limit(limit).offset(offset)).all()
        return {"total": total, "limit": limit, "offset": offset, "items": [_finding(r) for r in rows]}

    def get_finding(self, finding_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.findings).where(t.findings.c.id == finding_id)).first()
            if row is None:
                raise NotFound(f"finding {finding_id} not found")
            events = conn.execute(select(t.finding_events).where(t.finding_events.c.finding_id == finding_id)
                                  .order_by(t.finding_events.c.id)).all()
        return {**_finding(row), "history": [_plain(e) for e in events]}

    def set_status(self, finding_id: int, *, to: str, actor: str, reason: str, until: datetime | None = None,
                   owner: str | None = None) -> dict[str, Any]:
        """Accept the risk until a date, mark remediated, or reopen (recorded with who and why)."""
        try:
            with self.engine.begin() as conn:
                set_status(conn, finding_id, to=to, actor=actor, reason=reason, until=until, owner=owner)
                last = conn.execute(select(func.max(t.finding_events.c.id)).where(
                    t.finding_events.c.finding_id == finding_id)).scalar_one()
                trail.append(conn, kind="finding_event", source_table="audit_finding_events", refs=[last])
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
        except AuditError as exc:
            raise Conflict(str(exc)) from exc
        return self.get_finding(finding_id)

    def summary(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            out = summary(conn)
            last = conn.execute(select(t.runs).where(t.runs.c.status == "done")
                                .order_by(desc(t.runs.c.id)).limit(1)).first()
        out["last_run"] = _run(last) if last else None
        return out

    # ----------------------------------------------------------------- suppressions

    def add_suppression(self, *, kind: str, match: dict[str, Any], owner: str, reason: str, expires_at: datetime,
                        actor: str) -> dict[str, Any]:
        """Findings of ``kind`` matching every member of ``match`` are suppressed until ``expires_at``."""
        now = datetime.now(UTC)
        if kind != "*" and kind not in KINDS:
            raise InvalidRequest(f"unknown finding kind {kind!r}")
        if expires_at <= now:
            raise InvalidRequest("expires_at must be in the future")
        with self.engine.begin() as conn:
            sid = conn.execute(insert(t.suppressions).values(
                kind=kind, match=match, owner=owner, reason=reason, expires_at=expires_at, created_by=actor,
                created_at=now).returning(t.suppressions.c.id)).scalar_one()
            row = conn.execute(select(t.suppressions).where(t.suppressions.c.id == sid)).one()
        return _plain(row)

    def list_suppressions(self, include_ended: bool = False) -> list[dict[str, Any]]:
        q = select(t.suppressions).order_by(desc(t.suppressions.c.id))
        if not include_ended:
            q = q.where(and_(t.suppressions.c.revoked_at.is_(None), t.suppressions.c.expires_at > datetime.now(UTC)))
        with self.engine.connect() as conn:
            return [_plain(r) for r in conn.execute(q)]

    def revoke_suppression(self, suppression_id: int, *, actor: str) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = conn.execute(select(t.suppressions).where(t.suppressions.c.id == suppression_id)).first()
            if row is None:
                raise NotFound(f"suppression {suppression_id} not found")
            if row.revoked_at is not None:
                raise Conflict(f"suppression {suppression_id} was already revoked")
            conn.execute(update(t.suppressions).where(t.suppressions.c.id == suppression_id).values(
                revoked_at=datetime.now(UTC), revoked_by=actor))
            row = conn.execute(select(t.suppressions).where(t.suppressions.c.id == suppression_id)).one()
        return _plain(row)


    # ----------------------------------------------------------------- reports

    def report_data(self, kind: str, ref: int) -> Any:
        from app.audits.reports import campaign_report, run_report
        from audit.store import quarter_of

        pop = self.population(datetime.now(UTC))
        with self.engine.connect() as conn:
            if kind == "run":
                return run_report(conn, ref, pop, timezone=self.settings.timezone)
            return campaign_report(conn, ref, pop, timezone=self.settings.timezone,
                                   quarter=quarter_of(pop.taken_at, self.settings.timezone))

    def report(self, kind: str, ref: int, *, fmt: str, lang: str) -> tuple[bytes, str, str]:
        """(body, media type, file name) of one rendering."""
        from app.audits.reports import zip_files
        from audit.reports import render_csv, render_html, render_pdf, render_xlsx

        data = self.report_data(kind, ref)
        if fmt == "html":
            body = render_html(data, lang).encode()
        elif fmt == "csv":
            body = zip_files(render_csv(data, lang))
        elif fmt == "xlsx":
            body = render_xlsx(data, lang)
        else:
            body = render_pdf(data, lang)
        ext = "csv.zip" if fmt == "csv" else fmt
        return body, REPORT_MEDIA[fmt], f"accessgov-{kind}-{ref}-{lang}.{ext}"

    def evidence_pack(self, kind: str, ref: int) -> tuple[bytes, str, str]:
        """(zip, digest, file name): every rendering in both languages, the data, the trail's verification."""
        import orjson

        from audit import trail
        from audit.reports import build_evidence_pack

        data = self.report_data(kind, ref)
        with self.engine.connect() as conn:
            verified = trail.verify(conn)
        extra = {"trail-verification.json": orjson.dumps(verified.as_dict(), option=orjson.OPT_INDENT_2)}
        body, digest = build_evidence_pack(data, extra=extra)
        return body, digest, f"accessgov-{kind}-{ref}-evidence.zip"

    # ----------------------------------------------------------------- campaigns

    def launch_campaign(self, *, name: str, scope: dict[str, Any], due_at: datetime, no_response: str,
                        auto_revoke_cap: int, actor: str) -> dict[str, Any]:
        """Snapshot the population in scope and create one item per grant, with reviewers."""
        cfg = self.config()
        now = datetime.now(UTC)
        pop = self.population(now)
        with self.engine.connect() as conn:
            open_findings = [dict(r._mapping) for r in conn.execute(select(
                t.findings.c.id, t.findings.c.grant_id, t.findings.c.severity, t.findings.c.recommendation)
                .where(and_(t.findings.c.status == "open", t.findings.c.grant_id.is_not(None))))]
        try:
            with self.engine.begin() as conn:
                cid = camp.launch(conn, pop, name=name, scope=scope, due_at=due_at, no_response=no_response,
                                  auto_revoke_cap=auto_revoke_cap, actor=actor, owners=cfg.system_owners,
                                  officers=cfg.security_officers, open_findings=open_findings)
        except camp.CampaignError as exc:
            raise InvalidRequest(str(exc)) from exc
        return self.get_campaign(cid)

    def list_campaigns(self, status: str | None = None) -> list[dict[str, Any]]:
        q = select(t.campaigns).order_by(desc(t.campaigns.c.id))
        if status:
            q = q.where(t.campaigns.c.status == status)
        with self.engine.connect() as conn:
            return [{**_plain(r), "progress": camp.progress(conn, r.id)} for r in conn.execute(q).all()]

    def get_campaign(self, campaign_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.campaigns).where(t.campaigns.c.id == campaign_id)).first()
            if row is None:
                raise NotFound(f"campaign {campaign_id} not found")
            return {**_plain(row), "progress": camp.progress(conn, campaign_id)}

    def campaign_items(self, campaign_id: int, *, reviewer_id: str | None = None, pending: bool | None = None,
                       person_id: str | None = None, limit: int = 200, offset: int = 0) -> dict[str, Any]:
        self.get_campaign(campaign_id)
        c = t.campaign_items.c
        where: list[Any] = [c.campaign_id == campaign_id]
        if reviewer_id:
            where.append(c.reviewer_id == reviewer_id)
        if person_id:
            where.append(c.person_id == person_id)
        if pending is not None:
            where.append(c.decision.is_(None) if pending else c.decision.is_not(None))
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(t.campaign_items).where(*where)).scalar_one()
            rows = conn.execute(select(t.campaign_items).where(*where).order_by(c.id).limit(limit).offset(offset))
            return {"total": total, "items": [_plain(r) for r in rows]}

    def _campaign_call(self, fn: Any, *args: Any, decided: Callable[[Any], list[int]] | None = None,
                       **kwargs: Any) -> Any:
        """Run a campaign function in one transaction; ``decided`` names the items it decided, which
        are sealed into the trail in the same transaction."""
        try:
            with self.engine.begin() as conn:
                out = fn(conn, *args, **kwargs)
                fresh = sorted(decided(out)) if decided is not None else []
                if fresh:
                    trail.append_each(conn, kind="review", source_table="audit_campaign_items", refs=fresh)
                return out
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
        except camp.CampaignError as exc:
            raise Conflict(str(exc)) from exc

    def decide(self, campaign_id: int, item_id: int, *, decision: str, reason: str, reviewer: str, actor: str,
               until: datetime | None = None) -> dict[str, Any]:
        """One decision (revoke and reduce are applied at once, through the change service)."""
        return _plain_dict(self._campaign_call(camp.decide, campaign_id, item_id, decision=decision, reason=reason,
                                               reviewer=reviewer, actor=actor, until=until,
                                               remediator=self._remediator, decided=lambda out: [out["id"]]))

    def decide_bulk(self, campaign_id: int, item_ids: list[int], *, decision: str, reason: str, reviewer: str,
                    actor: str, until: datetime | None = None) -> list[dict[str, Any]]:
        """The same decision on several low-risk items, all or none (accept_risk: until ``until``)."""
        if decision in ("revoke", "reduce"):
            raise InvalidRequest("bulk decisions may keep or accept; revoke items one by one")

        def run(conn: Any) -> list[dict[str, Any]]:
            return [_plain_dict(camp.decide(conn, campaign_id, i, decision=decision, reason=reason,
                                            reviewer=reviewer, actor=actor, remediator=self._remediator,
                                            until=until, bulk=True)) for i in item_ids]

        return self._campaign_call(run, decided=lambda out: [o["id"] for o in out])  # type: ignore[no-any-return]

    def rollback(self, campaign_id: int, item_id: int, *, actor: str, reason: str) -> dict[str, Any]:
        return _plain_dict(self._campaign_call(camp.rollback, campaign_id, item_id, actor=actor, reason=reason,
                                               remediator=self._remediator))

    def remind(self, campaign_id: int, now: datetime | None = None) -> list[dict[str, Any]]:
        """Remind each reviewer with pending items (and only them): through the configured webhook
        (channel = its kind; ``<kind>:failed`` when it refused) or the log; every reminder recorded."""
        from app.audits.notify import ReminderError, ReminderSender

        campaign = self.get_campaign(campaign_id)
        if campaign["status"] != "active":
            raise Conflict(f"campaign {campaign_id} is closed")
        with self.engine.connect() as conn:
            pending = {r: n for r, n in camp.pending_by_reviewer(conn, campaign_id).items() if r and n}
        url = self.settings.reminder_webhook_url
        sender = ReminderSender(url, self.settings.reminder_webhook_kind) if url else None
        people = {}
        if pending:
            from app.directory.models import Person

            with self._factory() as session:
                people = {p.id: (p.name, p.mobile) for p in session.query(Person).filter(Person.id.in_(pending))}
        due = datetime.fromisoformat(campaign["due_at"])
        channels: dict[str, str] = {}
        for reviewer, n in sorted(pending.items()):
            name, mobile = people.get(reviewer, (reviewer, None))
            channel = "log"
            if sender is not None:
                try:
                    sender.send(campaign=campaign["name"], due=due, name=name, mobile=mobile, pending=n)
                    channel = sender.kind
                except ReminderError as exc:
                    channel = f"{sender.kind}:failed"
                    log.warning("review reminder not delivered: %s", exc, extra={"campaign_id": campaign_id,
                                                                                 "reviewer_id": reviewer})
            log.info("review reminder", extra={"campaign_id": campaign_id, "reviewer_id": reviewer, "pending": n,
                                               "channel": channel})
            channels[reviewer] = channel
        now = now or datetime.now(UTC)
        rows = [{"campaign_id": campaign_id, "reviewer_id": r, "pending": n, "at": now, "channel": channels[r]}
                for r, n in sorted(pending.items())]
        with self.engine.begin() as conn:
            if rows:
                conn.execute(insert(t.campaign_reminders), rows)
            # a reminder on request counts as this round too (the schedule waits reminder_hours from it)
            conn.execute(update(t.campaigns).where(
                t.campaigns.c.id == campaign_id,
                or_(t.campaigns.c.reminded_at.is_(None), t.campaigns.c.reminded_at < now)).values(reminded_at=now))
        return [{**r, "at": now.isoformat()} for r in rows]

    def remind_due(self, now: datetime | None = None) -> int:
        """Scheduled reminders: active campaigns not reminded within ``reminder_hours`` (0: never).

        Every process runs this each minute; a round is claimed by one compare-and-set on the campaign's
        ``reminded_at`` (moved only if it is still at least ``reminder_hours`` old), so one process sends it.
        """
        now = now or datetime.now(UTC)
        done = 0
        for cid in self.reminders_due(now):
            if self.claim_reminder_round(cid, now):  # else another process claimed this round: it sends it
                self.remind(cid, now=now)
                done += 1
        return done

    def reminders_due(self, now: datetime) -> list[int]:
        """Active campaigns whose last reminder round (or launch) is ``reminder_hours`` old."""
        if not self.settings.reminder_hours:
            return []
        c = t.campaigns.c
        with self.engine.connect() as conn:
            return [cid for (cid,) in conn.execute(select(c.id).where(
                c.status == "active", func.coalesce(c.reminded_at, c.launched_at) <= self._round_cutoff(now)))]

    def claim_reminder_round(self, campaign_id: int, now: datetime) -> bool:
        """Take the campaign's due reminder round: True for exactly one of the processes that try."""
        c = t.campaigns.c
        with self.engine.begin() as conn:
            claimed: int = conn.execute(update(t.campaigns).where(
                c.id == campaign_id, c.status == "active",
                func.coalesce(c.reminded_at, c.launched_at) <= self._round_cutoff(now),
            ).values(reminded_at=now)).rowcount
        return claimed == 1

    def _round_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(hours=self.settings.reminder_hours)

    def close_preview(self, campaign_id: int) -> dict[str, Any]:
        return self._campaign_call(camp.close_preview, campaign_id)  # type: ignore[no-any-return]

    def close(self, campaign_id: int, *, actor: str) -> dict[str, Any]:
        self._campaign_call(camp.close, campaign_id, actor=actor, remediator=self._remediator,
                            decided=lambda result: [*result["revoke"], *result["keep"]])
        return self.get_campaign(campaign_id)

    # ----------------------------------------------------------------- least privilege

    def least_privilege(self, person_id: str) -> dict[str, Any]:
        """The grants the person's use in the window needed: keep, revoke or reduce each."""
        pop = self.population(datetime.now(UTC))
        if not any(p.id == person_id for p in pop.people):
            raise NotFound(f"person {person_id} not found")
        return propose(pop, person_id, self.config())

    def apply_least_privilege(self, person_id: str, *, grant_ids: list[int], actor: str, reason: str
                              ) -> dict[str, Any]:
        """Apply the proposal for the grants an officer selected (revocations only; a reduction revokes
        the privileged grant and grants its proposed replacement in the same scope)."""
        proposal = self.least_privilege(person_id)
        by_id = {g["grant_id"]: g for g in proposal["grants"]}
        unknown = [i for i in grant_ids if i not in by_id or by_id[i]["proposal"] == "keep"]
        if unknown:
            raise InvalidRequest(f"grants {unknown} are not proposed for revocation or reduction")
        applied = []
        for gid in grant_ids:
            entry = by_id[gid]
            result = dict(self._remediator.revoke(gid, actor=actor, reason=f"least privilege: {reason}"))
            if entry["proposal"] == "reduce" and entry.get("replacement"):
                result["replacement"] = dict(self._remediator.replace(gid, entry["replacement"], actor=actor,
                                                                      reason=f"least privilege: {reason}"))
            applied.append(result)
        return {"person_id": person_id, "applied": applied}


REPORT_MEDIA = {"html": "text/html; charset=utf-8", "csv": "application/zip", "xlsx":
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf"}


def seal_run(conn: Any, run_id: int) -> None:
    """Seal a finished run and the finding events it wrote into the trail (same transaction)."""
    events = [i for (i,) in conn.execute(select(t.finding_events.c.id).where(t.finding_events.c.run_id == run_id)
                                         .order_by(t.finding_events.c.id))]
    trail.append_each(conn, kind="finding_event", source_table="audit_finding_events", refs=events)
    trail.append(conn, kind="audit_run", source_table="audit_runs", refs=[run_id])


def _plain_dict(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in d.items()}


def _plain(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row._mapping.items()}


def _run(row: Any) -> dict[str, Any]:
    return _plain(row)


def _finding(row: Any) -> dict[str, Any]:
    return _plain(row)
