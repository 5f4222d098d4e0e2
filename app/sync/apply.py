"""Apply one validated snapshot to the directory, inside the caller's transaction.

In order: the source's departments (the master source builds the tree; others are mapped onto it),
its accounts (created, updated, or disabled when a complete snapshot no longer lists them), links
from accounts to people (employee number, then mobile, then e-mail; a unique match only; the
master of ``people`` creates joiners; otherwise an unlinked account is an orphan), each person's
attributes (the master's value is written; any other source's different value becomes a recorded
conflict, closed when the values agree again), leavers and movers (a move suspends the grants
scoped to the old department, except ``mover_keeps`` roles), and role assignments (mapped through
``roles.yaml`` onto grants owned by this source; assignments a complete snapshot no longer has are
revoked).

Everything is read up front in bulk and written through the session: the caller commits or rolls
back the whole run.  Each grant change is a ``Change`` row (applied incrementally by every process);
any directory change adds one ``sync.apply`` change (a full reload of the decision state).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from app.authz.policy import Policy
from app.directory.models import Account, Department, DepartmentSourceId, Grant, Person
from app.policy.models import Change
from app.sync.canonical import Snapshot, SourceAccount, SourceDepartment
from app.sync.config import SourceConfig, SyncConfig
from app.sync.models import SyncConflict

PERSON_ATTRIBUTES = ("name", "status", "department", "manager", "position", "mobile", "email", "employee_no")
_SLUG = re.compile(r"[^a-z0-9_-]+")
INCREMENTAL_LIMIT = 20_000  # more changed people and accounts than this: other processes reload in full
SMALL = 1_000  # a snapshot of at most this many accounts reads only the rows it can touch


@dataclass
class Outcome:
    """What a run did: counts, per-record errors, and whether the decision state must be reloaded."""

    counts: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str, str, str]] = field(default_factory=list)
    directory_changed: bool = False
    people: set[str] = field(default_factory=set)  # person ids whose directory view changed
    accounts: set[tuple[str, str]] = field(default_factory=set)  # (system, local id) likewise
    departments_changed: bool = False  # the tree or a source's department ids: a full reload
    would_disable: int = 0
    active_before: int = 0


def plan_disables(session: Session, snap: Snapshot) -> tuple[int, int]:
    """(accounts of the source active now, how many of them this snapshot would disable or drop)."""
    active = {local for local, status in session.execute(
        select(Account.local_id, Account.status).where(Account.system == snap.source)) if status == "active"}
    listed = {a.key: a.status for a in snap.accounts}
    if "accounts" in snap.complete:
        gone = sum(1 for key in active if listed.get(key, "left") != "active")
    else:
        gone = sum(1 for key in active if key in listed and listed[key] != "active")
    return len(active), gone


class Applier:
    """One snapshot of one source, applied in the caller's session."""

    def __init__(self, session: Session, config: SyncConfig, source: SourceConfig, policy: Policy,
                 now: datetime, run_id: int, actor: str) -> None:
        self.s, self.config, self.source, self.policy = session, config, source, policy
        self.now, self.run_id, self.actor = now, run_id, actor
        self.out = Outcome()
        self._paths: dict[str, str] | None = None
        self._by_ref: dict[str, str] = {}
        self._people_by_id: dict[str, Person] = {}
        self._joined: set[str] = set()

    def master_of(self, attribute: str) -> bool:
        return self.config.master(attribute) == self.source.name

    def apply(self, snap: Snapshot) -> Outcome:
        """Apply the snapshot; returns the outcome (nothing is committed here)."""
        with self.s.no_autoflush:  # flushed at the points below, not before every query
            depts = self._departments(snap)
            accounts, fresh = self._accounts(snap, depts)
            self._link(accounts)  # joiners are flushed first; new accounts are inserted linked
            self.s.flush()
            self._insert_accounts(fresh)
            self._people(accounts)
            self.s.flush()
            if snap.roles or snap.assignments or _complete_roles(snap) is not None:
                self._assignments(snap, accounts, depts)
        if self.out.directory_changed:
            self.s.add(Change(actor=self.actor, kind="sync.apply", target=f"sync_run:{self.run_id}",
                              reason=f"sync of {self.source.name}", details=self._change_details()))
        return self.out

    def _change_details(self) -> dict[str, Any]:
        """What other processes need to patch their directory view (or to reload it in full)."""
        out: dict[str, Any] = {"counts": dict(self.out.counts)}
        if self.out.departments_changed or len(self.out.people) + len(self.out.accounts) > INCREMENTAL_LIMIT:
            return out | {"full": True}
        return out | {"people": sorted(self.out.people), "accounts": sorted(list(a) for a in self.out.accounts)}

    # -- departments ---------------------------------------------------------------------------

    def _departments(self, snap: Snapshot) -> dict[str, str]:
        """Source department key -> our department id."""
        rows = self.s.execute(select(DepartmentSourceId.source_id, DepartmentSourceId.department_id)
                              .where(DepartmentSourceId.system == snap.source)).all()
        links: dict[str, str] = {src: did for src, did in rows}  # noqa: C416 (rows, not pairs, to the type checker)
        ours = {d.id: d for d in self.s.scalars(select(Department))}
        by_name_path = {self._name_path(d, ours): d.id for d in ours.values()}
        names = Counter(d.name for d in ours.values())
        # A source that names departments without listing them (OIDC claims): our id, path or unique name.
        self._by_ref = {d.name: d.id for d in ours.values() if names[d.name] == 1}
        self._by_ref.update({d.path: d.id for d in ours.values()} | {d.id: d.id for d in ours.values()})
        by_key = {d.key: d for d in snap.departments}
        master = self.master_of("departments")
        for d in _top_down(snap.departments):
            if d.key in links and links[d.key] in ours:
                if master:
                    self._update_department(ours[links[d.key]], d, links, ours)
                continue
            name_path = self._source_name_path(d, by_key)
            found = by_name_path.get(name_path)
            if found is None and master:
                found = self._create_department(d, links, ours)
                by_name_path[name_path] = found
            if found is None:
                self.out.errors.append(("department", d.key, f"no department of ours matches {'/'.join(name_path)}"))
                self.out.counts["failed"] += 1
                continue
            links[d.key] = found
            self.s.add(DepartmentSourceId(department_id=found, system=snap.source, source_id=d.key))
            self.out.counts["departments_linked"] += 1
            self.out.departments_changed = self.out.directory_changed = True
        return links

    @staticmethod
    def _name_path(d: Department, ours: dict[str, Department]) -> tuple[str, ...]:
        names: list[str] = []
        node: Department | None = d
        while node is not None and len(names) < 64:
            names.append(node.name)
            node = ours.get(node.parent_id) if node.parent_id else None
        return tuple(reversed(names))

    @staticmethod
    def _source_name_path(d: SourceDepartment, by_key: dict[str, SourceDepartment]) -> tuple[str, ...]:
        names: list[str] = []
        node: SourceDepartment | None = d
        while node is not None and len(names) < 64:
            names.append(node.name)
            node = by_key.get(node.parent_key) if node.parent_key else None
        return tuple(reversed(names))

    def _create_department(self, d: SourceDepartment, links: dict[str, str], ours: dict[str, Department]) -> str:
        parent = ours.get(links.get(d.parent_key, "")) if d.parent_key else None
        segment = _slug(d.key)
        path = (parent.path if parent else "") + segment + "/"
        did = f"{self.source.name}-{segment}"[:64]
        row = Department(id=did, code=segment, name=d.name, parent_id=parent.id if parent else None, path=path)
        self.s.add(row)
        self.s.flush()
        ours[did] = row
        self.out.counts["departments_created"] += 1
        self.out.directory_changed = True
        self.out.departments_changed = True
        return did

    def _update_department(self, row: Department, d: SourceDepartment, links: dict[str, str],
                           ours: dict[str, Department]) -> None:
        if row.name != d.name:
            row.name = d.name
            self.out.counts["departments_updated"] += 1
            self.out.directory_changed = True
            self.out.departments_changed = True
        parent_id = links.get(d.parent_key) if d.parent_key else None
        if d.parent_key and parent_id and parent_id != row.parent_id and parent_id in ours:
            old = row.path
            row.parent_id = parent_id
            new = ours[parent_id].path + row.code + "/"
            for other in ours.values():  # the subtree moves with it
                if other.path.startswith(old):
                    other.path = new + other.path[len(old):]
            self.out.counts["departments_moved"] += 1
            self.out.directory_changed = True
            self.out.departments_changed = True

    # -- accounts ------------------------------------------------------------------------------

    def _accounts(self, snap: Snapshot, depts: dict[str, str]) -> tuple[dict[str, Account], list[Account]]:
        """Every account of the source by key, and the new ones (not yet added to the session)."""
        query = select(Account).where(Account.system == snap.source)
        if "accounts" not in snap.complete and len(snap.accounts) <= SMALL:  # a partial push: its own rows
            keys = sorted({a.key for a in snap.accounts} | {x.account_key for x in snap.assignments})
            rows = [a for chunk in _chunks(keys) for a in self.s.scalars(query.where(Account.local_id.in_(chunk)))]
        else:
            rows = list(self.s.scalars(query))
        existing = {a.local_id: a for a in rows}
        fresh: list[Account] = []
        seen: set[str] = set()
        for a in snap.accounts:
            seen.add(a.key)
            row = existing.get(a.key)
            values = self._account_values(a, depts)
            if row is None:
                row = existing[a.key] = Account(system=snap.source, local_id=a.key, link_state="auto",
                                                link_evidence={}, **values)
                fresh.append(row)
                self.out.counts["created"] += 1
                self.out.directory_changed = True
                self.out.accounts.add((snap.source, a.key))
                continue
            if values["last_login_at"] is None:  # a source that does not know sign-ins keeps the ones seen
                del values["last_login_at"]
            changed = {k for k, v in values.items() if getattr(row, k) != v and k != "attributes"}
            if row.attributes != values["attributes"]:
                row.attributes = values["attributes"]
            if changed:
                for k in changed:
                    setattr(row, k, values[k])
                self.out.counts["disabled" if "status" in changed and a.status != "active" else "updated"] += 1
                self.out.directory_changed = True
                self.out.accounts.add((snap.source, a.key))
        if "accounts" in snap.complete:
            for key, row in existing.items():
                if key not in seen and row.status != "left":
                    row.status = "left"
                    self.out.counts["disabled"] += 1
                    self.out.directory_changed = True
                    self.out.accounts.add((snap.source, key))
        return existing, fresh

    def _insert_accounts(self, fresh: list[Account]) -> None:
        """New accounts in one Core executemany (no ORM objects, no RETURNING: nothing needs their ids;
        the ORM's multi-row statements cost PostgreSQL's driver ~20 µs a row to rewrite)."""
        if not fresh:
            return
        table = cast(Table, Account.__table__)
        columns = [c.key for c in table.columns if c.key != "id"]
        rows = [{k: getattr(row, k) for k in columns} for row in fresh]
        for values in rows:
            values["updated_at"] = values["updated_at"] or self.now
            values["link_state"] = values["link_state"] or "auto"
        self.s.execute(insert(table), rows)

    def _account_values(self, a: SourceAccount, depts: dict[str, str]) -> dict[str, Any]:
        primary = a.primary_department or (a.department_keys[0] if a.department_keys else None)
        department_id = (depts.get(primary) or self._by_ref.get(primary)) if primary else None
        if primary and department_id is None:
            self.out.errors.append(("account", a.key, f"department {primary} is not mapped to one of ours"))
        return {
            "display_name": a.name, "status": a.status, "employee_no": a.employee_no, "mobile": a.mobile,
            "email": a.email, "department_id": department_id, "position": a.position,
            "manager_local_id": a.manager_key, "last_login_at": a.last_login_at,
            "attributes": {"login": a.login, "departments": list(a.department_keys), **_jsonable(a.raw)},
        }

    # -- links ---------------------------------------------------------------------------------

    def _link(self, accounts: dict[str, Account]) -> None:
        people = self._candidates(accounts) if len(accounts) <= SMALL else list(self.s.scalars(select(Person)))
        self._people_by_id = {p.id: p for p in people}
        index: dict[str, dict[str, list[Person]]] = {"employee_no": {}, "mobile": {}, "email": {}}
        for p in people:
            for attr in index:
                value = getattr(p, attr)
                if value:
                    index[attr].setdefault(value.lower() if attr == "email" else value, []).append(p)
        joiners: list[tuple[Account, Person]] = []
        for row in accounts.values():
            if row.person_id is not None or row.link_state == "broken":
                continue
            for attr in ("employee_no", "mobile", "email"):
                value = getattr(row, attr)
                matches = index[attr].get(value.lower() if attr == "email" and value else value or "", [])
                if len(matches) == 1:
                    row.person_id = matches[0].id
                    row.link_method, row.link_state = attr, "auto"
                    row.link_evidence = {"matched": attr, "value": value, "run": self.run_id}
                    self.out.counts["linked"] += 1
                    self.out.directory_changed = True
                    self.out.accounts.add((row.system, row.local_id))
                    break
                if len(matches) > 1:
                    self.out.errors.append(("account", row.local_id,
                                            f"{attr} {value} matches {len(matches)} people; not linked"))
                    break
            else:
                if self.master_of("people") and row.status == "active":
                    person = self._create_person(row)
                    joiners.append((row, person))
                    for attr in index:
                        value = getattr(person, attr)
                        if value:
                            index[attr].setdefault(value.lower() if attr == "email" else value, []).append(person)
                else:
                    self.out.counts["orphans"] += 1
        if joiners:
            self.s.flush()  # the new people exist before any account points at them
            self._joined = {person.id for _, person in joiners}
            self._people_by_id.update((person.id, person) for _, person in joiners)
            for row, person in joiners:
                row.person_id, row.link_method, row.link_state = person.id, "created", "auto"
                row.link_evidence = {"created_from": self.source.name, "run": self.run_id}

    def _candidates(self, accounts: dict[str, Account]) -> list[Person]:
        """The people a few accounts may link to or already do (instead of reading every person)."""
        wanted: dict[str, set[str]] = {"employee_no": set(), "mobile": set(), "email": set(), "id": set()}
        for row in accounts.values():
            if row.person_id:
                wanted["id"].add(row.person_id)
            for attr in ("employee_no", "mobile", "email"):
                value = getattr(row, attr)
                if value:
                    wanted[attr].add(value.lower() if attr == "email" else value)
        found: dict[str, Person] = {}
        for attr, column in (("id", Person.id), ("employee_no", Person.employee_no), ("mobile", Person.mobile),
                             ("email", func.lower(Person.email))):
            for chunk in _chunks(sorted(wanted[attr])):
                found.update((p.id, p) for p in self.s.scalars(select(Person).where(column.in_(chunk))))
        return list(found.values())

    def _create_person(self, row: Account) -> Person:
        pid = f"{self.source.name}-{_slug(row.local_id)}"[:64]
        person = Person(id=pid, name=row.display_name or row.local_id, status="active",
                        employee_no=row.employee_no, mobile=row.mobile, email=row.email,
                        department_id=row.department_id, position=row.position)
        self.s.add(person)
        self.out.counts["people_created"] += 1
        self.out.directory_changed = True
        self.out.people.add(pid)
        return person

    # -- people --------------------------------------------------------------------------------

    def _people(self, accounts: dict[str, Account]) -> None:
        # People this run created were made from their account: nothing to compare for them, except
        # the manager, which needs every account's person first.
        linked = [a for a in accounts.values() if a.person_id]
        if not linked:
            return
        people = self._people_by_id
        managers = {a.local_id: a.person_id for a in accounts.values()}
        open_conflicts = {(c.person_id, c.attribute): c for c in self.s.scalars(
            select(SyncConflict).where(SyncConflict.other_source == self.source.name,
                                       SyncConflict.resolved_at.is_(None)))}
        masters_seen: list[tuple[Person, str]] = []
        for row in linked:
            person = people.get(row.person_id or "")
            if person is None:
                continue
            manager = managers.get(row.manager_local_id or "")
            if person.id in self._joined:
                if manager is not None and self.master_of("manager"):
                    person.manager_id = manager
                continue
            values = {
                "name": row.display_name, "status": row.status, "department": row.department_id,
                "manager": manager, "position": row.position,
                "mobile": row.mobile, "email": row.email, "employee_no": row.employee_no,
            }
            for attr, value in values.items():
                if value is None:
                    continue  # the source does not say
                current = _person_value(person, attr)
                if self.master_of(attr):
                    if current != value:
                        self._set_person(person, attr, value, current)
                        masters_seen.append((person, attr))
                    continue
                conflict = open_conflicts.pop((person.id, attr), None)
                if current is not None and current != value:
                    self._conflict(conflict, person, attr, current, value)
                elif conflict is not None:
                    conflict.resolved_at = self.now
                    self.out.counts["conflicts_resolved"] += 1
        self._recheck_conflicts(masters_seen)

    def _set_person(self, person: Person, attr: str, value: str, current: str | None) -> None:
        self.out.directory_changed = True
        self.out.people.add(person.id)
        if attr == "department":
            person.department_id = value
            self.out.counts["movers"] += 1
            if current is not None:
                self._suspend_for_move(person, current, value)
        elif attr == "status":
            person.status = value
            self.out.counts["leavers" if value != "active" else "rejoiners"] += 1
        elif attr == "manager":
            person.manager_id = value
        else:
            setattr(person, attr, value)
        self.out.counts["people_updated"] += 1

    def _conflict(self, row: SyncConflict | None, person: Person, attr: str, master_value: str,
                  other_value: str) -> None:
        if row is None:
            row = SyncConflict(person_id=person.id, attribute=attr, other_source=self.source.name,
                               master_source=self.config.master(attr) or "-", first_seen=self.now)
            self.s.add(row)
            self.out.counts["conflicted"] += 1
        row.master_value, row.other_value = master_value, other_value
        row.last_seen, row.last_run_id = self.now, self.run_id

    def _recheck_conflicts(self, changed: list[tuple[Person, str]]) -> None:
        """The master moved: open conflicts of other sources that now agree are closed."""
        if not changed:
            return
        wanted = {(p.id, attr): _person_value(p, attr) for p, attr in changed}
        ids = sorted({p for p, _ in wanted})
        found = [c for chunk in _chunks(ids) for c in self.s.scalars(select(SyncConflict).where(
            SyncConflict.resolved_at.is_(None), SyncConflict.person_id.in_(chunk)))]
        for c in found:
            if (c.person_id, c.attribute) not in wanted:
                continue
            now_value = wanted[(c.person_id, c.attribute)]
            if now_value == c.other_value:
                c.resolved_at = self.now
                self.out.counts["conflicts_resolved"] += 1
            else:
                c.master_value = now_value

    def _suspend_for_move(self, person: Person, old_dept: str, new_dept: str) -> None:
        if self._paths is None:
            self._paths = {did: path for did, path in self.s.execute(  # noqa: C416 (typed rows)
                select(Department.id, Department.path)).all()}
        paths = self._paths
        old, new = paths.get(old_dept, ""), paths.get(new_dept, "")
        grants = self.s.scalars(select(Grant).where(
            Grant.person_id == person.id, Grant.revoked_at.is_(None), Grant.suspended_at.is_(None),
            Grant.department_id.is_not(None)))
        for g in grants:
            if g.role in self.config.mover_keeps:
                continue
            scope = paths.get(g.department_id or "", "")
            if _covers(scope, g.include_subtree, old) and not _covers(scope, g.include_subtree, new):
                g.suspended_at = self.now
                g.suspend_reason = f"moved from {old or old_dept} to {new or new_dept} (sync of {self.source.name})"
                self.s.add(Change(actor=self.actor, kind="grant.suspend", target=f"grant:{g.id}",
                                  reason=g.suspend_reason, details={"person_id": person.id, "role": g.role}))
                self.out.counts["grants_suspended"] += 1

    # -- role assignments -> grants ------------------------------------------------------------

    def _assignments(self, snap: Snapshot, accounts: dict[str, Account], depts: dict[str, str]) -> None:
        role_names = {r.key: r.name for r in snap.roles}
        ids = {row.person_id for row in accounts.values() if row.person_id}
        homes: dict[str, str | None] = {pid: did for chunk in _chunks(sorted(ids)) for pid, did in self.s.execute(
            select(Person.id, Person.department_id).where(Person.id.in_(chunk))).all()}
        desired: dict[tuple[str, str, str | None, bool, str], str] = {}
        for asg in snap.assignments:
            row = accounts.get(asg.account_key)
            if row is None or row.person_id is None:
                self.out.counts["assignments_unlinked"] += 1
                continue
            source_role = role_names.get(asg.role_key, asg.role_key)
            mapping = (self.policy.mapping_for(self.source.name, source_role)
                       or self.policy.mapping_for(self.source.kind, source_role))
            if mapping is None:
                self.out.errors.append(("assignment", f"{asg.account_key}:{asg.role_key}",
                                        f"source role {source_role} has no mapping in roles.yaml"))
                self.out.counts["failed"] += 1
                continue
            home = homes.get(row.person_id) or row.department_id
            for dept, subtree in self._scopes(asg.scope_type or mapping.scope, asg.scope_keys, row, home, depts):
                desired[(row.person_id, mapping.role, dept, subtree, source_role)] = asg.account_key
        existing: dict[tuple[str, str, str | None, bool, str], Grant] = {}
        grants = select(Grant).where(Grant.source_system == self.source.name, Grant.revoked_at.is_(None))
        complete = _complete_roles(snap)
        if complete != "all":
            spoken = sorted({role_names.get(k, k) for k in (complete or set())} |
                            {role_names.get(x.role_key, x.role_key) for x in snap.assignments})
            grants = grants.where(Grant.source_role.in_(spoken or [""]))
        for g in self.s.scalars(grants):
            existing[(g.person_id, g.role, g.department_id, g.include_subtree, g.source_role or "")] = g
        # A grant suspended for review (its holder moved) is the officer's to restore or revoke: the
        # source asking for the same role again neither revokes it nor grants it anew elsewhere.
        suspended = {(g.person_id, g.role, g.source_role or "") for g in existing.values() if g.suspended_at}
        for key in desired.keys() - existing.keys():
            person_id, role, dept, subtree, source_role = key
            if (person_id, role, source_role) in suspended:
                self.out.counts["grants_held_for_review"] += 1
                continue
            g = Grant(person_id=person_id, role=role, department_id=dept, include_subtree=subtree,
                      source_system=self.source.name, source_role=source_role, granted_by=self.actor,
                      reason=f"assigned {source_role} in {self.source.name}")
            self.s.add(g)
            self.s.flush()
            self.s.add(Change(actor=self.actor, kind="grant.create", target=f"grant:{g.id}", reason=g.reason,
                              details={"person_id": person_id, "role": role, "sync_run": self.run_id}))
            self.out.counts["grants_created"] += 1
        if complete is not None:
            names = None if complete == "all" else {role_names.get(k, k) for k in complete}
            for key in existing.keys() - desired.keys():
                g = existing[key]
                if names is not None and (g.source_role or "") not in names:
                    continue  # a partial snapshot speaks only of its own roles
                if g.suspended_at is not None:
                    continue  # suspended for review: an officer restores or revokes it
                g.revoked_at, g.revoked_by = self.now, self.actor
                g.revoke_reason = f"no longer assigned {g.source_role} in {self.source.name}"
                self.s.add(Change(actor=self.actor, kind="grant.revoke", target=f"grant:{g.id}",
                                  reason=g.revoke_reason, details={"person_id": g.person_id, "role": g.role}))
                self.out.counts["grants_revoked"] += 1

    def _scopes(self, scope: str, keys: Iterable[str], row: Account, home: str | None,
                depts: dict[str, str]) -> list[tuple[str | None, bool]]:
        """Where a mapped role is held: the company, the stated departments, or the person's home
        department (the directory's, which the master source keeps; the account's if it has none)."""
        if scope == "company":
            return [(None, False)]
        subtree = scope == "subtree"
        named = [depts[k] for k in keys if k in depts]
        if scope == "listed" or keys:
            return [(d, subtree) for d in named]
        if home is None:
            self.out.errors.append(("assignment", row.local_id, f"{scope} scope but the account has no department"))
            return []
        return [(home, subtree)]


def _chunks(items: list[str], size: int = 5_000) -> list[list[str]]:
    """Bound the parameters of one IN (PostgreSQL takes at most 65,535 per statement)."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def _complete_roles(snap: Snapshot) -> str | set[str] | None:
    """"all" when the assignments are a complete list, the role keys whose assignments are complete
    (``assignments:<role key>`` entries of a partial snapshot, e.g. one SCIM group), or None."""
    if "assignments" in snap.complete:
        return "all"
    keys = {part.split(":", 1)[1] for part in snap.complete if part.startswith("assignments:")}
    return keys or None


def _covers(scope: str, subtree: bool, path: str) -> bool:
    """Does a grant on department ``scope`` (and below, with ``subtree``) cover department ``path``?"""
    return path.startswith(scope) if subtree else path == scope


def _person_value(person: Person, attr: str) -> str | None:
    if attr == "department":
        return person.department_id
    if attr == "manager":
        return person.manager_id
    value = getattr(person, attr)
    return str(value) if value is not None else None


def _top_down(departments: Iterable[SourceDepartment]) -> list[SourceDepartment]:
    by_key = {d.key: d for d in departments}

    def depth(d: SourceDepartment) -> int:
        n, node = 0, d
        while node.parent_key and node.parent_key in by_key and n < 64:
            node, n = by_key[node.parent_key], n + 1
        return n

    return sorted(by_key.values(), key=depth)


def _slug(key: str) -> str:
    slug = _SLUG.sub("-", key.lower()).strip("-")
    if not slug or len(slug) > 48 or slug != key.lower():
        digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:8]
        slug = f"{slug[:32]}-{digest}".strip("-") if slug else f"d{digest}"
    return slug


def _jsonable(raw: dict[str, Any]) -> dict[str, Any]:
    import orjson

    try:
        return dict(orjson.loads(orjson.dumps(raw, default=str)))
    except (TypeError, orjson.JSONEncodeError):
        return {}
