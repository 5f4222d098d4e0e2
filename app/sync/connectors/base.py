"""The pull-connector contract: raw records in, one canonical :class:`~app.sync.canonical.Snapshot` out.

A connector walks a source system's directory API and yields :class:`RawRecord` objects, the untouched
source JSON of one department, account, role or role assignment.  :meth:`Connector.pull` runs the four
iterators, turns every record into its canonical form through the system's declarative mapping
(``policies/sync/<system>.yaml``, see :mod:`app.sync.connectors.mapping`) and returns one Snapshot.

Any failure, whether the network, a vendor error code, a rate limit that does not clear, a body that
is not JSON or a record the mapping cannot place, raises :class:`SourceError`.  The caller then
changes nothing: a snapshot is applied whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from app.sync.canonical import (
    Snapshot,
    SourceAccount,
    SourceAssignment,
    SourceDepartment,
    SourceRole,
)
from app.sync.connectors.mapping import KINDS, MappingError, SystemMapping

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as the source sent it.

    ``kind`` is one of ``departments``, ``accounts``, ``roles``, ``assignments``.  ``data`` is the
    source's own JSON object; for records a connector composes from two calls (a role and one of its
    members) it is ``{"role": <role object>, "member": <member object>}``, each untouched.
    """

    system: str
    kind: str
    source_id: str
    data: Mapping[str, Any]


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (credentials, tokens) replaced by ``***``; longest first."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class SourceError(Exception):
    """A source could not be read completely; nothing it said may be applied.

    The message names the system, the endpoint and the page.  ``code`` and ``vendor_message`` carry the
    vendor's own error code and text when the source sent one.  Messages never contain credentials.
    """

    def __init__(
        self,
        system: str,
        message: str,
        *,
        endpoint: str | None = None,
        page: int | str | None = None,
        code: str | None = None,
        vendor_message: str | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        secrets = tuple(secrets)
        where = []
        if endpoint:
            where.append(f"endpoint {endpoint}")
        if page is not None:
            where.append(f"page {page}")
        detail = message
        if code is not None:
            detail += f" (vendor code {code}: {vendor_message or ''})".replace(": )", ")")
        text = f"{system}: {detail}" + (f" [{', '.join(where)}]" if where else "")
        self.system = system
        self.endpoint = endpoint
        self.page = page
        self.code = code
        self.vendor_message = redact(vendor_message, secrets) if vendor_message is not None else None
        super().__init__(redact(text, secrets))


@runtime_checkable
class PullConnector(Protocol):
    """What the sync service needs from any pull source."""

    system: str
    source: str

    def pull(self, since: datetime | None = None) -> Snapshot: ...


_CANONICAL_TYPES: dict[str, type[Any]] = {
    "departments": SourceDepartment,
    "accounts": SourceAccount,
    "roles": SourceRole,
    "assignments": SourceAssignment,
}


def _identity(item: Any) -> tuple[str, ...]:
    if isinstance(item, SourceAssignment):
        return (item.account_key, item.role_key, item.scope_type or "", *item.scope_keys)
    return (item.key,)


class Connector:
    """Base of every connector: ``pull`` built from the four ``iter_*`` generators and the mapping.

    Subclasses set ``system`` and ``parts`` (the kinds they can list completely) and override the
    iterators they support.  ``incremental`` says whether ``iter_accounts(since=...)`` really filters;
    a snapshot pulled with ``since`` then does not claim its accounts are complete.
    """

    system: str = ""
    parts: frozenset[str] = frozenset(KINDS)
    incremental: ClassVar[bool] = False

    def __init__(self, *, mapping: SystemMapping, source: str | None = None, clock: Clock | None = None) -> None:
        self.mapping = mapping
        self.source = source or self.system
        self.clock: Clock = clock or utc_now
        self.lookups: dict[str, dict[str, str]] = {}
        self._cache: dict[str, list[Any]] = {}

    def cached(self, name: str, load: Callable[[], Iterable[Any]]) -> list[Any]:
        """A list read once per pull (e.g. the departments the account walk goes through)."""
        if name not in self._cache:
            self._cache[name] = list(load())
        return self._cache[name]

    # The four record streams.  Default: the source has none of this kind.
    def iter_departments(self) -> Iterator[RawRecord]:
        return iter(())

    def iter_accounts(self, since: datetime | None = None) -> Iterator[RawRecord]:  # noqa: ARG002
        return iter(())

    def iter_roles(self) -> Iterator[RawRecord]:
        return iter(())

    def iter_assignments(self) -> Iterator[RawRecord]:
        return iter(())

    def secrets(self) -> tuple[str, ...]:
        """Credentials and tokens to keep out of every error message."""
        return ()

    def record(self, kind: str, source_id: Any, data: Mapping[str, Any]) -> RawRecord:
        return RawRecord(self.system, kind, str(source_id), data)

    def error(self, message: str, **kw: Any) -> SourceError:
        return SourceError(self.system, message, secrets=self.secrets(), **kw)

    def pull(self, since: datetime | None = None) -> Snapshot:
        """Read everything (accounts changed since ``since`` where supported) into one Snapshot."""
        taken_at = self.clock()
        self._cache.clear()
        try:
            return self._pull(since, taken_at)
        except SourceError:
            raise
        except Exception as exc:  # a shape the code did not expect is still a failed read
            raise self.error(f"unexpected {type(exc).__name__}: {exc}") from exc

    def _pull(self, since: datetime | None, taken_at: datetime) -> Snapshot:
        streams: dict[str, Callable[[], Iterator[RawRecord]]] = {
            "departments": self.iter_departments,
            "accounts": lambda: self.iter_accounts(since),
            "roles": self.iter_roles,
            "assignments": self.iter_assignments,
        }
        out: dict[str, tuple[Any, ...]] = {}
        for kind in KINDS:
            out[kind] = self._map_kind(kind, streams[kind]()) if kind in self.parts else ()
        complete = set(self.parts)
        if since is not None and self.incremental:
            complete.discard("accounts")
        return Snapshot(
            source=self.source,
            departments=out["departments"],
            accounts=out["accounts"],
            roles=out["roles"],
            assignments=out["assignments"],
            taken_at=taken_at,
            complete=frozenset(complete),
        )

    def _map_kind(self, kind: str, records: Iterator[RawRecord]) -> tuple[Any, ...]:
        rules = self.mapping.kinds.get(kind)
        if rules is None:
            raise self.error(f"the mapping has no section for {kind}")
        seen: dict[tuple[str, ...], Any] = {}
        for rec in records:
            try:
                values = rules.apply(rec.data, self.lookups)
            except MappingError as exc:
                raise self.error(f"{kind} record {rec.source_id!r} cannot be mapped: {exc}") from exc
            if kind == "accounts":
                values["raw"] = dict(rec.data)
            try:
                item = _CANONICAL_TYPES[kind](**values)
            except TypeError as exc:
                raise self.error(f"{kind} record {rec.source_id!r}: {exc}") from exc
            ident = _identity(item)
            if ident in seen:
                if seen[ident] != item:
                    raise self.error(f"{kind} key {ident[0]!r} appears twice with different contents")
                continue
            seen[ident] = item
        return tuple(seen.values())
