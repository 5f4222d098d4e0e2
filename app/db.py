"""Database engine, session factory and the declarative base (SQLite embedded or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import orjson
from sqlalchemy import JSON, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def utcnow() -> datetime:
    """Now, timezone-aware."""
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    """An engine for the URL; SQLite gets WAL, foreign keys and its directory created."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               json_serializer=_json_dumps)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, json_serializer=_json_dumps)


def _json_dumps(value: Any) -> str:
    """JSON columns through orjson (the decision log writes one per decision)."""
    return orjson.dumps(value).decode()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """The session factory every service receives (its sessions seal new change rows into the audit trail)."""
    factory = sessionmaker(engine, expire_on_commit=False)
    event.listen(factory, "after_flush", _note_sealed_rows)
    event.listen(factory, "before_commit", _seal_rows)
    event.listen(factory, "after_transaction_end", _forget_sealed_rows)
    return factory


# -- the audit trail: rows added through the ORM to these tables are sealed in the same transaction --

SEALED_TABLES = {"changes": "change"}  # table -> the trail entry's kind (one entry per row)
# PostgreSQL: the channel a committed change is announced on (``app.policy.refresher`` listens on it).
CHANGES_CHANNEL = "accessgov_changes"
_PENDING = "accessgov.trail.pending"


def _note_sealed_rows(session: Session, _context: Any) -> None:
    """After a flush: remember the new rows of sealed tables (their ids are known now)."""
    for obj in session.new:
        table = getattr(obj, "__tablename__", None)
        if table in SEALED_TABLES:
            session.info.setdefault(_PENDING, []).append((table, obj.id))


def _seal_rows(session: Session) -> None:
    """Before commit: flush what is pending, then seal the remembered rows (one trail entry each, under
    the trail head's lock, taken last so that it is held only until the commit)."""
    session.flush()
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    from audit import trail

    by_table: dict[str, list[Any]] = {}
    for table, ref in pending:
        by_table.setdefault(table, []).append(ref)
    conn = session.connection()
    for table, refs in by_table.items():
        trail.append_each(conn, kind=SEALED_TABLES[table], source_table=table, refs=sorted(set(refs)),
                          skip_missing=True)
    if "changes" in by_table and conn.dialect.name == "postgresql":
        # Sent at commit, and only if the transaction commits: the other processes' refreshers wake at once.
        conn.exec_driver_sql("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, str(max(by_table["changes"]))))


def _forget_sealed_rows(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction ended (a rollback drops its rows too)
        session.info.pop(_PENDING, None)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits together or not at all."""
    with factory() as session, session.begin():
        yield session
