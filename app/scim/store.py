"""The SCIM storage of ``scim2-server``: resources kept in the SCIM tables, every write applied through sync.

A write (create, replace, PATCH, delete) goes, one at a time per source in a process:

1. validate against the store (``userName`` and group ``displayName`` unique, members exist, the
   ETag still current) and build the partial snapshot the write means for the directory; check it
   with the sync service's own structural checks (``check_snapshot``): a bad value is a 400 and
   nothing is pushed;
2. push the snapshot through the sync service (``SyncService.push``, ``confirm=True``): one
   account for a user write, one role and its complete member list for a group write.  The source's
   lease is retried a few times; still busy -> 503.  A rejected or failed run -> a SCIM error, and
   the store is not touched;
3. commit the store change.  Should that fail after the push was applied (another process won a
   race on the same ``userName`` or the same ETag), the store's current state of that resource is
   pushed again so the directory follows the store, and the request fails.

The store is never written while the push runs: on SQLite one writer at a time would otherwise
lock the sync service out.  The directory tables are never written from here.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Union, cast

from scim2_models import (
    EnterpriseUser,
    Group,
    GroupMember,
    GroupMembership,
    InvalidValueException,
    Meta,
    NotFoundException,
    PreconditionFailedException,
    Reference,
    Resource,
    ResourceType,
    ResponseParameters,
    SCIMException,
    ScimFilter,
    SearchRequest,
    UniquenessException,
)
from scim2_models.path import CompareOperator, Comparison
from scim2_server.storage import ScimStorage, SearchPage
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db import transaction
from app.errors import AccessGovError, Conflict
from app.scim.models import ScimGroup, ScimGroupMember, ScimUser
from app.scim.schemas import UserResource
from app.sync.canonical import Snapshot, SourceAccount, SourceAssignment, SourceRole
from app.sync.validate import InvalidSnapshot, check_snapshot

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "idp"  # the sync source SCIM writes to, unless a source in sources.yaml says `scim: true`
LEASE_ATTEMPTS = 6  # tries to take the source's lease before answering 503
LEASE_WAIT = 0.05  # seconds, growing with each try
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class SyncBusy(SCIMException):
    """The source's lease stayed taken (another sync of the source is running): retry later."""

    status = 503
    _default_detail = "another sync of this source is running; retry later"


class SyncFailed(SCIMException):
    """The directory did not take the change; nothing was changed."""

    status = 500
    _default_detail = "the directory did not apply the change; nothing was changed"


def _lock(source: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(source, threading.Lock())


def _now() -> datetime:
    return datetime.now(UTC)


def _etag(version: int) -> str:
    return f'W/"{version}"'


def _fold(value: str) -> str:
    """The comparison key of a case-insensitive value (``userName``, group ``displayName``)."""
    return value.casefold()


class ScimStore(ScimStorage):
    """Users and Groups of one SCIM source; writes go through ``sync.push`` first (see the module)."""

    def __init__(self, factory: sessionmaker[Session], sync: Any, source: str, actor: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.factory, self.sync, self.source, self.actor, self.sleep = factory, sync, source, actor, sleep

    # -- reads ---------------------------------------------------------------------------------

    def get(self, resource_type: ResourceType, resource_id: str, *,
            response_parameters: ResponseParameters[Any] | None = None) -> Resource[Any]:  # noqa: ARG002 (whole)
        with self.factory() as session:
            if resource_type.name == "User":
                user = self._user_row(session, resource_id)
                return self._user(user, self._groups_of(session, [user.id]).get(user.id, []))
            group = self._group_row(session, resource_id)
            return self._group(group, self._members_of(session, [group.id]).get(group.id, []))

    def search(self, resource_types: list[ResourceType], search_request: SearchRequest[Any], *,
               position: Any = None) -> SearchPage:  # noqa: ARG002 (no cursors: paged by index)
        scim_filter = search_request.filter
        start = search_request.start_index_0 or 0
        found: list[Resource[Any]] = []
        with self.factory() as session:
            if len(resource_types) == 1 and scim_filter is None and search_request.sort_by is None:
                return self._page(session, resource_types[0], start, search_request.count)  # paged in SQL
            for resource_type in resource_types:
                if resource_type.name == "User":
                    found.extend(self._users(session, scim_filter if len(resource_types) == 1 else None))
                else:
                    found.extend(self._groups(session, scim_filter if len(resource_types) == 1 else None))
        if scim_filter is not None:
            if len(resource_types) > 1 and found:  # a search at the root: the filter spans every model
                models = tuple(dict.fromkeys(type(r) for r in found))
                scim_filter = cast(Any, ScimFilter)[Union[models]](str(scim_filter))  # noqa: UP007
            found = [r for r in found if scim_filter.match(r)]
        if search_request.sort_by is not None:
            descending = search_request.sort_order == SearchRequest.SortOrder.descending
            with_value = [r for r in found if search_request.sort_value(r) is not None]
            without = [r for r in found if search_request.sort_value(r) is None]
            with_value.sort(key=lambda r: (search_request.sort_value(r), r.id or ""), reverse=descending)
            found = with_value + sorted(without, key=lambda r: r.id or "")
        stop = None if search_request.count is None else start + search_request.count
        return SearchPage(len(found), found[start:stop])

    def _page(self, session: Session, resource_type: ResourceType, start: int, count: int | None) -> SearchPage:
        """A plain list (no filter, no sorting): counted and paged by the database, oldest first."""
        table: Any = ScimUser if resource_type.name == "User" else ScimGroup
        total = session.scalar(select(func.count()).select_from(table).where(table.source == self.source)) or 0
        query = (select(table).where(table.source == self.source).order_by(table.created_at, table.id)
                 .offset(start).limit(count))
        rows = list(session.scalars(query))
        ids = [r.id for r in rows]
        if resource_type.name == "User":
            groups = self._groups_of(session, ids)
            return SearchPage(total, [self._user(r, groups.get(r.id, [])) for r in rows])
        members = self._members_of(session, ids)
        return SearchPage(total, [self._group(r, members.get(r.id, [])) for r in rows])

    def _users(self, session: Session, scim_filter: ScimFilter[Any] | None) -> list[Resource[Any]]:
        query = select(ScimUser).where(ScimUser.source == self.source).order_by(ScimUser.created_at, ScimUser.id)
        narrowed = _equality(scim_filter)
        if narrowed is not None:  # the IdPs' lookups (userName eq, externalId eq, id eq) run in SQL
            attr, value = narrowed
            column = {"username": ScimUser.user_name_key, "externalid": ScimUser.external_id,
                      "id": ScimUser.id}.get(attr)
            if column is not None:
                query = query.where(column == (_fold(value) if attr == "username" else value))
        rows = list(session.scalars(query))
        groups = self._groups_of(session, [r.id for r in rows])
        return [self._user(r, groups.get(r.id, [])) for r in rows]

    def _groups(self, session: Session, scim_filter: ScimFilter[Any] | None) -> list[Resource[Any]]:
        query = select(ScimGroup).where(ScimGroup.source == self.source).order_by(ScimGroup.created_at, ScimGroup.id)
        narrowed = _equality(scim_filter)
        if narrowed is not None:
            attr, value = narrowed
            column = {"displayname": ScimGroup.display_name_key, "externalid": ScimGroup.external_id,
                      "id": ScimGroup.id}.get(attr)
            if column is not None:
                query = query.where(column == (_fold(value) if attr == "displayname" else value))
        rows = list(session.scalars(query))
        members = self._members_of(session, [r.id for r in rows])
        return [self._group(r, members.get(r.id, [])) for r in rows]

    def _user_row(self, session: Session, resource_id: str) -> ScimUser:
        row = session.get(ScimUser, resource_id)
        if row is None or row.source != self.source:
            raise NotFoundException(detail=f"User {resource_id!r} not found")
        return row

    def _group_row(self, session: Session, resource_id: str) -> ScimGroup:
        row = session.get(ScimGroup, resource_id)
        if row is None or row.source != self.source:
            raise NotFoundException(detail=f"Group {resource_id!r} not found")
        return row

    @staticmethod
    def _groups_of(session: Session, user_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for chunk in _chunks(user_ids):
            for member_id, group_id, name in session.execute(
                    select(ScimGroupMember.member_id, ScimGroup.id, ScimGroup.display_name)
                    .join(ScimGroup, ScimGroup.id == ScimGroupMember.group_id)
                    .where(ScimGroupMember.member_id.in_(chunk)).order_by(ScimGroup.display_name)):
                out.setdefault(member_id, []).append((group_id, name))
        return out

    @staticmethod
    def _members_of(session: Session, group_ids: list[str]) -> dict[str, list[ScimGroupMember]]:
        out: dict[str, list[ScimGroupMember]] = {}
        for chunk in _chunks(group_ids):
            for m in session.scalars(select(ScimGroupMember).where(ScimGroupMember.group_id.in_(chunk))
                                     .order_by(ScimGroupMember.member_id)):
                out.setdefault(m.group_id, []).append(m)
        return out

    @staticmethod
    def _user(row: ScimUser, groups: list[tuple[str, str]]) -> Resource[Any]:
        user = UserResource.model_validate(row.data)
        user.id = row.id
        user.meta = Meta(resource_type="User", created=row.created_at, last_modified=row.updated_at,
                         version=_etag(row.version))
        user.groups = [GroupMembership(value=gid, ref=Reference(f"Groups/{gid}"), display=name, type="direct")
                       for gid, name in groups] or None
        return cast(Resource[Any], user)

    @staticmethod
    def _group(row: ScimGroup, members: list[ScimGroupMember]) -> Resource[Any]:
        group = Group.model_validate(row.data)
        group.id = row.id
        group.meta = Meta(resource_type="Group", created=row.created_at, last_modified=row.updated_at,
                          version=_etag(row.version))
        group.members = [GroupMember(value=m.member_id, type=m.member_type, display=m.display,
                                     ref=Reference(f"{m.member_type}s/{m.member_id}")) for m in members] or None
        return group

    # -- writes --------------------------------------------------------------------------------

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        new_id = uuid.uuid4().hex
        with _lock(self.source):
            if resource_type.name == "User":
                with self.factory() as session:
                    values = self._user_values(session, resource, new_id)
                self._push(self._user_snapshot(new_id, resource, "active" if values["active"] else "disabled"))
                try:
                    with transaction(self.factory) as session:
                        now = _now()
                        session.add(ScimUser(id=new_id, source=self.source, version=1, created_at=now,
                                             updated_at=now, **values))
                except IntegrityError:
                    self._restore_user(new_id, resource)
                    raise UniquenessException(detail="userName is already taken") from None
            else:
                with self.factory() as session:
                    values, members = self._group_values(session, resource, new_id)
                self._push(self._group_snapshot(new_id, values["display_name"], members))
                try:
                    with transaction(self.factory) as session:
                        now = _now()
                        session.add(ScimGroup(id=new_id, source=self.source, version=1, created_at=now,
                                              updated_at=now, **values))
                        session.flush()
                        session.add_all(members)
                except IntegrityError:
                    self._restore_group(new_id, values["display_name"])
                    raise UniquenessException(detail="displayName is already taken") from None
        return self.get(resource_type, new_id)

    def update(self, resource_type: ResourceType, resource: Resource[Any], *,
               expected_version: str | None = None) -> Resource[Any]:
        resource_id = cast(str, resource.id)
        with _lock(self.source):
            if resource_type.name == "User":
                with self.factory() as session:
                    row = self._user_row(session, resource_id)
                    _check_version(row.version, expected_version)
                    values = self._user_values(session, resource, resource_id)
                    before = row.version
                self._push(self._user_snapshot(resource_id, resource, "active" if values["active"] else "disabled"))
                self._commit(update(ScimUser).where(ScimUser.id == resource_id, ScimUser.version == before)
                             .values(version=before + 1, updated_at=_now(), **values),
                             lambda: self._restore_user(resource_id, resource))
            else:
                with self.factory() as session:
                    group = self._group_row(session, resource_id)
                    _check_version(group.version, expected_version)
                    values, members = self._group_values(session, resource, resource_id)
                    before, old_name = group.version, group.display_name
                self._push(self._group_snapshot(resource_id, values["display_name"], members, old_name))
                self._commit(update(ScimGroup).where(ScimGroup.id == resource_id, ScimGroup.version == before)
                             .values(version=before + 1, updated_at=_now(), **values),
                             lambda: self._restore_group(resource_id, values["display_name"]), members=members,
                             group_id=resource_id)
        return self.get(resource_type, resource_id)

    def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None) -> None:
        with _lock(self.source):
            if resource_type.name == "User":
                with self.factory() as session:
                    row = self._user_row(session, resource_id)
                    _check_version(row.version, expected_version)
                    user, before = self._user(row, []), row.version
                    groups = self._groups_of(session, [resource_id]).get(resource_id, [])
                    members = self._members_of(session, [gid for gid, _ in groups])
                # The account leaves, and each group it was in keeps its other members.
                snap = self._user_snapshot(resource_id, user, "left")
                roles = tuple(SourceRole(gid, name) for gid, name in groups)
                assignments = tuple(SourceAssignment(m.member_id, gid) for gid, _ in groups
                                    for m in members.get(gid, [])
                                    if m.member_type == "User" and m.member_id != resource_id)
                self._push(Snapshot(source=self.source, accounts=snap.accounts, roles=roles, assignments=assignments,
                                    complete=frozenset(f"assignments:{gid}" for gid, _ in groups)))
                self._commit(delete(ScimUser).where(ScimUser.id == resource_id, ScimUser.version == before),
                             lambda: self._restore_user(resource_id, user, [gid for gid, _ in groups]),
                             also=(update(ScimGroup).where(ScimGroup.id.in_([gid for gid, _ in groups] or [""]))
                                   .values(version=ScimGroup.version + 1, updated_at=_now()),
                                   delete(ScimGroupMember).where(ScimGroupMember.member_id == resource_id)))
            else:
                with self.factory() as session:
                    group = self._group_row(session, resource_id)
                    _check_version(group.version, expected_version)
                    before, name = group.version, group.display_name
                self._push(self._group_snapshot(resource_id, name, []))
                self._commit(delete(ScimGroup).where(ScimGroup.id == resource_id, ScimGroup.version == before),
                             lambda: self._restore_group(resource_id, name),
                             also=(delete(ScimGroupMember).where((ScimGroupMember.group_id == resource_id)
                                                                 | (ScimGroupMember.member_id == resource_id)),))

    def _commit(self, statement: Any, restore: Callable[[], None], *, also: tuple[Any, ...] = (),
                members: list[ScimGroupMember] | None = None, group_id: str | None = None) -> None:
        """Write the store after a successful push; if another process changed the row meanwhile (its
        version moved) or took a unique value, push the store's state again and fail the request."""
        try:
            with transaction(self.factory) as session:
                for other in also:
                    session.execute(other)
                if session.execute(statement).rowcount != 1:  # type: ignore[attr-defined]
                    raise PreconditionFailedException(detail="the resource changed meanwhile; read it again")
                if group_id is not None:
                    session.execute(delete(ScimGroupMember).where(ScimGroupMember.group_id == group_id))
                    session.add_all(members or [])
        except (IntegrityError, PreconditionFailedException) as exc:
            restore()
            if isinstance(exc, IntegrityError):
                raise UniquenessException(detail="a unique value was taken meanwhile") from None
            raise

    # -- validation and snapshots --------------------------------------------------------------

    def _user_values(self, session: Session, resource: Resource[Any], resource_id: str) -> dict[str, Any]:
        user = cast(Any, resource)
        user_name = (user.user_name or "").strip()
        if not user_name:
            raise InvalidValueException(detail="userName is required")
        _check_text("userName", user_name, 200)
        _check_text("externalId", user.external_id, 256)
        _check_text("displayName", user.display_name, 256)
        key = _fold(user_name)
        taken = session.scalar(select(ScimUser.id).where(ScimUser.source == self.source,
                                                         ScimUser.user_name_key == key, ScimUser.id != resource_id))
        if taken is not None:
            raise UniquenessException(detail=f"userName {user_name!r} is already taken")
        data = user.model_copy(deep=True)
        data.id, data.meta, data.groups, data.password = None, None, None, None
        return {"user_name": user_name, "user_name_key": key, "external_id": user.external_id,
                "display_name": user.display_name, "active": user.active is not False, "data": data.model_dump()}

    def _group_values(self, session: Session, resource: Resource[Any],
                      resource_id: str) -> tuple[dict[str, Any], list[ScimGroupMember]]:
        group = cast(Group, resource)
        name = (group.display_name or "").strip()
        if not name:
            raise InvalidValueException(detail="displayName is required")
        _check_text("displayName", name, 200)
        _check_text("externalId", group.external_id, 256)
        taken = session.scalar(select(ScimGroup.id).where(ScimGroup.source == self.source,
                                                          ScimGroup.display_name_key == _fold(name),
                                                          ScimGroup.id != resource_id))
        if taken is not None:
            raise UniquenessException(detail=f"a group named {name!r} exists; group names are unique here")
        wanted: dict[str, GroupMember] = {}
        for m in group.members or []:
            if not m.value:
                raise InvalidValueException(detail="a member has no value")
            wanted.setdefault(m.value, m)
        users = {uid: name for uid, name in session.execute(  # noqa: C416 (typed rows)
            select(ScimUser.id, ScimUser.display_name).where(ScimUser.source == self.source,
                                                             ScimUser.id.in_(list(wanted) or [""])))}
        groups = {gid: gname for gid, gname in session.execute(  # noqa: C416 (typed rows)
            select(ScimGroup.id, ScimGroup.display_name).where(ScimGroup.source == self.source,
                                                               ScimGroup.id.in_(list(wanted) or [""])))}
        members = []
        for value, m in wanted.items():
            if value in users:
                members.append(ScimGroupMember(group_id=resource_id, member_id=value, member_type="User",
                                               display=(m.display or users[value] or None)))
            elif value in groups and value != resource_id:
                members.append(ScimGroupMember(group_id=resource_id, member_id=value, member_type="Group",
                                               display=m.display or groups[value]))
            else:
                raise InvalidValueException(detail=f"member {value!r} is not a User or another Group of this service")
        data = group.model_copy(deep=True)
        data.id, data.meta, data.members = None, None, None
        return ({"display_name": name, "display_name_key": _fold(name), "external_id": group.external_id,
                 "data": data.model_dump()}, members)

    def _user_snapshot(self, resource_id: str, resource: Resource[Any], status: str) -> Snapshot:
        return Snapshot(source=self.source, accounts=(account_of(resource_id, resource, status),),
                        complete=frozenset())

    def _group_snapshot(self, group_id: str, name: str, members: list[ScimGroupMember],
                        old_name: str | None = None) -> Snapshot:
        """The group's role and its complete member list: members no longer listed lose their grants.
        A renamed group also empties its old name (grants remember the source role by name)."""
        roles = [SourceRole(group_id, name)]
        complete = {f"assignments:{group_id}"}
        if old_name is not None and old_name != name:
            roles.append(SourceRole(f"{group_id}:renamed", old_name))
            complete.add(f"assignments:{group_id}:renamed")
        return Snapshot(source=self.source, roles=tuple(roles), complete=frozenset(complete),
                        assignments=tuple(SourceAssignment(m.member_id, group_id) for m in members
                                          if m.member_type == "User"))

    def _push(self, snap: Snapshot) -> dict[str, Any]:
        try:
            snap, _ = check_snapshot(snap, self.sync.max_rows)
        except InvalidSnapshot as exc:
            raise InvalidValueException(detail=f"{exc.message}: {'; '.join(exc.details or [])}") from None
        for attempt in range(LEASE_ATTEMPTS):
            try:
                run: dict[str, Any] = self.sync.push(snap, actor=self.actor, confirm=True)
                break
            except InvalidSnapshot as exc:
                raise InvalidValueException(detail=f"{exc.message}: {'; '.join(exc.details or [])}") from None
            except Conflict as exc:
                if "already running" not in exc.message:
                    raise SyncFailed(detail=exc.message) from None
                self.sleep(LEASE_WAIT * (attempt + 1))
            except AccessGovError as exc:
                raise SyncFailed(detail=exc.message) from None
        else:
            raise SyncBusy
        if run["status"] not in ("applied", "unchanged"):
            raise SyncFailed(detail=f"sync run {run['id']} of {self.source} {run['status']}: {run.get('message')}; "
                                    "nothing was changed")
        return run

    def _restore_user(self, resource_id: str, attempted: Resource[Any], groups: list[str] | None = None) -> None:
        """Push the store's state of a user again (or, when the store has none, the account leaves),
        and the member lists of the groups a failed deletion had taken it out of."""
        try:
            with self.factory() as session:
                row = session.get(ScimUser, resource_id)
                user = self._user(row, []) if row is not None else attempted
                status = ("active" if row.active else "disabled") if row is not None else "left"
            self._push(self._user_snapshot(resource_id, user, status))
        except Exception:
            log.exception("SCIM: could not restore the directory's account %s after a failed store write", resource_id)
        for group_id in groups or []:
            self._restore_group(group_id, group_id)

    def _restore_group(self, group_id: str, name: str) -> None:
        """Push the store's members of a group again (none when the store has no such group)."""
        try:
            with self.factory() as session:
                row = session.get(ScimGroup, group_id)
                members = self._members_of(session, [group_id]).get(group_id, [])
            self._push(self._group_snapshot(group_id, row.display_name if row is not None else name, members))
        except Exception:
            log.exception("SCIM: could not restore the directory's group %s after a failed store write", group_id)


def account_of(resource_id: str, resource: Resource[Any], status: str) -> SourceAccount:
    """A SCIM User as the sync source's account (keyed by the SCIM id, which never changes)."""
    user = cast(Any, resource)
    enterprise = user[EnterpriseUser]
    name = user.name
    formatted = (name.formatted or " ".join(p for p in (name.given_name, name.family_name) if p)) if name else None
    manager = enterprise.manager.value if enterprise is not None and enterprise.manager is not None else None
    department = enterprise.department if enterprise is not None else None
    return SourceAccount(
        key=resource_id, name=(user.display_name or formatted or user.user_name or resource_id).strip()[:200],
        status=status, login=user.user_name, employee_no=(enterprise.employee_number or None) if enterprise else None,
        mobile=_pick(user.phone_numbers, "mobile"), email=_pick(user.emails, "work"),
        department_keys=(department,) if department else (), position=user.title or None, manager_key=manager,
        raw={"userName": user.user_name, "externalId": user.external_id},
    )


def _pick(values: list[Any] | None, preferred_type: str) -> str | None:
    """The primary value, else the one of the preferred type, else the first."""
    if not values:
        return None
    ranked = sorted((v for v in values if v.value),
                    key=lambda v: (not v.primary, str(v.type or "").lower() != preferred_type))
    return str(ranked[0].value) if ranked else None


def _equality(scim_filter: ScimFilter[Any] | None) -> tuple[str, str] | None:
    """(attribute, value) of a filter ``attr eq "value"`` on a top-level attribute, else None."""
    if scim_filter is None:
        return None
    node = scim_filter.ast
    if not isinstance(node, Comparison) or node.op != CompareOperator.eq or not isinstance(node.value, str):
        return None
    path = str(node.attr_path)
    if path.lower().startswith("urn:"):
        _, _, path = path.rpartition(":")
    return (path.lower(), node.value) if "." not in path else None


def _check_version(current: int, expected: str | None) -> None:
    if expected is not None and expected != _etag(current):
        raise PreconditionFailedException(detail="the resource changed since that version")


def _check_text(attr: str, value: str | None, limit: int) -> None:
    if value is None:
        return
    if len(value) > limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidValueException(detail=f"{attr} is longer than {limit} characters or holds control characters")


def _chunks(items: list[str], size: int = 5_000) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]

