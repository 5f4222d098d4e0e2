"""The decision log: every decision is queued and written in batches by a background thread.

Recording never changes an answer: ``record_rows`` only appends to a bounded queue.  While the
queue is more than half full (``backlogged``), the decision endpoints wait for the writer before
deciding (backpressure), so a load the writer cannot follow slows answers down instead of losing
records.  When the queue is full all the same (the database away for long), the decision is
counted as dropped; when the database is down the batch is kept and retried, so records survive an
outage as long as the buffer lasts.  ``stop`` flushes.

What is queued is a plain tuple per decision (``LogRow``, the table's columns in order, the JSON
columns already serialised), built by the decision path; the writer hands whole batches to the
database driver without the ORM: one ``executemany`` in one transaction on SQLite, ``COPY`` on
PostgreSQL, plus one ``executemany`` that folds the batch into the usage aggregate.  This keeps
the writer thread's share of the process's interpreter lock small (most of the work is in C, and
SQLite and PostgreSQL release the lock while they work), so it does not hold up answers.

Each transaction also seals its rows into the audit trail (``audit.trail``): the rows are hashed
(sorted by id) before the database is touched, then, under the trail head's lock, they are written
with ``seal`` = the new entry's seq, and the entry goes in beside them.  The same transaction folds
the fields that came back ``visible`` or ``masked`` into ``field_usage`` (every non-hidden field the
caller asked about: only the resource type's declared fields can be non-hidden).  Locks are taken in
one order, usage rows, field-usage rows, then the head, so writers in several processes never
deadlock, and the head is held only for the rows' insert.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.metrics import Metrics
from audit import trail

log = logging.getLogger(__name__)

# The columns of ``decision_log`` in the order of a LogRow (the trail's canonical order too).
COLUMNS = ("id", "at", "caller", "subject", "person_id", "action", "resource_type", "resource_id", "allowed",
           "policy_version", "reason", "fields")
if trail.DECISION_LOG.columns != COLUMNS:  # the trail hashes LogRow tuples by position
    raise RuntimeError("audit.trail.DECISION_LOG must list the decision log's columns in LogRow order")
SEALED_COLUMNS = (*COLUMNS, "seal")
# id, at (aware UTC), caller, subject, person_id, action, resource_type, resource_id, allowed,
# policy_version, reason (JSON text), fields (JSON text)
LogRow = tuple[str, datetime, str, str, str | None, str, str, str | None, bool, str, str, str]
EMPTY_JSON = "{}"


@dataclass(slots=True)  # one per decision: not frozen, for speed
class DecisionEntry:
    """One decision as it will be stored (the decision path builds ``LogRow`` tuples directly)."""

    id: str
    at: datetime
    caller: str
    subject: str
    person_id: str | None
    action: str
    resource_type: str
    resource_id: str | None
    allowed: bool
    policy_version: str
    reason: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    def row(self) -> LogRow:
        """The entry as a LogRow (strings cut to their column's length)."""
        return (self.id, self.at, self.caller[:200], self.subject[:400], self.person_id, self.action[:64],
                self.resource_type[:64], self.resource_id[:400] if self.resource_id else None, self.allowed,
                self.policy_version, orjson.dumps(self.reason).decode() if self.reason else EMPTY_JSON,
                orjson.dumps(self.fields).decode() if self.fields else EMPTY_JSON)


class DecisionRecorder(Protocol):
    """Where decisions go."""

    def record(self, entry: DecisionEntry) -> None: ...
    def record_rows(self, rows: Sequence[LogRow]) -> None: ...
    def backlogged(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def flush(self, timeout: float = 10.0) -> bool: ...


class NullDecisionRecorder:
    """Records nothing (decision log disabled); warns once when built."""

    def __init__(self) -> None:
        log.warning("decision log disabled: decisions are not recorded")

    def record(self, entry: DecisionEntry) -> None:
        """Drop the entry."""

    def record_rows(self, rows: Sequence[LogRow]) -> None:
        """Drop the rows."""

    def backlogged(self) -> bool:
        """Never."""
        return False

    def start(self) -> None:
        """Nothing to start."""

    def stop(self) -> None:
        """Nothing to stop."""

    def flush(self, timeout: float = 10.0) -> bool:  # noqa: ARG002 - the protocol's signature
        """Nothing to flush."""
        return True


class DbDecisionRecorder:
    """Batched, bounded writer of the decision log and the usage aggregate."""

    def __init__(self, factory: sessionmaker[Session], metrics: Metrics, *, queue_size: int = 100_000,
                 batch_size: int = 500, flush_seconds: float = 0.5) -> None:
        self._factory = factory
        self._metrics = metrics
        # A deque: append, extend and popleft are atomic under the GIL and far cheaper than
        # queue.Queue's locks on a path taken once per decision.  The bound is checked before adding.
        self._queue: deque[LogRow] = deque()
        self._max = queue_size
        self._batch_size = batch_size
        self._backlog = 4 * batch_size  # this many waiting are written at once (else up to flush_seconds later)
        self._flush_seconds = flush_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()  # a backlog, stop() and flush() cut the writer's wait short
        self._busy = False
        self._thread: threading.Thread | None = None
        metrics.log_queue_depth.set_function(lambda: len(self._queue))

    def record(self, entry: DecisionEntry) -> None:
        """Queue an entry; if the buffer is full, count it as dropped."""
        self.record_rows((entry.row(),))

    def record_rows(self, rows: Sequence[LogRow]) -> None:
        """Queue rows (one request's decisions); those that do not fit the buffer are counted as dropped."""
        room = self._max - len(self._queue)
        if room >= len(rows):
            self._queue.extend(rows)
            if len(self._queue) >= self._backlog and not self._wake.is_set():
                self._wake.set()  # a backlog waits: the writer need not gather any longer
            return
        if room > 0:
            self._queue.extend(rows[:room])
        self._metrics.log_dropped.inc(len(rows) - max(room, 0))

    def backlogged(self) -> bool:
        """More than half the buffer waits: the decision endpoints then let the writer catch up first."""
        return len(self._queue) * 2 > self._max

    def start(self) -> None:
        """Start the writer thread."""
        self._stop.clear()
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._queue:  # the database did not take them in time: say so, never lose them silently
            self._metrics.log_dropped.inc(len(self._queue))
            log.error("%d decisions could not be written before shutdown", len(self._queue))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._queue and not self._busy:
                return True
            self._wake.set()
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        pending: list[LogRow] = []
        backoff = 0.1
        while True:
            self._busy = True  # before taking, so flush() never sees "empty and idle" mid-write
            # Whatever waits, up to 10 batches, is one transaction: fewer round trips, and fewer
            # times the writer waits for the interpreter lock, when it matters most.
            pending.extend(self._take(10 * self._batch_size - len(pending)))
            if pending:
                try:
                    write_rows(self._factory.kw["bind"], pending)
                    pending, backoff = [], 0.1
                except Exception:
                    self._metrics.log_write_failures.inc()
                    pending = self._salvage(pending)
                    if pending:
                        log.exception("decision log write failed; %d decisions kept for retry", len(pending))
                        time.sleep(backoff)
                        backoff = min(backoff * 2, 5.0)
                        continue
            self._busy = False
            if len(self._queue) < self._backlog:
                if self._stop.is_set():
                    if not self._queue:
                        return
                    continue  # stopping: write the rest at once
                # Rows wait for more (up to flush_seconds, or until a backlog of 4 batches, or a flush)
                # instead of being written a few per transaction as they come: small transactions
                # cost several times the CPU per row of big ones (each row of a random person dirties
                # its own index and usage pages), and each takes the interpreter lock from the answers
                # again.  Single requests: 5-90 rows per transaction before, ~750 per worker now;
                # batches: 500 or 5,000 before, 2,000-5,000 now.
                self._wake.wait(self._flush_seconds)
                self._wake.clear()

    def _salvage(self, batch: list[LogRow]) -> list[LogRow]:
        """Write a failed batch one by one: if some rows go in, the others are poison and are dropped.

        If none goes in, the database is away: keep them all for the retry.
        """
        failed = []
        engine = self._factory.kw["bind"]
        for row in batch:
            try:
                write_rows(engine, [row])
            except Exception:
                failed.append(row)
        if len(failed) == len(batch):
            return failed
        for row in failed:
            self._metrics.log_dropped.inc()
            log.error("decision %s could not be stored and was dropped", row[0])
        return []

    def _take(self, limit: int) -> list[LogRow]:
        q = self._queue
        n = min(limit, len(q))
        popleft = q.popleft
        return [popleft() for _ in range(n)]


def write_batch(factory: sessionmaker[Session], entries: Sequence[DecisionEntry]) -> None:
    """Insert decisions and fold them into the usage aggregate, in one transaction."""
    write_rows(factory.kw["bind"], [e.row() for e in entries])


def write_rows(engine: Engine, rows: Sequence[LogRow], *, seal: bool = True) -> None:
    """Insert log rows, fold them into the usage aggregates and seal them into the audit trail, in one
    transaction, through the driver.  ``seal=False`` only for benchmarks: unsealed rows are findings
    of ``accessgov audit verify``."""
    if not rows:
        return
    hashes: list[bytes] | None = None
    if seal:  # hashed before the database is touched: the trail's head is held only for the insert
        rows = sorted(rows, key=_BY_ID)
        hashes = trail.decision_hashes(rows)
    usage = _usage_rows(rows)
    fields = _field_usage_rows(rows)
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        try:
            if engine.dialect.name == "postgresql":
                _write_postgres(cur, conn.info, rows, usage, fields, hashes)
            else:
                if not conn.info.get(_SQLITE_CACHE_SET):
                    cur.execute(_SQLITE_CACHE)
                    conn.info[_SQLITE_CACHE_SET] = True
                _write_sqlite(cur, rows, usage, fields, hashes)
        finally:
            cur.close()
        conn.commit()
    except BaseException:
        conn.info.pop(_PG_FOLD_READY, None)
        try:
            conn.rollback()
        except Exception:  # the connection is gone: the original error is what matters
            log.debug("rollback after a failed decision-log write failed", exc_info=True)
        raise
    finally:
        conn.close()


_BY_ID = itemgetter(0)


def _seal_entry(cur: Any, pg: bool, rows: Sequence[LogRow],
                hashes: list[bytes] | None) -> tuple[trail.Head | None, trail.Entry | None]:
    """Lock the trail's head and make the entry sealing ``rows`` (sorted by id)."""
    if hashes is None:
        return None, None
    head = trail.lock_head(cur, pg)
    entry = trail.next_entry(head, kind=trail.DECISIONS, source_table="decision_log", ref_first=rows[0][0],
                             ref_last=rows[-1][0], hashes=hashes)
    return head, entry


# SQLite: many rows per INSERT (multi-row VALUES).  The writer thread gives up the interpreter lock
# while SQLite works and, each time it wants it back, may wait for the request thread (up to the
# switch interval): with one statement per ROWS_PER_STATEMENT rows instead of one per row, it asks a
# few times per batch.  (Cheaper in CPU than executemany too; json_each was tried: twice the CPU.)
# Under batch load the loop thread always holds the lock, so those waits bound the writer: with 100
# rows per statement the log fell behind at ~60,000 decisions/s (backpressure); with 1,000 it kept up
# to 73,000-77,000 (demo, 2 workers; 2,000 gained nothing more).
ROWS_PER_STATEMENT = 1000  # 13,000 parameters (12 columns and the seal), well under SQLite's 32,766
_USAGE_COLUMNS = "person_id, resource_type, action, count, allows, denies, first_used, last_used"
_USAGE_CONFLICT = (" ON CONFLICT (person_id, resource_type, action) DO UPDATE SET count = usage.count + excluded.count,"
                   " allows = usage.allows + excluded.allows, denies = usage.denies + excluded.denies,")
_SQLITE_USAGE_CONFLICT = (_USAGE_CONFLICT + " first_used = min(usage.first_used, excluded.first_used),"
                          " last_used = max(usage.last_used, excluded.last_used)")
_FIELD_USAGE_COLUMNS = "person_id, resource_type, field, count, first_used, last_used"
_FIELD_USAGE_CONFLICT = (" ON CONFLICT (person_id, resource_type, field) DO UPDATE SET"
                         " count = field_usage.count + excluded.count,")
_SQLITE_FIELD_USAGE_CONFLICT = (_FIELD_USAGE_CONFLICT
                                + " first_used = min(field_usage.first_used, excluded.first_used),"
                                  " last_used = max(field_usage.last_used, excluded.last_used)")
# The writer's connection keeps more of the decision log's index pages in memory than SQLite's default
# 2 MiB: every row inserts into four b-trees, and the (person_id, at) one is written all over; with the
# default cache those pages are read back from the OS for most batches once the log is a few million rows.
_SQLITE_CACHE = "PRAGMA cache_size = -32768"  # KiB: 32 MiB, per connection the writer has used
_SQLITE_CACHE_SET = "accessgov.writer_cache"
_SQLITE_CONFLICT = {"usage": _SQLITE_USAGE_CONFLICT, "field_usage": _SQLITE_FIELD_USAGE_CONFLICT}
_STATEMENTS: dict[tuple[str, int], str] = {}


def _sqlite_insert(table: str, columns: str, width: int, rows: int) -> str:
    key = (table, rows)
    sql = _STATEMENTS.get(key)
    if sql is None:
        one = "(" + ", ".join("?" * width) + ")"
        sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * rows)  # noqa: S608 - constants
        sql += _SQLITE_CONFLICT.get(table, "")
        _STATEMENTS[key] = sql
    return sql


def _sqlite_insert_many(cur: Any, table: str, columns: str, width: int, rows: Sequence[Sequence[Any]]) -> None:
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start:start + ROWS_PER_STATEMENT]
        cur.execute(_sqlite_insert(table, columns, width, len(chunk)), list(chain.from_iterable(chunk)))


# PostgreSQL: the rows go in by binary COPY (the driver formats a row in about a third of the time
# text COPY takes).  Each aggregate is copied the same way into a temporary table (created once per
# connection, emptied at commit) and folded from there by one INSERT ... ON CONFLICT: an executemany
# cost ~20 µs of driver work per aggregate row under the interpreter lock, this ~3 µs.  JSON columns
# are sent as text (the server parses them).
_PG_COPY = f"COPY decision_log ({', '.join(SEALED_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_PG_COPY_TYPES = ["text", "timestamptz", "text", "text", "text", "text", "text", "text", "bool", "text", "text", "text",
                  "int4"]
_PG_FOLD_TABLES = (
    "CREATE TEMP TABLE IF NOT EXISTS accessgov_usage_in (person_id text, resource_type text, action text,"
    " count int4, allows int4, denies int4, first_used timestamptz, last_used timestamptz) ON COMMIT DELETE ROWS;"
    " CREATE TEMP TABLE IF NOT EXISTS accessgov_field_usage_in (person_id text, resource_type text, field text,"
    " count int4, first_used timestamptz, last_used timestamptz) ON COMMIT DELETE ROWS")
_PG_FOLD_READY = "accessgov.fold_tables"  # in the pooled connection's info: the temporary tables exist
_PG_USAGE_COPY = "COPY accessgov_usage_in FROM STDIN (FORMAT BINARY)"
_PG_USAGE_TYPES = ["text", "text", "text", "int4", "int4", "int4", "timestamptz", "timestamptz"]
_PG_USAGE = (f"INSERT INTO usage ({_USAGE_COLUMNS}) SELECT * FROM accessgov_usage_in"  # noqa: S608 - constants
             " ORDER BY person_id, resource_type, action"  # one lock order for every writer
             + _USAGE_CONFLICT
             + " first_used = least(usage.first_used, excluded.first_used),"
               " last_used = greatest(usage.last_used, excluded.last_used)")
_PG_FIELD_USAGE_COPY = "COPY accessgov_field_usage_in FROM STDIN (FORMAT BINARY)"
_PG_FIELD_USAGE_TYPES = ["text", "text", "text", "int4", "timestamptz", "timestamptz"]
_PG_FIELD_USAGE = (f"INSERT INTO field_usage ({_FIELD_USAGE_COLUMNS}) SELECT * FROM accessgov_field_usage_in"  # noqa: S608
                   " ORDER BY person_id, resource_type, field"
                   + _FIELD_USAGE_CONFLICT
                   + " first_used = least(field_usage.first_used, excluded.first_used),"
                     " last_used = greatest(field_usage.last_used, excluded.last_used)")


def _copy(cur: Any, sql: str, types: list[str], rows: Iterable[Sequence[Any]]) -> None:
    with cur.copy(sql) as copy:
        copy.set_types(types)
        write = copy.write_row
        for r in rows:
            write(r)


def _sqlite_time(at: datetime) -> str:
    """SQLAlchemy's SQLite storage format for a UTC datetime (naive, always with microseconds)."""
    if at.tzinfo is not None and at.utcoffset():
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None).isoformat(" ", "microseconds")


def _text(texts: dict[datetime, str], at: datetime) -> str:
    text = texts[at] = _sqlite_time(at)
    return text


def _write_sqlite(cur: Any, rows: Sequence[LogRow], usage: list[list[Any]], fields: list[list[Any]],
                  hashes: list[bytes] | None) -> None:
    # Everything is made ready before the first write takes SQLite's write lock (the other workers'
    # writers wait for it): the statements' parameters, with the seal filled in once it is known.
    texts: dict[datetime, str] = {}  # the aggregates' times are the few of the batch's requests
    for u in usage:
        u[6], u[7] = texts.get(u[6]) or _text(texts, u[6]), texts.get(u[7]) or _text(texts, u[7])
    for f in fields:
        f[4], f[5] = texts.get(f[4]) or _text(texts, f[4]), texts.get(f[5]) or _text(texts, f[5])
    width = len(SEALED_COLUMNS)
    statements: list[list[Any]] = []
    last_at: datetime | None = None
    last_text = ""
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        flat: list[Any] = []
        extend = flat.extend
        for r in rows[start:start + ROWS_PER_STATEMENT]:
            at = r[1]
            if at is not last_at:  # the decisions of one request share one timestamp object
                last_at, last_text = at, _sqlite_time(at)
            # JSON columns go in as text (SQLite's JSON is text); booleans as 0/1, as SQLAlchemy stores them
            extend((r[0], last_text, r[2], r[3], r[4], r[5], r[6], r[7], 1 if r[8] else 0, r[9], r[10], r[11], None))
        statements.append(flat)
    # The usage upsert (a write) comes first and takes SQLite's write lock; lock_head writes too.
    _sqlite_insert_many(cur, "usage", _USAGE_COLUMNS, 8, usage)
    _sqlite_insert_many(cur, "field_usage", _FIELD_USAGE_COLUMNS, 6, fields)
    head, entry = _seal_entry(cur, False, rows, hashes)
    columns = ", ".join(SEALED_COLUMNS)
    for flat in statements:
        count = len(flat) // width
        if entry is not None:
            flat[width - 1::width] = [entry.seq] * count
        cur.execute(_sqlite_insert("decision_log", columns, width, count), flat)
    if head is not None and entry is not None:
        trail.store(cur, False, head, [entry])


def _write_postgres(cur: Any, info: dict[str, Any], rows: Sequence[LogRow], usage: list[list[Any]],
                    fields: list[list[Any]], hashes: list[bytes] | None) -> None:
    if (usage or fields) and not info.get(_PG_FOLD_READY):
        cur.execute(_PG_FOLD_TABLES)
        info[_PG_FOLD_READY] = True  # forgotten again if this transaction fails (the tables may go with it)
    if usage:
        _copy(cur, _PG_USAGE_COPY, _PG_USAGE_TYPES, usage)
        cur.execute(_PG_USAGE)
    if fields:
        _copy(cur, _PG_FIELD_USAGE_COPY, _PG_FIELD_USAGE_TYPES, fields)
        cur.execute(_PG_FIELD_USAGE)
    head, entry = _seal_entry(cur, True, rows, hashes)
    seal = entry.seq if entry is not None else None
    _copy(cur, _PG_COPY, _PG_COPY_TYPES, [(*r, seal) for r in rows])
    if head is not None and entry is not None:
        trail.store(cur, True, head, [entry])


def _usage_rows(rows: Sequence[LogRow]) -> list[list[Any]]:
    """Per (person, type, action): count, allows, denies, first and last use; sorted, so that two
    writers that fold overlapping keys lock the rows in the same order."""
    agg: dict[tuple[str, str, str], list[Any]] = {}
    u: list[Any] = [None, None, None]  # the aggregate of the previous row: a request's rows come together
    for r in rows:
        person = r[4]
        if person is None:
            continue
        at = r[1]
        if person != u[0] or r[6] != u[1] or r[5] != u[2]:
            key = (person, r[6], r[5])
            found = agg.get(key)
            if found is None:
                u = agg[key] = [person, r[6], r[5], 1, 1 if r[8] else 0, 0 if r[8] else 1, at, at]
                continue
            u = found
        u[3] += 1
        if r[8]:
            u[4] += 1
        else:
            u[5] += 1
        if at < u[6]:
            u[6] = at
        elif at > u[7]:
            u[7] = at
    return [agg[k] for k in sorted(agg)]


_USED_FIELDS: dict[str, tuple[str, ...]] = {}  # a row's fields JSON -> the fields that were not hidden
_HIDDEN = "hidden"


def _used_fields(text: str) -> tuple[str, ...]:
    used = _USED_FIELDS.get(text)
    if used is None:
        levels = orjson.loads(text)
        if not isinstance(levels, dict):
            raise ValueError(f"fields is not a JSON object: {text[:80]}")
        used = tuple(name[:64] for name, level in levels.items() if level != _HIDDEN)
        if len(_USED_FIELDS) >= 20_000:
            _USED_FIELDS.clear()
        _USED_FIELDS[text] = used
    return used


def _field_usage_rows(rows: Sequence[LogRow]) -> list[list[Any]]:
    """Per (person, type, field): how often the field came back visible or masked, first and last use;
    sorted (lock order).  Rows are first counted per (person, type, fields JSON), so that each distinct
    field list is parsed and expanded once per batch; rows that asked for no field (``{}``) and denied
    decisions (every field hidden) are skipped."""
    per_list: dict[tuple[str, str, str], list[Any]] = {}
    for r in rows:
        text = r[11]
        if text == EMPTY_JSON or not r[8] or r[4] is None:
            continue
        key = (r[4], r[6], text)
        at = r[1]
        u = per_list.get(key)
        if u is None:
            per_list[key] = [1, at, at]
            continue
        u[0] += 1
        if at < u[1]:
            u[1] = at
        elif at > u[2]:
            u[2] = at
    agg: dict[tuple[str, str, str], list[Any]] = {}
    for (person, rtype, text), (count, first, last) in per_list.items():
        used = _USED_FIELDS.get(text)
        if used is None:
            used = _used_fields(text)
        for name in used:
            fkey = (person, rtype, name)
            f = agg.get(fkey)
            if f is None:
                agg[fkey] = [person, rtype, name, count, first, last]
                continue
            f[3] += count
            if first < f[4]:
                f[4] = first
            if last > f[5]:
                f[5] = last
    return [agg[k] for k in sorted(agg)]
