"""One audit run: claim its key, look at the population, merge the findings, close the run.

``run_audit`` takes a database engine and a function that builds the population (the service's
adapter), so that the audit engine itself never reads the service's tables.  The run's key is
claimed in a transaction of its own before any work: two processes due at the same time race on
the unique key and only one runs.  A run that fails is marked ``failed`` with its error and changes
no finding.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from audit import tables as t
from audit.checks import run_checks
from audit.config import AuditConfig
from audit.population import Population
from audit.store import claim_run, finish_run, merge_findings, quarter_of

log = logging.getLogger(__name__)

Sealer = Callable[[Any, int], None]  # (connection, run id): seal the finished run into the trail


def run_audit(engine: Engine, build: Callable[[datetime], Population], cfg: AuditConfig, *, trigger: str,
              actor: str, run_key: str | None = None, due_at: datetime | None = None, now: datetime | None = None,
              tz: str = "Asia/Shanghai", seal: Sealer | None = None) -> dict[str, Any] | None:
    """Run the audit once under ``run_key``; None when that key already ran (or runs) elsewhere."""
    now = now or datetime.now(UTC)
    quarter = quarter_of(due_at or now, tz)
    key = run_key or f"{trigger}:{now.strftime('%Y%m%dT%H%M%S')}:{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        run_id = claim_run(conn, run_key=key, trigger=trigger, actor=actor, quarter=quarter, now=now,
                           due_at=due_at, params=cfg.params())
    if run_id is None:
        log.info("audit run %s already claimed elsewhere; nothing to do", key)
        return None
    started = time.perf_counter()
    try:
        with _gc_paused():
            population = build(now)
            loaded = time.perf_counter()
            found = run_checks(population, cfg)
            checked = time.perf_counter()
            with engine.begin() as conn:
                counts = merge_findings(conn, run_id, found, quarter=quarter, now=now, actor=f"audit run {run_id}")
                counts["seconds"] = {"load": round(loaded - started, 3), "checks": round(checked - loaded, 3),
                                     "store": round(time.perf_counter() - checked, 3)}
                finish_run(conn, run_id, status="done", now=datetime.now(UTC), counts=counts,
                           population=population.summary())
                if seal is not None:
                    seal(conn, run_id)
    except Exception as exc:
        log.exception("audit run %s failed", run_id)
        with engine.begin() as conn:
            finish_run(conn, run_id, status="failed", now=datetime.now(UTC),
                       message=f"{type(exc).__name__}: {exc}"[:2000])
            if seal is not None:
                seal(conn, run_id)
        raise
    with engine.connect() as conn:
        row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).one()
    return dict(row._mapping)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic collector off while a run builds and checks millions of acyclic objects (the
    population, the indexes, the findings): its full collections each walk everything built so far
    (``bench.audit``, 100,000 people: a run took 30-39 s with it on, 25 s without).  Reference
    counting still frees all of it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
