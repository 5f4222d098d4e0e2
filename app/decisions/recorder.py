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
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.metrics import Metrics

log = logging.getLogger(__name__)

# The columns of ``decision_log`` in the order of a LogRow.
COLUMNS = ("id", "at", "caller", "subject", "person_id", "action", "resource_type", "resource_id", "allowed",
           "policy_version", "reason", "fields")
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


def write_rows(engine: Engine, rows: Sequence[LogRow]) -> None:
    """Insert log rows and fold them into the usage aggregate, in one transaction, through the driver."""
    if not rows:
        return
    usage = _usage_rows(rows)
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        try:
            if engine.dialect.name == "postgresql":
                _write_postgres(cur, rows, usage)
            else:
                _write_sqlite(cur, rows, usage)
        finally:
            cur.close()
        conn.commit()
    except BaseException:
        try:
            conn.rollback()
        except Exception:  # the connection is gone: the original error is what matters
            log.debug("rollback after a failed decision-log write failed", exc_info=True)
        raise
    finally:
        conn.close()


# SQLite: many rows per INSERT (multi-row VALUES).  The writer thread gives up the interpreter lock
# while SQLite works and, each time it wants it back, may wait for the request thread (up to the
# switch interval): with one statement per ROWS_PER_STATEMENT rows instead of one per row, it asks a
# few times per batch.  (Cheaper in CPU than executemany too; json_each was tried: twice the CPU.)
# Under batch load the loop thread always holds the lock, so those waits bound the writer: with 100
# rows per statement the log fell behind at ~60,000 decisions/s (backpressure); with 1,000 it kept up
# to 73,000-77,000 (demo, 2 workers; 2,000 gained nothing more).
ROWS_PER_STATEMENT = 1000  # 12,000 parameters, well under SQLite's 32,766
_USAGE_COLUMNS = "person_id, resource_type, action, count, allows, denies, first_used, last_used"
_USAGE_CONFLICT = (" ON CONFLICT (person_id, resource_type, action) DO UPDATE SET count = usage.count + excluded.count,"
                   " allows = usage.allows + excluded.allows, denies = usage.denies + excluded.denies,")
_SQLITE_USAGE_CONFLICT = (_USAGE_CONFLICT + " first_used = min(usage.first_used, excluded.first_used),"
                          " last_used = max(usage.last_used, excluded.last_used)")
_STATEMENTS: dict[tuple[str, int], str] = {}


def _sqlite_insert(table: str, columns: str, width: int, rows: int) -> str:
    key = (table, rows)
    sql = _STATEMENTS.get(key)
    if sql is None:
        one = "(" + ", ".join("?" * width) + ")"
        sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * rows)  # noqa: S608 - constants
        if table == "usage":
            sql += _SQLITE_USAGE_CONFLICT
        _STATEMENTS[key] = sql
    return sql


def _sqlite_insert_many(cur: Any, table: str, columns: str, width: int, rows: Sequence[Sequence[Any]]) -> None:
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start:start + ROWS_PER_STATEMENT]
        cur.execute(_sqlite_insert(table, columns, width, len(chunk)), list(chain.from_iterable(chunk)))


_PG_COPY = f"COPY decision_log ({', '.join(COLUMNS)}) FROM STDIN"
_PG_USAGE = (f"INSERT INTO usage ({_USAGE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"  # noqa: S608 - constants
             + _USAGE_CONFLICT
             + " first_used = least(usage.first_used, excluded.first_used),"
               " last_used = greatest(usage.last_used, excluded.last_used)")


def _sqlite_time(at: datetime) -> str:
    """SQLAlchemy's SQLite storage format for a UTC datetime (naive, always with microseconds)."""
    if at.tzinfo is not None and at.utcoffset():
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None).isoformat(" ", "microseconds")


def _write_sqlite(cur: Any, rows: Sequence[LogRow], usage: list[list[Any]]) -> None:
    last_at: datetime | None = None
    last_text = ""
    out = []
    for r in rows:
        at = r[1]
        if at is not last_at:  # the decisions of one request share one timestamp object
            last_at, last_text = at, _sqlite_time(at)
        # JSON columns go in as text (SQLite's JSON is text); booleans as 0/1, as SQLAlchemy stores them
        out.append((r[0], last_text, *r[2:8], 1 if r[8] else 0, *r[9:]))
    _sqlite_insert_many(cur, "decision_log", ", ".join(COLUMNS), len(COLUMNS), out)
    for u in usage:
        u[6], u[7] = _sqlite_time(u[6]), _sqlite_time(u[7])
    _sqlite_insert_many(cur, "usage", _USAGE_COLUMNS, 8, usage)


def _write_postgres(cur: Any, rows: Sequence[LogRow], usage: list[list[Any]]) -> None:
    with cur.copy(_PG_COPY) as copy:
        write = copy.write_row
        for r in rows:
            write(r)
    cur.executemany(_PG_USAGE, usage)


def _usage_rows(rows: Sequence[LogRow]) -> list[list[Any]]:
    """Per (person, type, action): count, allows, denies, first and last use; sorted, so that two
    writers that fold overlapping keys lock the rows in the same order."""
    agg: dict[tuple[str, str, str], list[Any]] = {}
    for r in rows:
        person = r[4]
        if person is None:
            continue
        key = (person, r[6], r[5])
        u = agg.get(key)
        at = r[1]
        if u is None:
            agg[key] = [person, r[6], r[5], 1, 1 if r[8] else 0, 0 if r[8] else 1, at, at]
            continue
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
