"""Sync runs: one source at a time across processes, validated whole, applied in one transaction, logged.

A run (pulled by a connector, pushed as a snapshot, or a held run confirmed) goes:

1. take the source's lease (``sync_locks``; another process holding it -> 409, nothing runs);
2. record the run (``sync_runs``, status ``running``), in its own transaction;
3. check the snapshot whole (``validate.check_snapshot``): a structural problem -> ``rejected``;
4. the same content as the last applied run -> ``unchanged``; a pushed version label already applied
   with other content -> 409;
5. would it disable more than the source's ``disable_threshold`` of its active accounts? -> ``held``
   (the snapshot is kept; ``confirm`` applies it later);
6. apply it (``apply.Applier``) and commit in one transaction -> ``applied``; any error rolls all of it
   back -> ``failed``;
7. release the lease, and bring the live decision state up to the change log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.authz.directory import StateHolder
from app.db import transaction
from app.directory.models import Account, Person
from app.errors import Conflict, InvalidRequest, NotFound
from app.policy.models import Change
from app.sync.apply import Applier, plan_disables
from app.sync.canonical import Snapshot, SourceAccount, SourceAssignment, SourceDepartment, SourceRole
from app.sync.config import SyncConfig
from app.sync.models import SyncConflict, SyncLock, SyncRecordError, SyncRun
from app.sync.validate import InvalidSnapshot, check_snapshot

log = logging.getLogger(__name__)


class SyncService:
    """Runs, pushes, held runs, conflicts and account links."""

    def __init__(self, *, factory: sessionmaker[Session], holder: StateHolder, policy: Any, config: SyncConfig,
                 max_rows: int = 200_000, pullers: dict[str, Callable[[], Snapshot]] | None = None) -> None:
        self._factory = factory
        self._holder = holder
        self._policy = policy  # PolicyService: its live state holds the policy and catches up after a run
        self.config = config
        self.max_rows = max_rows
        self.pullers = pullers or {}
        self._me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    # -- running -------------------------------------------------------------------------------

    def run(self, source: str, *, trigger: str, actor: str) -> dict[str, Any]:
        """Pull a source through its connector and apply what it returns."""
        self.config.source(source)
        puller = self.pullers.get(source)
        if puller is None:
            raise InvalidRequest(f"source {source} has no pull connector configured here; push a snapshot instead")
        with self._lease(source):
            run_id = self._start(source, trigger, actor, None)
            return self._pull_and_apply(run_id, source, puller)

    def _pull_and_apply(self, run_id: int, source: str, puller: Callable[[], Snapshot]) -> dict[str, Any]:
        try:
            snap = puller()
        except Exception as exc:  # the source failed: nothing changes, the run says why
            log.warning("sync pull of %s failed: %s", source, exc)
            return self._finish(run_id, "failed", message=f"pull failed: {exc}")
        try:
            return self._apply(run_id, snap, confirm=False)
        except InvalidSnapshot:
            return self.get_run(run_id)  # rejected: the run says why

    def run_if_due(self, source: str, *, actor: str) -> dict[str, Any] | None:
        """A scheduled run: skipped (None) when any process started one less than the interval ago."""
        config = self.config.source(source)
        puller = self.pullers.get(source)
        if puller is None or config.interval_minutes <= 0:
            return None
        with self._lease(source):
            due = datetime.now(UTC) - timedelta(minutes=config.interval_minutes) + timedelta(seconds=30)
            with self._factory() as session:
                recent = session.scalar(select(func.count()).select_from(SyncRun).where(
                    SyncRun.source == source, SyncRun.started_at > due))
            if recent:
                return None
            run_id = self._start(source, "schedule", actor, None)
            return self._pull_and_apply(run_id, source, puller)

    def push(self, snap: Snapshot, *, actor: str, confirm: bool = False) -> dict[str, Any]:
        """Apply a snapshot a system pushed (idempotent on its version label and content)."""
        self.config.source(snap.source)
        with self._lease(snap.source):
            run_id = self._start(snap.source, "push", actor, snap.version)
            return self._apply(run_id, snap, confirm=confirm)

    def confirm(self, run_id: int, *, actor: str, apply: bool, reason: str) -> dict[str, Any]:
        """Apply (or discard) a held run's snapshot; who did it and why stay on the held run's message."""
        with self._factory() as session:
            run = session.get(SyncRun, run_id)
            if run is None:
                raise NotFound(f"no sync run {run_id}")
            if run.status != "held" or run.held_snapshot is None:
                raise Conflict(f"sync run {run_id} is {run.status}, not held")
            snap, source = snapshot_from_json(run.held_snapshot), run.source
        with self._lease(source):
            with transaction(self._factory) as session:
                held = session.get(SyncRun, run_id)
                if held is None or held.status != "held":
                    raise Conflict(f"sync run {run_id} is no longer held")
                held.status, held.held_snapshot = ("confirmed" if apply else "discarded"), None
                held.message = f"{'confirmed' if apply else 'discarded'} by {actor}: {reason}"
                held.finished_at = datetime.now(UTC)
            if not apply:
                return self.get_run(run_id)
            new_id = self._start(source, "confirm", actor, snap.version)
            return self._apply(new_id, snap, confirm=True)

    def _apply(self, run_id: int, snap: Snapshot, *, confirm: bool) -> dict[str, Any]:
        try:
            snap, notes = check_snapshot(snap, self.max_rows)
        except InvalidSnapshot as exc:
            self._finish(run_id, "rejected", message=exc.message, errors=[("snapshot", "-", d) for d in exc.details])
            raise
        digest = snapshot_digest(snap)
        with self._factory() as session:
            last = session.scalars(select(SyncRun).where(
                SyncRun.source == snap.source, SyncRun.status.in_(("applied", "unchanged")))
                .order_by(SyncRun.id.desc()).limit(1)).first()
            if last is not None and last.digest == digest:
                return self._finish(run_id, "unchanged", digest=digest, message="same content as the last run")
            if snap.version is not None and session.scalar(select(func.count()).select_from(SyncRun).where(
                    SyncRun.source == snap.source, SyncRun.version == snap.version,
                    SyncRun.status.in_(("applied", "unchanged")), SyncRun.digest != digest)):
                self._finish(run_id, "rejected", digest=digest, message=f"version {snap.version} was applied "
                             "with other content")
                raise Conflict(f"version {snap.version} of {snap.source} was already applied with other content; "
                               "send a new version")
            active, gone = plan_disables(session, snap)
        source = self.config.source(snap.source)
        if not confirm and active and gone / active > source.disable_threshold:
            return self._finish(run_id, "held", digest=digest, held=snapshot_to_json(snap),
                                counts={"would_disable": gone, "active": active},
                                message=f"would disable {gone} of {active} active accounts "
                                        f"(more than {source.disable_threshold:.0%}); confirm to apply")
        state = self._holder.require()
        try:
            with transaction(self._factory) as session:
                applier = Applier(session, self.config, source, state.engine.policy, datetime.now(UTC), run_id,
                                  f"sync:{snap.source}")
                outcome = applier.apply(snap)
                for kind, key, message in [*notes, *outcome.errors]:
                    session.add(SyncRecordError(run_id=run_id, kind=kind, key=key[:200], message=message))
        except (IntegrityError, InvalidRequest) as exc:
            log.warning("sync of %s failed and was rolled back: %s", snap.source, exc)
            return self._finish(run_id, "failed", digest=digest, message=f"rolled back, nothing changed: {exc}")
        counts = dict(outcome.counts)
        counts["failed"] = counts.get("failed", 0) + len(notes)
        result = self._finish(run_id, "applied", digest=digest, counts=counts)
        self._policy.live.catch_up()
        return result

    def apply_events(self, source: str, events: list[Any], *, actor: str) -> dict[str, Any]:
        """Incremental change events as one partial snapshot (later events about a key win)."""
        accounts: dict[str, SourceAccount] = {}
        roles: dict[str, SourceRole] = {}
        members: dict[str, list[SourceAssignment]] = {}
        deleted: list[str] = []
        for e in events:
            if e.type == "account.upsert":
                a = e.account
                accounts[a.key] = SourceAccount(**(a.model_dump() | {"department_keys": tuple(a.department_keys)}))
            elif e.type == "account.delete":
                deleted.append(e.key)
                accounts.pop(e.key, None)
            else:
                roles[e.role.key] = SourceRole(e.role.key, e.role.name)
                members[e.role.key] = [SourceAssignment(k, e.role.key, e.scope_type, tuple(e.scope_keys))
                                       for k in dict.fromkeys(e.members)]
        if deleted:
            with self._factory() as session:
                names = {key: name for key, name in session.execute(  # noqa: C416 (typed rows)
                    select(Account.local_id, Account.display_name).where(
                        Account.system == source, Account.local_id.in_(deleted))).all()}
            for key in deleted:
                if key not in names:
                    raise NotFound(f"no account {source}:{key} to delete")
                accounts[key] = SourceAccount(key=key, name=names[key] or key, status="left")
        snap = Snapshot(source=source, accounts=tuple(accounts.values()), roles=tuple(roles.values()),
                        assignments=tuple(x for m in members.values() for x in m),
                        complete=frozenset(f"assignments:{k}" for k in members))
        with self._lease(source):
            run_id = self._start(source, "events", actor, None)
            return self._apply(run_id, snap, confirm=True)

    def ingest_claims(self, source: str, claims: dict[str, Any], *, actor: str,
                      kind: str = "id_token") -> dict[str, Any]:
        """A signed-in person's verified claims (of an ID token or an access token), applied as a
        one-account partial snapshot of ``source``, and the sign-in recorded (``last_login_at``).

        Claims the token does not carry keep the account's values.  When the account already says
        exactly this, no run is made: only the sign-in time is written (``unchanged``).
        """
        from app.sync.claims import claims_snapshot, read_claims, sign_in_time

        config = self.config.source(source)
        claimed = read_claims(claims, config.settings.get("claims"))
        where = (Account.system == source, Account.local_id == claimed.key)
        with self._factory() as session:
            row = session.scalars(select(Account).where(*where)).first()
            stored = _claims_view(row) if row is not None else None
            signed_in_at = sign_in_time(claimed, datetime.now(UTC))
            last = max(signed_in_at, row.last_login_at) if row is not None and row.last_login_at else signed_in_at
            snap = claims_snapshot(source, claimed, stored, last)
            try:
                cleaned: SourceAccount | None = check_snapshot(snap, self.max_rows)[0].accounts[0]  # as stored
            except InvalidSnapshot:
                cleaned = None  # the push below records the rejected run and says why
            same = row is not None and cleaned is not None and _same(row, cleaned)
        if same:
            with transaction(self._factory) as session:
                session.execute(update(Account).where(
                    *where, Account.last_login_at.is_(None) | (Account.last_login_at < signed_in_at))
                    .values(last_login_at=signed_in_at, updated_at=Account.updated_at))  # a sign-in, not an edit
                row = session.scalars(select(Account).where(*where)).one()
                return {"status": "unchanged", "token": kind, "signed_in_at": _iso(signed_in_at),
                        "account": _claims_account_json(row)}
        run = self.push(snap, actor=actor, confirm=True)
        with self._factory() as session:
            row = session.scalars(select(Account).where(*where)).first()  # none when a new account's run failed
            return {"status": run["status"], "token": kind, "signed_in_at": _iso(signed_in_at), "run": run,
                    "account": _claims_account_json(row) if row is not None else None}

    # -- run log -------------------------------------------------------------------------------

    def _start(self, source: str, trigger: str, actor: str, version: str | None) -> int:
        with transaction(self._factory) as session:
            run = SyncRun(source=source, trigger=trigger, actor=actor, status="running", version=version, counts={})
            session.add(run)
            session.flush()
            return run.id

    def _finish(self, run_id: int, status: str, *, message: str | None = None, digest: str | None = None,
                counts: dict[str, Any] | None = None, held: dict[str, Any] | None = None,
                errors: list[tuple[str, str, str]] | None = None) -> dict[str, Any]:
        with transaction(self._factory) as session:
            run = session.get(SyncRun, run_id)
            assert run is not None
            run.status, run.message, run.digest = status, message, digest
            run.counts, run.held_snapshot, run.finished_at = counts or {}, held, datetime.now(UTC)
            for kind, key, text in errors or []:
                session.add(SyncRecordError(run_id=run_id, kind=kind, key=key[:200], message=text))
        log.info("sync run %s of %s: %s", run_id, run.source, status, extra={"counts": counts or {}})
        return self.get_run(run_id)

    def get_run(self, run_id: int) -> dict[str, Any]:
        """One run with its per-record errors."""
        with self._factory() as session:
            run = session.get(SyncRun, run_id)
            if run is None:
                raise NotFound(f"no sync run {run_id}")
            errors = session.scalars(select(SyncRecordError).where(SyncRecordError.run_id == run_id)
                                     .order_by(SyncRecordError.id).limit(1000))
            return run_json(run) | {"errors": [{"kind": e.kind, "key": e.key, "message": e.message} for e in errors]}

    def list_runs(self, source: str | None, limit: int) -> list[dict[str, Any]]:
        """Newest runs first."""
        with self._factory() as session:
            query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
            if source:
                query = query.where(SyncRun.source == source)
            return [run_json(r) for r in session.scalars(query)]

    def list_conflicts(self, *, open_only: bool, person_id: str | None, limit: int) -> list[dict[str, Any]]:
        """Recorded conflicts, newest first."""
        with self._factory() as session:
            query = select(SyncConflict).order_by(SyncConflict.last_seen.desc(), SyncConflict.id.desc()).limit(limit)
            if open_only:
                query = query.where(SyncConflict.resolved_at.is_(None))
            if person_id:
                query = query.where(SyncConflict.person_id == person_id)
            return [{
                "id": c.id, "person_id": c.person_id, "attribute": c.attribute,
                "master": {"source": c.master_source, "value": c.master_value},
                "other": {"source": c.other_source, "value": c.other_value},
                "first_seen": c.first_seen.isoformat(), "last_seen": c.last_seen.isoformat(),
                "resolved_at": c.resolved_at.isoformat() if c.resolved_at else None,
            } for c in session.scalars(query)]

    # -- account links -------------------------------------------------------------------------

    def set_link(self, *, system: str, local_id: str, person_id: str | None, actor: str, reason: str) -> dict[str, Any]:
        """Confirm an account's link to a person, or break it (person_id None): kept across syncs."""
        if not reason.strip():
            raise InvalidRequest("a link change needs a reason")
        with transaction(self._factory) as session:
            account = session.scalars(select(Account).where(Account.system == system,
                                                            Account.local_id == local_id)).first()
            if account is None:
                raise NotFound(f"no account {system}:{local_id}")
            if person_id is not None and session.get(Person, person_id) is None:
                raise NotFound(f"no person {person_id}")
            before = account.person_id
            account.person_id = person_id
            account.link_state = "confirmed" if person_id else "broken"
            account.link_method = "admin" if person_id else None
            account.link_evidence = {**(account.link_evidence or {}), "by": actor, "reason": reason,
                                     "before": before, "at": datetime.now(UTC).isoformat()}
            session.add(Change(actor=actor, kind="account.link", target=f"account:{system}:{local_id}",
                               reason=reason, details={"person_id": person_id, "before": before}))
            out = account_json(account)
        self._policy.live.catch_up()
        return out

    # -- the lease -----------------------------------------------------------------------------

    @contextmanager
    def _lease(self, source: str) -> Iterator[None]:
        seconds = self.config.source(source).lock_seconds
        now = datetime.now(UTC)
        with transaction(self._factory) as session:
            taken = session.execute(update(SyncLock).where(
                SyncLock.source == source, (SyncLock.expires_at.is_(None)) | (SyncLock.expires_at < now))
                .values(holder=self._me, expires_at=now + timedelta(seconds=seconds))).rowcount  # type: ignore[attr-defined]
        if not taken:
            try:
                with transaction(self._factory) as session:
                    session.add(SyncLock(source=source, holder=self._me, expires_at=now + timedelta(seconds=seconds)))
            except IntegrityError:
                raise Conflict(f"a sync of {source} is already running; try again when it ends") from None
        try:
            yield
        finally:
            with transaction(self._factory) as session:
                session.execute(update(SyncLock).where(SyncLock.source == source, SyncLock.holder == self._me)
                                .values(holder=None, expires_at=None))


def _same(row: Account, a: SourceAccount) -> bool:
    """Does the stored account already say what ``a`` says (the claims' evidence included; the
    sign-in time aside)?"""
    attrs = row.attributes or {}
    return (row.display_name, row.status, row.employee_no, row.mobile, row.email, attrs.get("login"),
            attrs.get("departments"), attrs.get("claimed_roles"), attrs.get("claimed_role_claims") or {}) == (
        a.name, a.status, a.employee_no, a.mobile, a.email, a.login, list(a.department_keys),
        a.raw.get("claimed_roles"), a.raw.get("claimed_role_claims") or {})


def _claims_view(row: Account) -> dict[str, Any]:
    """What an account says now, for claims a token leaves out."""
    attrs = row.attributes or {}
    return {"name": row.display_name, "login": attrs.get("login"), "email": row.email, "mobile": row.mobile,
            "employee_no": row.employee_no, "departments": attrs.get("departments") or [],
            "claimed_roles": attrs.get("claimed_roles") or [],
            "claimed_role_claims": attrs.get("claimed_role_claims") or {}}


def _claims_account_json(row: Account) -> dict[str, Any]:
    return account_json(row) | {"last_login_at": _iso(row.last_login_at),
                                "claimed_roles": list((row.attributes or {}).get("claimed_roles") or [])}


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")


def run_json(run: SyncRun) -> dict[str, Any]:
    """A run as JSON (without its held snapshot)."""
    return {"id": run.id, "source": run.source, "trigger": run.trigger, "actor": run.actor, "status": run.status,
            "version": run.version, "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "counts": run.counts or {}, "message": run.message}


def account_json(a: Account) -> dict[str, Any]:
    """An account and its link as JSON."""
    return {"system": a.system, "local_id": a.local_id, "person_id": a.person_id, "status": a.status,
            "link": {"state": a.link_state, "method": a.link_method, "evidence": a.link_evidence or {}}}


def snapshot_to_json(snap: Snapshot) -> dict[str, Any]:
    """A snapshot as plain JSON (held runs keep it)."""
    data = orjson.loads(orjson.dumps({
        "source": snap.source, "version": snap.version, "complete": sorted(snap.complete),
        "taken_at": snap.taken_at.isoformat() if snap.taken_at else None,
        "departments": [asdict(d) for d in snap.departments],
        "accounts": [{k: v for k, v in asdict(a).items() if k != "raw"} | {"raw": a.raw} for a in snap.accounts],
        "roles": [asdict(r) for r in snap.roles], "assignments": [asdict(x) for x in snap.assignments],
    }, default=str))
    return dict(data)


def snapshot_from_json(data: dict[str, Any]) -> Snapshot:
    """The inverse of :func:`snapshot_to_json`."""
    def when(v: Any) -> datetime | None:
        return datetime.fromisoformat(v) if isinstance(v, str) else None

    return Snapshot(
        source=data["source"], version=data.get("version"), complete=frozenset(data.get("complete") or ()),
        taken_at=when(data.get("taken_at")),
        departments=tuple(SourceDepartment(**d) for d in data.get("departments") or ()),
        accounts=tuple(SourceAccount(**(a | {"department_keys": tuple(a.get("department_keys") or ()),
                                            "last_login_at": when(a.get("last_login_at"))}))
                       for a in data.get("accounts") or ()),
        roles=tuple(SourceRole(**r) for r in data.get("roles") or ()),
        assignments=tuple(SourceAssignment(**(x | {"scope_keys": tuple(x.get("scope_keys") or ())}))
                          for x in data.get("assignments") or ()),
    )


def snapshot_digest(snap: Snapshot) -> str:
    """A digest of a snapshot's content, independent of row order (and of raw payloads)."""
    def rows(items: Any, fields: tuple[str, ...]) -> list[bytes]:
        return sorted(orjson.dumps([getattr(x, f) for f in fields], default=str) for x in items)

    h = hashlib.sha256(orjson.dumps(sorted(snap.complete)))
    for name, items, fields in (
        ("departments", snap.departments, ("key", "name", "parent_key", "status", "order")),
        ("accounts", snap.accounts, ("key", "name", "status", "login", "employee_no", "mobile", "email",
                                     "department_keys", "primary_department", "position", "manager_key",
                                     "last_login_at")),
        ("roles", snap.roles, ("key", "name")),
        ("assignments", snap.assignments, ("account_key", "role_key", "scope_type", "scope_keys")),
    ):
        h.update(name.encode())
        for row in rows(items, fields):
            h.update(row)
            h.update(b"\n")
    return h.hexdigest()
