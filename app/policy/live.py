"""Bring the live decision state up to the change log, one change at a time, without rebuilding.

The same path serves changes made in this process (called right after their transaction commits)
and changes made by other workers or replicas (called by the refresher).  Grant, delegation and
policy changes are applied to the engine's indexes incrementally; any other kind of change (a
demo load, a directory sync) falls back to a full reload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from app.authz.directory import AccountView, Directory, PersonView, State, StateHolder
from app.authz.engine import Engine, GrantEdge
from app.authz.policy import Policy, PolicyDelta, edit_policy, parse_bundle
from app.directory.models import Account, Delegation, Grant, Person
from app.directory.repository import delegated_edge, grant_edge
from app.metrics import Metrics
from app.policy.models import Change, PolicyVersion

log = logging.getLogger(__name__)
Prepared = tuple[Policy, Policy, PolicyDelta]  # (policy it was made from, new policy, delta) of a change
INCREMENTAL = frozenset({"account.link", "delegation.create", "grant.create", "grant.restore", "grant.revoke",
                         "grant.suspend", "policy.change", "policy.import", "policy.rollback", "sync.apply"})


class _Diverged(Exception):
    """The in-memory policy no longer matches the database: reload in full."""


class LiveState:
    """Applies the change log to the in-memory state."""

    def __init__(self, *, factory: sessionmaker[Session], holder: StateHolder, metrics: Metrics,
                 full_reload: Callable[[], State]) -> None:
        self._factory = factory
        self._holder = holder
        self._metrics = metrics
        self._full_reload = full_reload
        self._prepared: Prepared | None = None
        self._directory: Directory = Directory()

    def catch_up(self, prepared: Prepared | None = None) -> bool:
        """Apply every change newer than the state; True if anything was applied.

        ``prepared`` is a policy edit this process has just validated and committed: applied as is
        when the engine still holds the policy it was made from (otherwise it is redone from the log).
        """
        self._prepared = prepared
        with self._holder.lock:
            state = self._holder.current
            if state is None:
                self._full_reload()
                return True
            with self._factory() as session:
                changes = list(session.scalars(select(Change).where(Change.id > int(state.version))
                                               .order_by(Change.id)))
                if not changes:
                    return False
                if any(c.kind not in INCREMENTAL or _needs_full(c) for c in changes):
                    self._full_reload()
                    return True
                started = time.perf_counter()
                policy_version_id = state.policy_version_id
                self._directory = state.directory
                try:
                    for change in changes:
                        policy_version_id = self._apply(session, state, change) or policy_version_id
                except _Diverged as exc:  # never serve a policy that differs from the database's
                    log.warning("%s; reloading in full", exc)
                    self._full_reload()
                    return True
            new = State(state.engine, self._directory, str(changes[-1].id), policy_version_id)
            self._holder.swap(new)
        self._metrics.policy_version.set(changes[-1].id)
        log.info("applied %d change(s) incrementally in %.2f ms", len(changes),
                 (time.perf_counter() - started) * 1000, extra={"policy_version": new.version})
        return True

    def _apply(self, session: Session, state: State, change: Change) -> int | None:
        engine, departments = state.engine, dict(state.directory.departments)
        tail = change.target.split(":", 1)[1] if ":" in change.target else ""
        number = int(tail) if tail.isdigit() else 0
        if change.kind in ("grant.create", "grant.restore"):
            grant = session.get(Grant, number)
            if grant is not None and grant.revoked_at is None and grant.suspended_at is None:
                engine.remove_grant(number)  # a restore after a reload may find the edge already there
                self._add_grant(session, engine, grant, departments)
        elif change.kind in ("grant.revoke", "grant.suspend"):
            engine.remove_grant(number)
        elif change.kind == "delegation.create":
            delegation = session.get(Delegation, number)
            if delegation is not None and delegation.revoked_at is None and _active(session, delegation):
                for edge in engine.grants_of(f"user:{delegation.from_person_id}"):
                    if edge.role == delegation.role and edge.delegated_from is None:
                        engine.add_grant(delegated_edge(edge, delegation))
        elif change.kind == "policy.change":
            return self._apply_edit(session, engine, change)
        elif change.kind == "sync.apply":
            self._patch_directory(session, [str(p) for p in change.details.get("people", [])],
                                  [(str(a[0]), str(a[1])) for a in change.details.get("accounts", [])])
        elif change.kind == "account.link":
            system, _, local = change.target.removeprefix("account:").partition(":")
            self._patch_directory(session, [], [(system, local)])
        else:  # policy.import / policy.rollback: whole bundles, diffed line by line
            version = session.get(PolicyVersion, change.policy_version_id)
            if version is not None:
                counts = engine.apply_policy(parse_bundle(version.files))
                log.info("policy version %s applied", version.id, extra=counts)
                return version.id
        return None

    def _patch_directory(self, session: Session, people: list[str], accounts: list[tuple[str, str]]) -> None:
        """Re-read the people and accounts a sync changed into a copy of the directory view."""
        if people and session.scalar(select(func.count()).select_from(Delegation).where(
                Delegation.from_person_id.in_(people), Delegation.revoked_at.is_(None))):
            raise _Diverged("a changed person delegates a role (deputies' edges follow the delegator)")
        directory = self._directory
        paths = directory.departments
        new_people = dict(directory.people)
        for chunk in _chunks(people):
            for pid, name, status, did in session.execute(select(
                    Person.id, Person.name, Person.status, Person.department_id).where(Person.id.in_(chunk))):
                new_people[pid] = PersonView(pid, name, status, did, paths.get(did, "") if did else "")
        new_accounts = dict(directory.accounts)
        for chunk in _chunks(accounts):
            for system, local, person_id, status in session.execute(select(
                    Account.system, Account.local_id, Account.person_id, Account.status).where(
                    tuple_(Account.system, Account.local_id).in_(chunk))):
                new_accounts[(system, local)] = AccountView(system, local, person_id, status)
        self._directory = replace(directory, people=new_people, accounts=new_accounts)

    def _apply_edit(self, session: Session, engine: Engine, change: Change) -> int | None:
        """A line edit: apply its own lines; the new policy's digest must be the stored version's."""
        digest = session.scalar(select(PolicyVersion.digest).where(PolicyVersion.id == change.policy_version_id))
        if digest is None:
            return None
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[0] is engine.policy and prepared[1].digest == digest:
            _, policy, delta = prepared
        else:
            policy, delta = edit_policy(engine.policy, change.details.get("added", []),
                                        change.details.get("removed", []))
            if policy.digest != digest:
                raise _Diverged(f"policy version {change.policy_version_id}: edit gives another digest")
        counts = engine.apply_delta(delta, policy)
        log.info("policy version %s applied", change.policy_version_id, extra=counts)
        return change.policy_version_id

    def _add_grant(self, session: Session, engine: Engine, grant: Grant, departments: dict[str, str]) -> None:
        edge = grant_edge(grant, departments)
        engine.add_grant(edge)
        deputies = session.scalars(select(Delegation).where(
            Delegation.from_person_id == grant.person_id, Delegation.role == grant.role,
            Delegation.revoked_at.is_(None)))
        for delegation in deputies:
            if _active(session, delegation):
                engine.add_grant(delegated_edge(edge, delegation))


def _needs_full(change: Change) -> bool:
    """A sync that changed departments (or too much, or an older row without the lists): reload."""
    if change.kind != "sync.apply":
        return False
    details = change.details or {}
    return bool(details.get("full")) or "people" not in details


def _chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _active(session: Session, delegation: Delegation) -> bool:
    """A deputy acts for an active delegator only."""
    return session.scalar(select(func.count()).select_from(Person).where(
        Person.id == delegation.from_person_id, Person.status == "active")) == 1


__all__ = ["GrantEdge", "LiveState"]
