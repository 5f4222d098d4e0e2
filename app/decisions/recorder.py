"""The decision log: every decision is queued and written in batches by a background thread.

Recording never changes or delays an answer: ``record`` only appends to a bounded queue.  When
the queue is full the decision is counted as dropped; when the database is down the batch is
kept and retried, so records survive an outage as long as the buffer lasts.  ``stop`` flushes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from app.decisions.models import DecisionRecord, Usage
from app.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(slots=True)  # one per decision: not frozen, for speed
class DecisionEntry:
    """One decision as it will be stored."""

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


class DecisionRecorder(Protocol):
    """Where decisions go."""

    def record(self, entry: DecisionEntry) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def flush(self, timeout: float = 10.0) -> bool: ...


class NullDecisionRecorder:
    """Records nothing (decision log disabled); warns once when built."""

    def __init__(self) -> None:
        log.warning("decision log disabled: decisions are not recorded")

    def record(self, entry: DecisionEntry) -> None:
        """Drop the entry."""

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
        # A deque: append and popleft are atomic under the GIL and far cheaper than queue.Queue's
        # locks on a path taken once per decision.  The bound is checked before appending.
        self._queue: deque[DecisionEntry] = deque()
        self._max = queue_size
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._stop = threading.Event()
        self._busy = False
        self._thread: threading.Thread | None = None
        metrics.log_queue_depth.set_function(lambda: len(self._queue))

    def record(self, entry: DecisionEntry) -> None:
        """Queue an entry; if the buffer is full, count it as dropped."""
        if len(self._queue) >= self._max:
            self._metrics.log_dropped.inc()
            return
        self._queue.append(entry)

    def start(self) -> None:
        """Start the writer thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop."""
        self._stop.set()
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
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        pending: list[DecisionEntry] = []
        backoff = 0.1
        while True:
            self._busy = True  # before taking, so flush() never sees "empty and idle" mid-write
            pending.extend(self._take(self._batch_size - len(pending)))
            if pending:
                try:
                    write_batch(self._factory, pending)
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
            if not self._queue:
                if self._stop.is_set():
                    return
                self._stop.wait(min(self._flush_seconds, 0.05))

    def _salvage(self, batch: list[DecisionEntry]) -> list[DecisionEntry]:
        """Write a failed batch one by one: if some rows go in, the others are poison and are dropped.

        If none goes in, the database is away: keep them all for the retry.
        """
        failed = []
        for entry in batch:
            try:
                write_batch(self._factory, [entry])
            except Exception:
                failed.append(entry)
        if len(failed) == len(batch):
            return failed
        for entry in failed:
            self._metrics.log_dropped.inc()
            log.error("decision %s could not be stored and was dropped", entry.id)
        return []

    def _take(self, limit: int) -> list[DecisionEntry]:
        out: list[DecisionEntry] = []
        q = self._queue
        while q and len(out) < limit:
            out.append(q.popleft())
        return out


def write_batch(factory: sessionmaker[Session], entries: Sequence[DecisionEntry]) -> None:
    """Insert decisions and fold them into the usage aggregate, in one transaction."""
    with factory() as session, session.begin():
        session.execute(insert(DecisionRecord), [_row(e) for e in entries])
        rows = _usage_rows(entries)
        if rows:
            session.execute(_usage_upsert(session.get_bind().dialect.name), rows)  # one executemany


def _row(e: DecisionEntry) -> dict[str, Any]:
    return {
        "id": e.id, "at": e.at, "caller": e.caller[:200], "subject": e.subject[:400],
        "person_id": e.person_id, "action": e.action[:64], "resource_type": e.resource_type[:64],
        "resource_id": e.resource_id[:400] if e.resource_id else None,
        "fields": e.fields, "allowed": e.allowed, "reason": e.reason, "policy_version": e.policy_version,
    }


def _usage_rows(entries: Sequence[DecisionEntry]) -> list[dict[str, Any]]:
    agg: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in entries:
        if e.person_id is None:
            continue
        key = (e.person_id, e.resource_type, e.action)
        row = agg.setdefault(key, {"person_id": key[0], "resource_type": key[1], "action": key[2], "count": 0,
                                   "allows": 0, "denies": 0, "first_used": e.at, "last_used": e.at})
        row["count"] += 1
        row["allows" if e.allowed else "denies"] += 1
        row["first_used"] = min(row["first_used"], e.at)
        row["last_used"] = max(row["last_used"], e.at)
    return list(agg.values())


def _usage_upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT that folds a batch's counts into the aggregate."""
    ins = pg_insert(Usage) if dialect == "postgresql" else sqlite_insert(Usage)
    excluded = ins.excluded
    return ins.on_conflict_do_update(
        index_elements=["person_id", "resource_type", "action"],
        set_={
            "count": Usage.count + excluded.count,
            "allows": Usage.allows + excluded.allows,
            "denies": Usage.denies + excluded.denies,
            "first_used": _least(dialect, Usage.first_used, excluded.first_used),
            "last_used": _greatest(dialect, Usage.last_used, excluded.last_used),
        },
    )


def _least(dialect: str, a: Any, b: Any) -> Any:
    from sqlalchemy import func

    return func.least(a, b) if dialect == "postgresql" else func.min(a, b)


def _greatest(dialect: str, a: Any, b: Any) -> Any:
    from sqlalchemy import func

    return func.greatest(a, b) if dialect == "postgresql" else func.max(a, b)
