"""Policy versions and the live state: import the baseline, change rules, export, reload.

Every change is validated (parse + the policy tests) before anything is written; the version, the
change record and the mirrored roles are written in one transaction; only then is the new state
built and swapped in.  A change that fails validation changes nothing.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.authz.directory import State, StateHolder
from app.authz.engine import Engine
from app.authz.policy import Policy, PolicyDelta, edit_policy, parse_bundle, read_bundle
from app.authz.policytest import load_tables, run_tables, table_paths
from app.db import transaction
from app.directory.models import Role
from app.directory.repository import load_directory, load_grant_edges
from app.errors import Conflict, InvalidPolicy, InvalidRequest, NotFound
from app.metrics import Metrics
from app.policy.models import Change, PolicyVersion

log = logging.getLogger(__name__)


class PolicyService:
    """Owns policy versions and rebuilds the decision state after every change."""

    def __init__(self, *, factory: sessionmaker[Session], holder: StateHolder, policies_dir: Path,
                 metrics: Metrics) -> None:
        self._factory = factory
        self._holder = holder
        self._policies_dir = policies_dir
        self._metrics = metrics
        from app.policy.live import LiveState

        self.live = LiveState(factory=factory, holder=holder, metrics=metrics, full_reload=self.reload)

    # -- reading -------------------------------------------------------------------------------

    def active_version(self, session: Session) -> PolicyVersion | None:
        """The newest policy version."""
        return session.scalars(select(PolicyVersion).order_by(PolicyVersion.id.desc()).limit(1)).first()

    def get_version_or_raise(self, session: Session, version_id: int) -> PolicyVersion:
        """A policy version, or NotFound."""
        version = session.get(PolicyVersion, version_id)
        if version is None:
            raise NotFound(f"no policy version {version_id}")
        return version

    def list_versions(self, session: Session) -> list[PolicyVersion]:
        """Every version, newest first."""
        return list(session.scalars(select(PolicyVersion).order_by(PolicyVersion.id.desc())))

    # -- changing ------------------------------------------------------------------------------

    def validate(self, files: Mapping[str, str]) -> Policy:
        """Parse a bundle and run the policy tests; raise InvalidPolicy on any problem."""
        policy = parse_bundle(files)
        self._run_policy_tests(policy, self._tables())
        return policy

    def validate_edit(self, engine: Engine, add: Sequence[str], remove: Sequence[str]) -> tuple[Policy, PolicyDelta]:
        """Edit the engine's policy line by line and run the policy tests on the result.

        Costs the changed lines, not the bundle: the tests run on the lines that can apply in their
        tables' departments, taken from the engine's index (at 100,000 rules a full rebuild per
        change would take seconds).
        """
        policy, delta = edit_policy(engine.policy, add, remove)
        tables = self._tables()
        if tables:
            rules, fields = engine.lines_near(table_paths(tables))
            gone = {id(x) for x in (*delta.rules_removed, *delta.field_rules_removed)}
            near = replace(policy, lines={},
                           rules=tuple(r for r in rules if id(r) not in gone) + delta.rules_added,
                           field_rules=tuple(f for f in fields if id(f) not in gone) + delta.field_rules_added)
            self._run_policy_tests(near, tables)
        return policy, delta

    def _tables(self) -> dict[str, Any]:
        tests_dir = self._policies_dir / "tests"
        return load_tables(tests_dir) if tests_dir.is_dir() else {}

    def _run_policy_tests(self, policy: Policy, tables: Mapping[str, Any]) -> None:
        results = run_tables(policy, tables) if tables else []
        failures = [r for r in results if not r.passed]
        if failures:
            raise InvalidPolicy(
                f"{len(failures)} policy test case(s) fail; nothing was changed",
                details=[f"{r.table}: {r.name}: {r.message}" for r in failures],
            )

    def import_baseline(self, *, actor: str, reason: str) -> PolicyVersion | None:
        """Import ``policies/`` as a new version unless the active one has the same contents."""
        files = read_bundle(self._policies_dir)
        policy = self.validate(files)
        with transaction(self._factory) as session:
            active = self.active_version(session)
            if active is not None and active.digest == policy.digest:
                return None
            version = self._write_version(session, policy, active, actor, reason, "policy.import",
                                          {"source": str(self._policies_dir)})
        self.live.catch_up()
        return version

    def change_rules(self, *, actor: str, reason: str, add: Sequence[str], remove: Sequence[str]) -> PolicyVersion:
        """Add and remove policy lines (``p``/``g``/``p2``) as one new version."""
        if not reason.strip():
            raise InvalidRequest("a policy change needs a reason")
        if not add and not remove:
            raise InvalidRequest("a policy change must add or remove at least one line")
        self.live.catch_up()  # edit the newest version, whoever made it
        state = self._holder.require()
        base = state.policy_version_id
        policy, delta = self.validate_edit(state.engine, add, remove)
        with transaction(self._factory) as session:
            current = self.active_version(session)
            if current is None or current.id != base:
                raise Conflict("the policy changed while this change was validated; nothing was changed, retry")
            version = self._write_version(session, policy, current, actor, reason, "policy.change",
                                          {"added": list(add), "removed": list(remove)})
        self.live.catch_up(prepared=(state.engine.policy, policy, delta))
        return version

    def rollback(self, *, actor: str, reason: str, to_version: int) -> PolicyVersion:
        """Make an earlier version's contents active again, as a new version."""
        if not reason.strip():
            raise InvalidRequest("a rollback needs a reason")
        with self._factory() as session:
            target = self.get_version_or_raise(session, to_version)
            files = dict(target.files)
        policy = self.validate(files)
        with transaction(self._factory) as session:
            current = self.active_version(session)
            version = self._write_version(session, policy, current, actor, reason, "policy.rollback",
                                          {"to_version": to_version})
        self.live.catch_up()
        return version

    def _write_version(self, session: Session, policy: Policy, parent: PolicyVersion | None, actor: str,
                       reason: str, kind: str, details: dict[str, Any]) -> PolicyVersion:
        version = PolicyVersion(parent_id=parent.id if parent else None, digest=policy.digest,
                                files=dict(policy.files), created_by=actor, reason=reason)
        session.add(version)
        try:
            session.flush()
        except IntegrityError as exc:  # another process made a successor of the same version first
            raise Conflict("the policy changed meanwhile; nothing was changed, retry") from exc
        _mirror_roles(session, policy)
        session.add(Change(actor=actor, kind=kind, target=f"policy:{version.id}", reason=reason,
                           details=details, policy_version_id=version.id))
        return version

    # -- the live state ------------------------------------------------------------------------

    def reload(self) -> State:
        """Build the decision state from the database and swap it in."""
        enabled = gc.isenabled()
        gc.disable()  # millions of new objects: collections while building cost as much as the build
        try:
            state = self._build_and_swap()
        finally:
            if enabled:
                gc.enable()
        # Millions of long-lived index objects: keep them out of the cyclic GC's scans, or a full
        # collection (~0.3 s at 100,000 people) lands on some unlucky decision.
        gc.freeze()
        self._metrics.policy_version.set(int(state.version))
        log.info("decision state loaded", extra={"policy_version": state.version})
        return state

    def _build_and_swap(self) -> State:
        with self._holder.lock, self._factory() as session:
            version = self.active_version(session)
            if version is None:
                raise InvalidPolicy("no policy version in the database; run `accessgov policy import`")
            policy = parse_bundle(version.files)
            directory = load_directory(session)
            edges = load_grant_edges(session, dict(directory.departments))
            revision = session.scalar(select(func.max(Change.id))) or 0
            state = State(Engine(policy, edges, str(revision)), directory, str(revision), version.id)
            self._holder.swap(state)
        log.info("decision state built", extra={"grant_edges": len(edges)})
        return state


def _mirror_roles(session: Session, policy: Policy) -> None:
    """Keep the roles table equal to roles.yaml (grants reference it)."""
    existing = {r.name: r for r in session.scalars(select(Role))}
    for name, spec in policy.roles.items():
        row = existing.get(name) or Role(name=name)
        row.title_zh, row.title_en = spec.title_zh, spec.title_en
        row.privileged, row.description = spec.privileged, spec.description
        session.add(row)


def export_version(version: PolicyVersion, directory: Path) -> list[Path]:
    """Write a version's files for review in version control."""
    from app.authz.policy import write_bundle

    write_bundle(version.files, directory)
    return [directory / n for n in sorted(version.files)]


def read_policy_dir(directory: Path) -> dict[str, str]:
    """Read a policy directory (a thin alias used by the CLI)."""
    return read_bundle(directory)
