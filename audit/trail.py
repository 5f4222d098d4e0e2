"""The tamper-evident audit trail: append-only records sealed into one SHA-256 hash chain.

Every sealed record (a decision, a change, an audit run, a finding event, later a review decision)
is covered by an entry of ``audit_trail`` (``audit/tables.py``).  An entry seals one record, or for the
decision log one whole batch of the writer (the rows carry the entry's ``seq`` in ``seal``)::

    hash = sha256(prev_hash | seq | kind | source_table | ref_first | ref_last | count | digest)

``digest`` is the SHA-256 of the concatenated SHA-256 of each record's canonical form, in ``ref``
(id) order; ``row_digests`` keeps the first 8 bytes of each record's hash, in the same order, so
that ``verify`` names the record that was edited or deleted, not only the entry.

**Canonical form.** A record is the JSON array (orjson) of its sealed columns' values as the database
gives them back, normalised so that SQLite and PostgreSQL give the same bytes: datetimes as UTC text
``YYYY-MM-DD HH:MM:SS.ffffff``, booleans as JSON booleans (SQLite's 0/1), JSON columns parsed and
dumped again with sorted keys (text or parsed alike), NULL as null.  The columns of each table are
fixed here (``SPECS``), not read from the schema: a column added to a table later is not covered
until a spec names it, and old records keep their form.

**Appending.** The writer of a chain entry locks the head row (``audit_trail_head``, id 1;
``SELECT ... FOR UPDATE`` on PostgreSQL, SQLite's single writer lock otherwise; the row is created
on first use, safely under concurrency), appends, and moves the head, all inside the caller's
transaction: the records and their seal commit together or not at all, and concurrent writers in
several processes build one chain.  Two levels:

* DBAPI cursors (``lock_head``, ``next_entry``, ``store``, ``decision_hashes``): the decision-log
  writer, which never goes through SQLAlchemy (sqlite3 ``?``, psycopg ``%s``);
* SQLAlchemy connections (``append``, ``append_each``): every other writer; the records are read back
  from the database in the same transaction, so the seal is computed from exactly what ``verify``
  will read.

``verify`` walks the chain from its retained start, ``purge`` deletes old decision records and their
entries (never under 180 days), ``ensure_protection`` makes the tables append-only in PostgreSQL, and
``adopt_existing`` seals what a database held before its trail began.  This module never imports
``app``.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from difflib import SequenceMatcher
from operator import itemgetter
from typing import Any

import orjson

log = logging.getLogger(__name__)

GENESIS = "0" * 64  # the prev_hash of the first entry
HEAD_ID = 1
MIN_RETENTION_DAYS = 180  # the Cybersecurity Law's six months
PURGE_SETTING = "accessgov.purge"  # SET LOCAL ... = 'on': the append-only triggers let the purge through
DIGEST_BYTES = 8  # of each record's SHA-256 kept in row_digests
DECISIONS, CHANGE, RETENTION = "decisions", "change", "retention"

_sha256 = hashlib.sha256
_dumps = orjson.dumps
_Fragment = orjson.Fragment


# -- what is sealed ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TableSpec:
    """A sealed table: its canonical columns (the key ``id`` first) and how each is normalised.

    ``kinds`` per column: ``s`` text (as is), ``i`` integer, ``t`` datetime, ``j`` JSON, ``b`` boolean.
    ``seal_column``: the rows carry their entry's seq in ``seal`` (many records per entry);
    otherwise every entry seals one record, found by its ``id``.  ``must_seal``: the SQL condition of
    the rows that must be sealed (``verify`` reports the others as unsealed); None: not checked.
    """

    name: str
    columns: tuple[str, ...]
    kinds: str
    key_int: bool = True
    seal_column: bool = False
    must_seal: str | None = "1 = 1"

    def __post_init__(self) -> None:
        if len(self.columns) != len(self.kinds) or self.columns[0] != "id":
            raise ValueError(f"bad spec for {self.name}")


SPECS: dict[str, TableSpec] = {}


def register(spec: TableSpec) -> TableSpec:
    """Make a table sealable (and checked by ``verify``)."""
    SPECS[spec.name] = spec
    return spec


DECISION_LOG = register(TableSpec(
    "decision_log",
    ("id", "at", "caller", "subject", "person_id", "action", "resource_type", "resource_id", "allowed",
     "policy_version", "reason", "fields"),
    "stssssssbsjj", key_int=False, seal_column=True))
register(TableSpec("changes", ("id", "at", "actor", "kind", "target", "reason", "details", "policy_version_id"),
                   "itssssji"))
# A run's row is sealed when it finishes (its row is updated while it runs).
register(TableSpec("audit_runs", ("id", "run_key", "trigger", "actor", "quarter", "due_at", "started_at",
                                  "finished_at", "status", "params", "population", "counts", "message"),
                   "isssstttsjjjs",
                   must_seal="status <> 'running'"))
register(TableSpec("audit_finding_events", ("id", "finding_id", "run_id", "at", "actor", "from_status",
                                            "to_status", "reason"), "iiitssss"))
# A review decision is sealed when it is made: its decision columns never change afterwards (a
# rollback changes only apply_status and apply_result, which are not sealed).
register(TableSpec("audit_campaign_items", (
    "id", "campaign_id", "person_id", "grant_id", "role", "held_in", "system", "finding_ids", "recommendation", "risk",
    "reviewer_id", "reviewer_basis", "decision", "reason", "accept_until", "decided_by", "decided_at", "automatic",
    "snapshot"), "iisisssjsssssststbj", must_seal="decision IS NOT NULL"))


# -- canonical form ----------------------------------------------------------------------------

_JSON: dict[Any, Any] = {}  # JSON text -> its canonical form (reasons and field lists repeat a lot)
_JSON_LIMIT = 20_000  # reasons run to a few hundred bytes: at most ~10 MB


def canonical_datetime(value: Any) -> str | None:
    """UTC text with microseconds; accepts datetimes (naive = UTC) and SQLite's stored text."""
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " " and value[19] == ".":
            return value  # SQLite's storage format, already UTC (and PostgreSQL's to_char below)
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return str(value.isoformat(" ", "microseconds"))


def canonical_json(value: Any) -> orjson.Fragment:
    """A JSON column's value (text as stored, or already parsed) as sorted-key JSON."""
    if isinstance(value, str):
        hit = _JSON.get(value)
        if hit is None:
            if len(_JSON) >= _JSON_LIMIT:
                _JSON.clear()
            hit = _JSON[value] = _Fragment(_dumps(orjson.loads(value), option=orjson.OPT_SORT_KEYS))
        return hit
    if isinstance(value, bytes | bytearray | memoryview):
        return canonical_json(bytes(value).decode())
    return _Fragment(_dumps(value, option=orjson.OPT_SORT_KEYS))


def _as_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _as_int(value: Any) -> int | None:
    return None if value is None else int(value)


_CONVERT: dict[str, Callable[[Any], Any] | None] = {
    "s": None, "i": _as_int, "t": canonical_datetime, "j": canonical_json, "b": _as_bool}


def canonical(spec: TableSpec, row: Sequence[Any] | Mapping[str, Any]) -> bytes:
    """The canonical bytes of one record (a row in the spec's column order, or a mapping by column)."""
    values = [row[c] for c in spec.columns] if isinstance(row, Mapping) else list(row[:len(spec.columns)])
    for i, kind in enumerate(spec.kinds):
        convert = _CONVERT[kind]
        if convert is not None:
            values[i] = convert(values[i])
    return _dumps(values)


def record_hash(spec: TableSpec, row: Sequence[Any] | Mapping[str, Any]) -> bytes:
    """SHA-256 of a record's canonical form."""
    return _sha256(canonical(spec, row)).digest()


def decision_hashes(rows: Iterable[Sequence[Any]]) -> list[bytes]:
    """SHA-256 of decision-log rows (columns in ``DECISION_LOG`` order: the writer's LogRow tuples,
    or what ``verify`` reads back), in the order given.  The writer's hot path: about 1.5 µs a row."""
    out: list[bytes] = []
    append = out.append
    jcache = _JSON
    last_at: Any = None
    last_text: str | None = None
    for r in rows:
        at = r[1]
        if at is not last_at and at != last_at:  # a request's decisions share one timestamp
            last_at, last_text = at, canonical_datetime(at)
        reason = jcache.get(r[10])
        if reason is None:
            reason = canonical_json(r[10])
        fields = jcache.get(r[11])
        if fields is None:
            fields = canonical_json(r[11])
        append(_sha256(_dumps((r[0], last_text, r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]), r[9],
                               reason, fields))).digest())
    return out


def batch_digest(hashes: Sequence[bytes]) -> str:
    """The entry's digest: SHA-256 of the records' hashes concatenated, in order."""
    return _sha256(b"".join(hashes)).hexdigest()


def entry_hash(prev_hash: str, seq: int, kind: str, source_table: str, ref_first: str | None,
               ref_last: str | None, count: int, digest: str) -> str:
    """hash = sha256(prev_hash | seq | kind | source_table | ref_first | ref_last | count | digest)."""
    text = "|".join((prev_hash, str(seq), kind, source_table, ref_first or "", ref_last or "", str(count), digest))
    return _sha256(text.encode()).hexdigest()


# -- appending (DBAPI level) -------------------------------------------------------------------

@dataclass(slots=True)
class Head:
    """The chain's head as locked by an appender (moved in memory by ``next_entry``)."""

    seq: int
    hash: str
    retained_from: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One trail entry, as stored."""

    seq: int
    at: datetime
    kind: str
    source_table: str
    ref_first: str | None
    ref_last: str | None
    count: int
    digest: str
    row_digests: bytes | None
    prev_hash: str
    hash: str


def _sql(text: str, pg: bool) -> str:
    return text.replace("?", "%s") if pg else text


_HEAD_CREATE = ("INSERT INTO audit_trail_head (id, seq, hash, retained_from) SELECT 1,"  # noqa: S608 - constants
                " coalesce((SELECT max(seq) FROM audit_trail), 0),"
                f" coalesce((SELECT hash FROM audit_trail ORDER BY seq DESC LIMIT 1), '{GENESIS}'),"
                " coalesce((SELECT min(seq) FROM audit_trail), 1)"
                " WHERE 1 = 1 ON CONFLICT (id) DO NOTHING")
_HEAD_SELECT = "SELECT seq, hash, retained_from FROM audit_trail_head WHERE id = 1"


def lock_head(cur: Any, pg: bool) -> Head:
    """Lock the chain's head for this transaction (created if missing) and return it.

    PostgreSQL: ``SELECT ... FOR UPDATE`` (a missing row is inserted with ``ON CONFLICT DO NOTHING``,
    which waits for a concurrent creator).  SQLite: the insert-or-nothing is a write, so it takes the
    database's write lock before the head is read (no stale snapshot).  A head deleted while entries
    exist is rebuilt from the last entry.
    """
    if pg:
        cur.execute(_HEAD_SELECT + " FOR UPDATE")
        row = cur.fetchone()
        if row is None:
            cur.execute(_HEAD_CREATE)
            cur.execute(_HEAD_SELECT + " FOR UPDATE")
            row = cur.fetchone()
    else:
        cur.execute(_HEAD_CREATE)
        cur.execute(_HEAD_SELECT)
        row = cur.fetchone()
    return Head(int(row[0]), str(row[1]), int(row[2]))


def next_entry(head: Head, *, kind: str, source_table: str, ref_first: Any, ref_last: Any,
               hashes: Sequence[bytes] | None = None, count: int | None = None, digest: str | None = None,
               row_digests: bytes | None = None, at: datetime | None = None) -> Entry:
    """The entry that follows ``head`` (which moves to it): sealing ``hashes`` (records in ref order),
    or with an explicit count, digest and row_digests (retention entries)."""
    if hashes is not None:
        count = len(hashes)
        digest = batch_digest(hashes)
        row_digests = b"".join([h[:DIGEST_BYTES] for h in hashes])
    if count is None or digest is None:
        raise ValueError("give the records' hashes, or count and digest")
    seq = head.seq + 1
    first = None if ref_first is None else str(ref_first)
    last = None if ref_last is None else str(ref_last)
    h = entry_hash(head.hash, seq, kind, source_table, first, last, count, digest)
    entry = Entry(seq, at or datetime.now(UTC), kind, source_table, first, last, count, digest, row_digests,
                  head.hash, h)
    head.seq, head.hash = seq, h
    return entry


_INSERT_ENTRY = ('INSERT INTO audit_trail (seq, at, kind, source_table, ref_first, ref_last, "count", digest,'
                 " row_digests, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_MOVE_HEAD = "UPDATE audit_trail_head SET seq = ?, hash = ?, retained_from = ? WHERE id = 1"


def store(cur: Any, pg: bool, head: Head, entries: Sequence[Entry]) -> None:
    """Insert the entries and move the head row to ``head`` (same transaction as ``lock_head``)."""
    if entries:
        params = [(e.seq, e.at if pg else canonical_datetime(e.at), e.kind, e.source_table, e.ref_first, e.ref_last,
                   e.count, e.digest, e.row_digests, e.prev_hash, e.hash) for e in entries]
        if len(params) == 1:
            cur.execute(_sql(_INSERT_ENTRY, pg), params[0])
        else:
            cur.executemany(_sql(_INSERT_ENTRY, pg), params)
    cur.execute(_sql(_MOVE_HEAD, pg), (head.seq, head.hash, head.retained_from))


# -- appending (SQLAlchemy connections) --------------------------------------------------------

def _driver(conn: Any) -> tuple[Any, bool]:
    """The DBAPI connection under a SQLAlchemy Connection, and whether it is PostgreSQL."""
    pg = conn.dialect.name == "postgresql"
    return conn.connection.dbapi_connection, pg


def _quoted(name: str) -> str:
    return f'"{name}"'


def _select_list(spec: TableSpec, pg: bool) -> str:
    """The spec's columns as verify and append read them (PostgreSQL formats datetimes and gives JSON
    as text itself: cheaper than in Python, and the same bytes as SQLite's stored text)."""
    out = []
    for name, kind in zip(spec.columns, spec.kinds, strict=True):
        col = _quoted(name)
        if pg and kind == "t":
            out.append(f"to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
        elif pg and kind == "j":
            out.append(f"{col}::text")
        else:
            out.append(col)
    return ", ".join(out)


def _fetch_by_ids(cur: Any, pg: bool, spec: TableSpec, ids: Sequence[Any]) -> dict[str, Sequence[Any]]:
    """The spec's rows with these ids, by id (as text)."""
    out: dict[str, Sequence[Any]] = {}
    keys = [int(i) if spec.key_int else str(i) for i in ids]
    select = f"SELECT {_select_list(spec, pg)} FROM {_quoted(spec.name)} WHERE "  # noqa: S608 - spec names
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        if pg:
            cur.execute(select + '"id" = ANY(%s)', (chunk,))
        else:
            cur.execute(select + '"id" IN (' + ", ".join("?" * len(chunk)) + ")", chunk)
        for row in cur.fetchall():
            out[str(row[0])] = row
    return out


def _spec(source_table: str) -> TableSpec:
    spec = SPECS.get(source_table)
    if spec is None:
        raise ValueError(f"{source_table} is not a sealed table (audit.trail.register it)")
    return spec


def _need_transaction(conn: Any) -> None:
    if not conn.in_transaction():
        raise ValueError("the audit trail is appended inside the caller's transaction: begin one first")


def append(conn: Any, *, kind: str, source_table: str, refs: Sequence[Any],
           records: Sequence[Sequence[Any] | Mapping[str, Any]] | None = None) -> int:
    """Append ONE entry sealing one record of ``source_table`` (its id in ``refs``); return its seq.

    The record is read back from the database (in this transaction) unless ``records`` gives its
    values (a row in the spec's column order, or a mapping by column name) — read back is safer:
    what ``verify`` hashes is what the database returns.  For tables without a seal column an entry
    seals exactly one record (verify finds it by id); use ``append_each`` for several.
    """
    spec = _spec(source_table)
    if spec.seal_column:
        raise ValueError(f"{source_table} rows are sealed by their writer (the seal column), not by append()")
    if len(refs) != 1 or (records is not None and len(records) != 1):
        raise ValueError("an entry seals one record of this table: use append_each for several")
    return append_each(conn, kind=kind, source_table=source_table, refs=refs, records=records)[0]


def append_each(conn: Any, *, kind: str, source_table: str, refs: Sequence[Any],
                records: Sequence[Sequence[Any] | Mapping[str, Any]] | None = None,
                skip_missing: bool = False) -> list[int]:
    """Append one entry per record (ids in ``refs``, sealed in that order) under one head lock;
    return their seqs.  Records are read back from the database unless given; a ref with no row is
    an error, or skipped with ``skip_missing`` (rows of a rolled-back savepoint)."""
    spec = _spec(source_table)
    if spec.seal_column:
        raise ValueError(f"{source_table} rows are sealed by their writer (the seal column)")
    if not refs:
        return []
    _need_transaction(conn)
    raw, pg = _driver(conn)
    cur = raw.cursor()
    try:
        if records is None:
            found = _fetch_by_ids(cur, pg, spec, refs)
            missing = [str(r) for r in refs if str(r) not in found]
            if missing and not skip_missing:
                raise LookupError(f"{source_table}: no row with id {', '.join(missing[:5])} to seal")
            refs = [r for r in refs if str(r) in found]
            if not refs:
                return []
            rows: Sequence[Any] = [found[str(r)] for r in refs]
        else:
            if len(records) != len(refs):
                raise ValueError("one record per ref")
            rows = records
        hashes = [record_hash(spec, row) for row in rows]
        head = lock_head(cur, pg)
        entries = [next_entry(head, kind=kind, source_table=source_table, ref_first=ref, ref_last=ref, hashes=[h])
                   for ref, h in zip(refs, hashes, strict=True)]
        store(cur, pg, head, entries)
    finally:
        cur.close()
    return [e.seq for e in entries]


# -- verify ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """Something that does not match: the table and record (or trail seq), and what."""

    table: str
    ref: str | None
    seq: int | None
    what: str

    def where(self) -> str:
        """``decision_log id=...`` / ``audit_trail seq=...``, for people."""
        parts = [self.table]
        if self.ref is not None:
            parts.append(f"{'seq' if self.table == 'audit_trail' else 'id'}={self.ref}")
        if self.seq is not None and not (self.table == "audit_trail" and self.ref == str(self.seq)):
            parts.append(f"(entry {self.seq})")
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {"table": self.table, "ref": self.ref, "seq": self.seq, "what": self.what}


@dataclass
class VerifyReport:
    """What ``verify`` found."""

    problems: list[Problem] = field(default_factory=list)
    entries: int = 0
    records: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    retained_from: int = 1
    seconds: float = 0.0
    more_problems: int = 0  # beyond the list's cap
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem at all."""
        return not self.problems and not self.more_problems

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {"ok": self.ok, "entries": self.entries, "records": self.records, "head_seq": self.head_seq,
                "head_hash": self.head_hash, "retained_from": self.retained_from,
                "seconds": round(self.seconds, 3), "problems": [p.as_dict() for p in self.problems],
                "more_problems": self.more_problems, "notes": self.notes}


class _Collector:
    def __init__(self, report: VerifyReport, limit: int) -> None:
        self.report, self.limit = report, limit

    def add(self, table: str, ref: Any, seq: int | None, what: str) -> None:
        if len(self.report.problems) < self.limit:
            self.report.problems.append(Problem(table, None if ref is None else str(ref), seq, what))
        else:
            self.report.more_problems += 1


_ENTRY_COLUMNS = 'seq, kind, source_table, ref_first, ref_last, "count", digest, row_digests, prev_hash, hash'
_ENTRY_FIELDS = itemgetter(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
ROWS_PER_FETCH = 5000
PER_ENTRY = 20  # problems named per entry before the rest are counted


def _stream(raw: Any, pg: bool, name: str, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
    """Rows of a query, streamed (a server-side cursor on PostgreSQL)."""
    cur = raw.cursor(name=name) if pg else raw.cursor()
    try:
        if pg:
            cur.itersize = ROWS_PER_FETCH
        cur.execute(_sql(sql, pg), params)
        while True:
            rows = cur.fetchmany(ROWS_PER_FETCH)
            if not rows:
                return
            yield from rows
    finally:
        cur.close()


def _begin_snapshot(conn: Any) -> bool:
    """One consistent snapshot for the whole walk; True when verify opened the transaction itself."""
    if conn.in_transaction():
        return False
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ")
    conn.begin()
    raw, pg = _driver(conn)
    if not pg and not raw.in_transaction:
        raw.execute("BEGIN")  # sqlite3 opens no transaction for reads: without it, every query has its own snapshot
    return True


def verify(conn: Any, *, now: datetime | None = None, grace: timedelta = timedelta(minutes=5),
           max_problems: int = 1000) -> VerifyReport:
    """Walk the chain from its retained start and re-read every sealed record; report what does not match.

    Checked: every entry's own hash (an edited entry), every link to the previous entry and the seq
    sequence (deleted, inserted or reordered entries), the head against the last entry, the start
    against the retention entry that recorded the purge before it; for each entry, its records
    re-read and re-hashed: count, digest, and with ``row_digests`` which record was edited (table and
    id), deleted (its position and neighbours), or carries a seal the entry does not account for;
    finally records that no entry seals (decision rows with no seal, unless within ``grace`` of now;
    unsealed changes and audit rows).  Decision rows are read in one pass ordered by seal, alongside
    the entries; other records in chunks by id.
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    report = VerifyReport()
    problems = _Collector(report, max_problems)
    opened = _begin_snapshot(conn)
    try:
        _Walk(conn, report, problems, now, grace).run()
    finally:
        if opened:
            conn.rollback()
    report.seconds = time.perf_counter() - started
    return report


class _Walk:
    def __init__(self, conn: Any, report: VerifyReport, problems: _Collector, now: datetime,
                 grace: timedelta) -> None:
        self.raw, self.pg = _driver(conn)
        self.report, self.problems, self.now, self.grace = report, problems, now, grace
        self.cur = self.raw.cursor()
        self.pending: list[tuple[Any, ...]] = []  # single-record entries waiting for their chunk lookup
        self.sealed: dict[str, set[str]] = {}  # table -> ids sealed by retained entries
        self.retention: dict[str, Any] | None = None  # the newest retention entry's record
        self.first_prev: str | None = None

    def run(self) -> None:
        cur = self.cur
        cur.execute(_HEAD_SELECT)
        head = cur.fetchone()
        cur.execute("SELECT min(seq), max(seq) FROM audit_trail")
        low, high = cur.fetchone()
        if head is None:
            if high is not None:
                self.problems.add("audit_trail_head", HEAD_ID, None,
                                  f"the chain's head row is missing (the trail holds entries {low}..{high})")
            retained = int(low or 1)
        else:
            self.report.head_seq, self.report.head_hash = int(head[0]), str(head[1])
            retained = int(head[2])
        self.report.retained_from = retained
        last_seq, last_hash = self._walk(retained)
        if head is not None and (last_seq, last_hash) != (int(head[0]), str(head[1])):
            if last_seq is None or int(head[0]) > last_seq:
                what = (f"the head is at seq {head[0]} but the trail ends at seq {last_seq}: "
                        "the last entries were deleted")
            elif int(head[0]) < last_seq:
                what = f"the head is at seq {head[0]} but the trail goes on to seq {last_seq}: entries added behind it"
            else:
                what = f"the head's hash differs from entry {last_seq}'s: the head or the entry was edited"
            self.problems.add("audit_trail_head", HEAD_ID, None, what)
        self._check_start(retained)
        self._unsealed_decisions()
        self._unsealed_records()
        cur.close()

    # the chain, with the decision rows alongside
    def _walk(self, retained: int) -> tuple[int | None, str | None]:
        groups = self._decision_groups()
        group = next(groups, None)
        prev_hash: str | None = GENESIS if retained == 1 else None
        expected = retained
        last: tuple[int | None, str | None] = (None, None)
        entries = _stream(self.raw, self.pg, "accessgov_verify_entries",
                          f"SELECT {_ENTRY_COLUMNS} FROM audit_trail ORDER BY seq")  # noqa: S608 - constants
        for seq, kind, table, ref_first, ref_last, count, digest, row_digests, prev, stored in entries:
            seq = int(seq)
            if seq < retained:
                self.problems.add("audit_trail", seq, seq, f"entry before the chain's retained start ({retained}):"
                                  " the head's retained_from was moved, or a purge left it")
                continue
            self.report.entries += 1
            gap = seq != expected
            if gap:
                missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
                self.problems.add("audit_trail", expected, expected, f"entries {missing} are missing (deleted)")
            if entry_hash(prev, seq, kind, table, ref_first, ref_last, int(count), digest) != stored:
                self.problems.add("audit_trail", seq, seq, "the entry does not match its own hash: edited, or moved"
                                  " here from another position")
            if seq == retained:
                self.first_prev = prev
            if prev_hash is not None and prev != prev_hash and not gap:
                self.problems.add("audit_trail", seq, seq, f"does not link to entry {seq - 1} (its prev_hash differs):"
                                  " an entry was inserted, replaced or reordered")
            prev_hash, expected, last = stored, seq + 1, (seq, stored)
            spec = SPECS.get(table)
            if kind == RETENTION:
                self._retention(seq, digest, row_digests)
            elif spec is None:
                self.problems.add("audit_trail", seq, seq, f"seals records of {table!r}, a table verify does not know")
            elif spec.seal_column:
                while group is not None and group[0] < seq:
                    self._orphans(*group)
                    group = next(groups, None)
                rows: list[Any] = []
                if group is not None and group[0] == seq:
                    rows = group[1]
                    group = next(groups, None)
                self._compare_many(seq, table, ref_first, ref_last, int(count), digest, row_digests, rows)
            else:
                self.pending.append((seq, spec, ref_first, ref_last, int(count), digest, row_digests))
                if len(self.pending) >= 2000:
                    self._check_pending()
        self._check_pending()
        while group is not None:
            self._orphans(*group)
            group = next(groups, None)
        return last

    def _decision_groups(self) -> Iterator[tuple[int, list[Any]]]:
        spec = DECISION_LOG
        sql = (f"SELECT {_select_list(spec, self.pg)}, seal FROM decision_log"  # noqa: S608 - constants
               " WHERE seal IS NOT NULL ORDER BY seal")
        rows = _stream(self.raw, self.pg, "accessgov_verify_decisions", sql)
        seal_of = itemgetter(len(spec.columns))
        for seal, group in itertools.groupby(rows, seal_of):
            yield int(seal), list(group)

    def _orphans(self, seal: int, rows: list[Any]) -> None:
        rows.sort(key=itemgetter(0))
        ids = ", ".join(str(r[0]) for r in rows[:3]) + (", ..." if len(rows) > 3 else "")
        self.problems.add("decision_log", rows[0][0], seal,
                          f"{len(rows)} row(s) carry seal {seal}, which is no decisions entry of the retained chain"
                          f" (inserted, moved, or left by a purge): {ids}")

    def _compare_many(self, seq: int, table: str, ref_first: str | None, ref_last: str | None, count: int,
                      digest: str, row_digests: bytes | None, rows: list[Any]) -> None:
        rows.sort(key=itemgetter(0))
        hashes = decision_hashes(rows)
        self.report.records += len(rows)
        stored = bytes(row_digests or b"")
        now = [h[:DIGEST_BYTES] for h in hashes]
        if len(hashes) == count and batch_digest(hashes) == digest:
            if stored != b"".join(now):
                self.problems.add("audit_trail", seq, seq, "row_digests was edited (the records themselves match)")
            return
        ids = [str(r[0]) for r in rows]
        if len(stored) != DIGEST_BYTES * count:
            self.problems.add("audit_trail", seq, seq, f"its {count} records do not match its digest, and its"
                              " row_digests does not fit its count: the entry was edited")
            return
        if not rows:
            self.problems.add(table, ref_first, seq, f"all {count} records sealed by entry {seq} are missing"
                              f" (deleted): {ref_first} .. {ref_last}")
            return
        before = [stored[i:i + DIGEST_BYTES] for i in range(0, len(stored), DIGEST_BYTES)]
        blocks = SequenceMatcher(None, before, now, autojunk=False).get_opcodes()
        if count and not any(tag == "equal" for tag, *_ in blocks):
            self.problems.add(table, ids[0], seq, f"none of the {len(rows)} rows sealed {seq} matches entry {seq}'s"
                              f" {count} records: the entry was replaced or swapped, or every row edited")
            return
        found: list[tuple[str, str | None, str]] = []
        for tag, i1, i2, j1, j2 in blocks:
            if tag == "equal":
                continue
            paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
            for k in range(paired):
                found.append((table, ids[j1 + k], f"edited after it was sealed (entry {seq},"
                                                  f" record {i1 + k + 1} of {count})"))
            for j in range(j1 + paired, j2):
                found.append((table, ids[j], f"carries seal {seq} but entry {seq} does not account for it"
                                             " (inserted, or moved from another entry)"))
            for i in range(i1 + paired, i2):
                found.append((table, self._deleted_ref(i, count, ref_first, ref_last),
                              self._deleted(i, count, ids, j1, seq)))
        if not found:  # the 8-byte prefixes all match, the full hashes do not (or the count was edited)
            self.problems.add("audit_trail", seq, seq, f"its records do not match its digest (count {count},"
                              f" {len(rows)} rows found): the entry was edited")
        for t, ref, what in found[:PER_ENTRY]:
            self.problems.add(t, ref, seq, what)
        if len(found) > PER_ENTRY:
            self.problems.add(table, None, seq, f"and {len(found) - PER_ENTRY} more records of entry {seq}"
                              " do not match")
        if ref_first is not None and ids[0] < ref_first:
            self.problems.add(table, ids[0], seq, f"sorts before entry {seq}'s first record {ref_first}")
        if ref_last is not None and ids[-1] > ref_last:
            self.problems.add(table, ids[-1], seq, f"sorts after entry {seq}'s last record {ref_last}")

    @staticmethod
    def _deleted_ref(i: int, count: int, ref_first: str | None, ref_last: str | None) -> str | None:
        if i == 0:
            return ref_first
        if i == count - 1:
            return ref_last
        return None

    @staticmethod
    def _deleted(i: int, count: int, ids: list[str], j: int, seq: int) -> str:
        where = f"record {i + 1} of {count} sealed by entry {seq} is missing (deleted)"
        after = ids[j - 1] if j > 0 else None
        before = ids[j] if j < len(ids) else None
        if after and before:
            return f"{where}: it sat between {after} and {before}"
        if after:
            return f"{where}: it came after {after}"
        if before:
            return f"{where}: it came before {before}"
        return where

    def _check_pending(self) -> None:
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for item in self.pending:
            by_table.setdefault(item[1].name, []).append(item)
        self.pending = []
        for name, items in by_table.items():
            spec = items[0][1]
            wanted = []
            for seq, _spec, ref_first, ref_last, count, _d, _r in items:
                if ref_first is None or ref_first != ref_last or count != 1:
                    self.problems.add("audit_trail", seq, seq, f"an entry for {name} must seal exactly one record"
                                      f" (it says {count}, {ref_first}..{ref_last})")
                    continue
                if spec.key_int and not ref_first.lstrip("-").isdigit():
                    self.problems.add("audit_trail", seq, seq, f"names {name} id {ref_first!r}, not an integer")
                    continue
                wanted.append(ref_first)
            rows = _fetch_by_ids(self.cur, self.pg, spec, wanted)
            sealed = self.sealed.setdefault(name, set())
            for seq, _spec, ref, _last, count, digest, row_digests in items:
                if ref is None or count != 1:
                    continue
                sealed.add(ref)
                row = rows.get(ref)
                if row is None:
                    self.problems.add(name, ref, seq, f"sealed by entry {seq} but missing: deleted")
                    continue
                self.report.records += 1
                h = record_hash(spec, row)
                if batch_digest([h]) != digest:
                    self.problems.add(name, ref, seq, f"edited after it was sealed (entry {seq})")
                elif bytes(row_digests or b"") != h[:DIGEST_BYTES]:
                    self.problems.add("audit_trail", seq, seq, "row_digests was edited (the record itself matches)")

    # retention
    def _retention(self, seq: int, digest: str, blob: bytes | None) -> None:
        data = bytes(blob or b"")
        if _sha256(data).hexdigest() != digest:
            self.problems.add("audit_trail", seq, seq, "the retention record does not match its digest: edited")
            return
        try:
            self.retention = {**orjson.loads(data), "seq": seq}
        except orjson.JSONDecodeError:
            self.problems.add("audit_trail", seq, seq, "the retention record is not readable")

    def _check_start(self, retained: int) -> None:
        if retained <= 1 or self.report.entries == 0:
            return
        info = self.retention
        if info is None or int(info.get("purged", [0, 0])[1]) != retained - 1:
            self.problems.add("audit_trail", retained, retained,
                              f"the chain starts at seq {retained} but no retention entry records a purge up to"
                              f" {retained - 1}: entries were deleted and the start moved")
        elif self.first_prev is not None and info.get("last_hash") != self.first_prev:
            self.problems.add("audit_trail", retained, retained,
                              f"entry {retained} does not follow the last purged entry recorded by the retention"
                              f" entry {info['seq']}")

    # records no entry covers
    def _unsealed_decisions(self) -> None:
        low, high = self.now - self.grace, self.now + self.grace
        recent = 0
        for rid, at in _stream(self.raw, self.pg, "accessgov_verify_unsealed",
                               "SELECT id, at FROM decision_log WHERE seal IS NULL ORDER BY at"):
            when = _as_utc(at)
            if when is not None and low <= when <= high:
                recent += 1
                continue
            self.problems.add("decision_log", rid, None, f"not sealed (no seal; at {canonical_datetime(at)}):"
                              " written behind the decision-log writer's back?")
        if recent:
            self.report.notes.append(f"{recent} decision row(s) of the last {self.grace} carry no seal yet")

    def _unsealed_records(self) -> None:
        up_to = (self.retention or {}).get("sealed_up_to", {})
        for spec in SPECS.values():
            if spec.seal_column or spec.must_seal is None:
                continue
            sealed = self.sealed.get(spec.name, set())
            purged_max = up_to.get(spec.name)
            sql = f'SELECT "id" FROM {_quoted(spec.name)} WHERE {spec.must_seal} ORDER BY "id"'  # noqa: S608
            for (rid,) in _stream(self.raw, self.pg, f"accessgov_verify_{spec.name}", sql):
                if str(rid) in sealed:
                    continue
                if purged_max is not None and spec.key_int and int(rid) <= int(purged_max):
                    continue  # sealed by an entry that a purge removed
                self.problems.add(spec.name, rid, None, "not sealed: no trail entry covers it"
                                  " (written behind the service's back?)")


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    when: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# -- retention ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed, and the entry that recorded it."""

    entries: int
    decisions: int
    first_seq: int | None
    last_seq: int | None
    retention_seq: int | None
    retained_from: int
    before: datetime

    def as_dict(self) -> dict[str, Any]:
        """For the command line."""
        return {"entries": self.entries, "decisions": self.decisions, "first_seq": self.first_seq,
                "last_seq": self.last_seq, "retention_seq": self.retention_seq,
                "retained_from": self.retained_from, "before": self.before.isoformat()}


def purge(conn: Any, *, before: datetime, retention_days: int, now: datetime | None = None,
          actor: str = "accessgov") -> PurgeResult:
    """Delete decision records sealed before ``before`` and the trail entries that sealed them.

    Refused when ``retention_days`` is under 180 or ``before`` is later than ``retention_days`` ago.
    Only whole entries go, from the chain's start: the oldest entries sealed before ``before``
    (their own time), and only as far as no decision row of theirs is newer than ``before``.
    Records of other tables stay (only their entries go; the retention entry remembers the highest
    id each purged entry sealed).  A ``retention`` entry records the purged range, the last purged
    entry's hash and the counts, and the head's ``retained_from`` moves past the purge, so ``verify``
    still passes, and the purge itself is in the trail.  Runs in the caller's transaction.
    """
    if retention_days < MIN_RETENTION_DAYS:
        raise ValueError(f"retention under {MIN_RETENTION_DAYS} days refused ({retention_days} given)")
    now = now or datetime.now(UTC)
    if before.tzinfo is None:
        raise ValueError("before must be timezone-aware")
    if before > now - timedelta(days=retention_days):
        raise ValueError(f"refused: {before.isoformat()} is within the {retention_days}-day retention")
    _need_transaction(conn)
    raw, pg = _driver(conn)
    cur = raw.cursor()
    try:
        head = lock_head(cur, pg)
        start = head.retained_from
        when = before if pg else canonical_datetime(before)
        cur.execute(_sql("SELECT min(seq) FROM audit_trail WHERE seq >= ? AND at >= ?", pg), (start, when))
        (newer,) = cur.fetchone()
        last = (int(newer) - 1) if newer is not None else head.seq
        if last >= start:
            cur.execute(_sql("SELECT min(seal) FROM decision_log WHERE seal >= ? AND seal <= ? AND at >= ?", pg),
                        (start, last, when))
            (young,) = cur.fetchone()
            if young is not None:
                last = int(young) - 1
        if last < start:
            return PurgeResult(0, 0, None, None, None, start, before)
        cur.execute(_sql("SELECT hash FROM audit_trail WHERE seq = ?", pg), (last,))
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"entry {last} is missing: run `accessgov audit verify` before purging")
        last_hash = str(row[0])
        up_to = _sealed_up_to(cur, pg, start, last)
        if pg:
            cur.execute(f"SET LOCAL {PURGE_SETTING} = 'on'")
        cur.execute(_sql("DELETE FROM decision_log WHERE seal >= ? AND seal <= ?", pg), (start, last))
        decisions = int(cur.rowcount)
        cur.execute(_sql("DELETE FROM audit_trail WHERE seq >= ? AND seq <= ?", pg), (start, last))
        entries = int(cur.rowcount)
        if pg:
            cur.execute(f"SET LOCAL {PURGE_SETTING} = 'off'")
        blob = _dumps({"purged": [start, last], "last_hash": last_hash, "before": before.isoformat(),
                       "retention_days": retention_days, "entries": entries, "records": {"decision_log": decisions},
                       "sealed_up_to": up_to, "actor": actor, "at": now.isoformat()}, option=orjson.OPT_SORT_KEYS)
        entry = next_entry(head, kind=RETENTION, source_table="audit_trail", ref_first=start, ref_last=last,
                           count=entries, digest=_sha256(blob).hexdigest(), row_digests=blob)
        head.retained_from = last + 1
        store(cur, pg, head, [entry])
    finally:
        cur.close()
    log.info("audit trail purged: entries %d..%d, %d decision records; retention entry %d",
             start, last, decisions, entry.seq)
    return PurgeResult(entries, decisions, start, last, entry.seq, last + 1, before)


def _sealed_up_to(cur: Any, pg: bool, start: int, last: int) -> dict[str, int]:
    """Per table without a seal column: the highest id sealed by the purged entries (carried over
    from the previous retention entry), so that verify does not report those records as unsealed."""
    up_to: dict[str, int] = {}
    cur.execute(_sql("SELECT row_digests FROM audit_trail WHERE kind = ? ORDER BY seq DESC LIMIT 1", pg),
                (RETENTION,))
    row = cur.fetchone()
    if row is not None and row[0]:
        try:
            up_to.update({k: int(v) for k, v in orjson.loads(bytes(row[0])).get("sealed_up_to", {}).items()})
        except (orjson.JSONDecodeError, TypeError, ValueError):
            log.warning("the last retention entry is not readable; its sealed_up_to is not carried over")
    tables = [s.name for s in SPECS.values() if not s.seal_column and s.key_int]
    if not tables:
        return up_to
    marks = ", ".join("?" * len(tables))
    cur.execute(_sql(f"SELECT source_table, ref_first FROM audit_trail WHERE seq >= ? AND seq <= ?"  # noqa: S608
                     f" AND source_table IN ({marks})", pg), (start, last, *tables))
    for table, ref in cur.fetchall():
        if ref is not None and str(ref).lstrip("-").isdigit():
            up_to[table] = max(up_to.get(table, int(ref)), int(ref))
    return up_to


# -- protection and adoption -------------------------------------------------------------------

APPEND_ONLY = ("audit_trail", "decision_log", "changes", "audit_finding_events")
PROTECTION_SQL = f"""
CREATE OR REPLACE FUNCTION accessgov_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP <> 'TRUNCATE' AND current_setting('{PURGE_SETTING}', true) = 'on' THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'accessgov: % on % refused: the audit trail''s tables are append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$fn$;
DO $do$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY{list(APPEND_ONLY)!r} LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'accessgov_append_only'
                       AND tgrelid = to_regclass(quote_ident(t))) THEN
            EXECUTE format('CREATE TRIGGER accessgov_append_only BEFORE UPDATE OR DELETE ON %I'
                           ' FOR EACH ROW EXECUTE FUNCTION accessgov_append_only()', t);
        END IF;
    END LOOP;
    FOREACH t IN ARRAY ARRAY{[*APPEND_ONLY, "audit_trail_head"]!r} LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'accessgov_no_truncate'
                       AND tgrelid = to_regclass(quote_ident(t))) THEN
            EXECUTE format('CREATE TRIGGER accessgov_no_truncate BEFORE TRUNCATE ON %I'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION accessgov_append_only()', t);
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'accessgov_append_only'
                   AND tgrelid = to_regclass('audit_trail_head')) THEN
        CREATE TRIGGER accessgov_append_only BEFORE DELETE ON audit_trail_head
            FOR EACH ROW EXECUTE FUNCTION accessgov_append_only();
    END IF;
END
$do$;
"""  # noqa: S608 - constants
_PROTECTED_COUNT = len(APPEND_ONLY) * 2 + 2


def ensure_protection(conn: Any) -> bool:
    """PostgreSQL: make the trail's tables append-only (idempotent; True when in place).

    Triggers refuse UPDATE and DELETE on ``audit_trail``, ``decision_log``, ``changes`` and
    ``audit_finding_events`` (except inside ``purge``, which sets ``accessgov.purge`` for its
    transaction), DELETE on ``audit_trail_head``, and TRUNCATE on all of them.  A database owner can
    still disable them; ``verify`` is what detects that.  SQLite: nothing to do (False).
    """
    if conn.dialect.name != "postgresql":
        return False
    _need_transaction(conn)
    raw, _ = _driver(conn)
    cur = raw.cursor()
    try:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('accessgov.trail.protection'))")
        cur.execute("SELECT count(*) FROM pg_trigger WHERE tgname IN ('accessgov_append_only', 'accessgov_no_truncate')"
                    " AND tgrelid = ANY(%s::regclass[])", ([*APPEND_ONLY, "audit_trail_head"],))
        (present,) = cur.fetchone()
        if int(present) < _PROTECTED_COUNT:
            cur.execute(PROTECTION_SQL)
    finally:
        cur.close()
    return True


def adopt_existing(conn: Any, *, batch: int = 5000) -> int:
    """Seal what the database held before its trail began (a database upgraded to the trail).

    Only while the trail has never begun (no head, no entry): once it has, a record without a seal is
    a finding for ``verify``, never adopted.  Decision rows are sealed ``batch`` at a time (their seal
    set by UPDATE, allowed here once), every other sealed table's rows one entry each.  Returns the
    number of entries written.  Runs in the caller's transaction.
    """
    _need_transaction(conn)
    raw, pg = _driver(conn)
    cur = raw.cursor()
    try:
        cur.execute(_HEAD_SELECT)
        if cur.fetchone() is not None:
            return 0
        cur.execute("SELECT 1 FROM audit_trail LIMIT 1")
        if cur.fetchone() is not None:
            return 0
        cur.execute("SELECT 1 FROM decision_log WHERE seal IS NOT NULL LIMIT 1")
        if cur.fetchone() is not None:  # a trail existed and was deleted: that is for verify to report
            log.error("the audit trail is empty but decision rows carry seals: not adopting; run"
                      " `accessgov audit verify`")
            return 0
        if not _anything_to_adopt(cur):
            return 0
        head = lock_head(cur, pg)
        if head.seq != 0:
            return 0  # another process began the trail meanwhile
        if pg:
            cur.execute(f"SET LOCAL {PURGE_SETTING} = 'on'")
        written = 0
        for spec in SPECS.values():
            if spec.seal_column or spec.must_seal is None:
                continue
            cur.execute(f'SELECT {_select_list(spec, pg)} FROM {_quoted(spec.name)}'  # noqa: S608 - spec names
                        f' WHERE {spec.must_seal} ORDER BY "id"')
            rows = cur.fetchall()
            entries = [next_entry(head, kind=_KINDS.get(spec.name, spec.name), source_table=spec.name,
                                  ref_first=r[0], ref_last=r[0], hashes=[record_hash(spec, r)]) for r in rows]
            store(cur, pg, head, entries)
            written += len(entries)
        written += _adopt_decisions(cur, pg, head, batch)
        if pg:
            cur.execute(f"SET LOCAL {PURGE_SETTING} = 'off'")
    finally:
        cur.close()
    if written:
        log.warning("audit trail begun on an existing database: %d entries seal the records it held", written)
    return written


_KINDS = {"changes": CHANGE, "audit_runs": "audit_run", "audit_finding_events": "finding_event"}


def _anything_to_adopt(cur: Any) -> bool:
    cur.execute("SELECT 1 FROM decision_log WHERE seal IS NULL LIMIT 1")
    if cur.fetchone() is not None:
        return True
    for spec in SPECS.values():
        if not spec.seal_column and spec.must_seal is not None:
            cur.execute(f"SELECT 1 FROM {_quoted(spec.name)} WHERE {spec.must_seal} LIMIT 1")  # noqa: S608
            if cur.fetchone() is not None:
                return True
    return False


def _adopt_decisions(cur: Any, pg: bool, head: Head, batch: int) -> int:
    select = f"SELECT {_select_list(DECISION_LOG, pg)} FROM decision_log WHERE seal IS NULL"  # noqa: S608
    after: str | None = None
    written = 0
    while True:
        if after is None:
            cur.execute(_sql(select + " ORDER BY id LIMIT ?", pg), (batch,))
        else:
            cur.execute(_sql(select + " AND id > ? ORDER BY id LIMIT ?", pg), (after, batch))
        rows = cur.fetchall()
        if not rows:
            return written
        after = rows[-1][0]  # keyset in the database's order; each entry is sorted in Python below
        rows.sort(key=itemgetter(0))
        entry = next_entry(head, kind=DECISIONS, source_table="decision_log", ref_first=rows[0][0],
                           ref_last=rows[-1][0], hashes=decision_hashes(rows))
        ids = [r[0] for r in rows]
        if pg:
            cur.execute("UPDATE decision_log SET seal = %s WHERE id = ANY(%s)", (entry.seq, ids))
        else:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                cur.execute(f"UPDATE decision_log SET seal = ? WHERE id IN ({marks})", (entry.seq, *chunk))  # noqa: S608
        store(cur, pg, head, [entry])
        written += 1


def start(engine: Any) -> None:
    """At start-up: adopt a pre-trail database's records, log the head (an outside anchor), then protect
    the tables (PostgreSQL).

    Failures are logged, not raised: the service still answers (``verify`` reports what is missing).
    """
    try:
        with engine.begin() as conn:
            adopt_existing(conn)
    except Exception:
        log.exception("the audit trail could not adopt the existing records")
    try:
        with engine.connect() as conn:
            head = conn.exec_driver_sql(_HEAD_SELECT).first()
        if head is not None:  # an anchor outside the database: keep these lines (see audit/README.md)
            log.info("audit trail head: seq %s hash %s (retained from seq %s)", head[0], head[1], head[2])
    except Exception:
        log.exception("the audit trail's head could not be read")
    try:
        with engine.begin() as conn:
            ensure_protection(conn)
    except Exception:
        log.warning("the audit trail's append-only triggers could not be installed (the database role may not own"
                    " the tables); install them with audit.trail.PROTECTION_SQL", exc_info=True)
