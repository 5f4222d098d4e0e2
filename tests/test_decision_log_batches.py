"""The decision-log writer gathers rows into big transactions and writes them in few statements."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from app.db import make_engine, make_sessionmaker
from app.decisions.models import DecisionRecord, Usage
from app.decisions.recorder import ROWS_PER_STATEMENT, DbDecisionRecorder, DecisionEntry, write_rows
from app.metrics import Metrics

NOW = datetime(2026, 11, 25, 9, 30, 0, tzinfo=UTC)


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Any]:
    from app.migrate import upgrade

    eng = make_engine(sqlite_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def _rows(n: int, prefix: str = "d") -> list[Any]:
    return [DecisionEntry(id=f"{prefix}-{i}", at=NOW, caller="c", subject=f"user:P{i % 7:03d}",
                          person_id=f"P{i % 7:03d}", action="read", resource_type="crm.customer",
                          resource_id=f"CUS-{i}", allowed=bool(i % 2), policy_version="1").row() for i in range(n)]


def _count(engine: Any) -> int:
    with make_sessionmaker(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(DecisionRecord)) or 0)


def test_more_rows_than_one_statement_takes_are_all_written(engine: Any) -> None:
    n = 2 * ROWS_PER_STATEMENT + 345
    write_rows(engine, _rows(n))
    assert _count(engine) == n
    with make_sessionmaker(engine)() as session:
        usage = session.scalars(select(Usage)).all()
    assert sum(u.count for u in usage) == n and len(usage) == 7


def test_rows_wait_for_a_backlog_but_flush_and_stop_do_not_wait(engine: Any) -> None:
    recorder = DbDecisionRecorder(make_sessionmaker(engine), Metrics(), batch_size=500, flush_seconds=30)
    recorder.start()
    try:
        recorder.record_rows(_rows(10, "a"))
        time.sleep(0.3)
        assert _count(engine) == 0  # less than a batch: gathering (up to flush_seconds)
        started = time.monotonic()
        assert recorder.flush(timeout=5)
        assert time.monotonic() - started < 2 and _count(engine) == 10
        recorder.record_rows(_rows(1999, "b"))  # under 4 batches: still gathering
        time.sleep(0.3)
        assert _count(engine) == 10
        recorder.record_rows(_rows(1, "c"))  # a backlog of 4 batches is written without waiting
        deadline = time.monotonic() + 5
        while _count(engine) < 2010 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _count(engine) == 2010
        recorder.record_rows(_rows(3, "d"))
    finally:
        started = time.monotonic()
        recorder.stop()
    assert time.monotonic() - started < 2
    assert _count(engine) == 2013
