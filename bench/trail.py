"""The decision-log writer with and without sealing (the audit trail), and ``audit verify``, in rows/s.

    python -m bench.trail [--db sqlite,postgres] [--rows 200000] [--batch 5000] [--repeat 3]
                          [--verify-rows 1000000]

For each database: a fresh database (``bench.dbload.fresh_database``: a temp SQLite file or a
``bench_<hex>`` schema in the local PostgreSQL), migrated.  Rows look like the decision path's: a
request's decisions share one timestamp object, 300 people, the reason JSON from a pool of 400
shared strings (``ReasonCache``), and half of them ask for three of six fields (JSON of their
visibility: a third visible, a third masked, a third hidden).

1. **write**: ``write_rows`` is called with batches of ``--batch`` rows (the writer's transaction
   size under load: up to 10 batches of 500), ``--rows`` in all, once without sealing and once
   with it, alternately, ``--repeat`` times.  Printed: the median wall rows/s and the writer
   thread's CPU time per row (``time.thread_time``: Python and, on SQLite, the database's own
   work, which runs in-process but without the interpreter lock).  Both modes fold the usage and
   field-usage aggregates.  ``hash`` is what sealing adds in Python under the interpreter lock:
   ``audit.trail.decision_hashes`` alone, µs per row.
2. **verify**: with ``--verify-rows`` N, N sealed rows are written, then ``audit.trail.verify``
   walks the whole chain and re-hashes every row: wall time and rows/s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.db import make_engine
from app.decisions.recorder import write_rows
from app.migrate import upgrade
from bench.dbload import fresh_database

RESOURCE_TYPES = ("crm.customer", "crm.contact", "crm.opportunity", "crm.contract", "oa.approval", "oa.expense")
ACTIONS = ("read", "update", "list", "export", "approve")
FIELDS = ("name", "phone", "id_number", "amount", "address", "email")
LEVELS = ("visible", "masked", "hidden")


def make_rows(n: int, seed: int = 5, fields_share: float = 0.5) -> list[tuple[Any, ...]]:
    """``n`` LogRow tuples shaped like the decision path's (see the module's docstring); ``fields_share``
    of them ask for three fields."""
    rng = random.Random(seed)
    reasons = [orjson.dumps({"code": "allowed", "rule": {"id": f"r{k}", "text": f"p, role{k % 40}, crm.customer, read",
                                                         "effect": "allow", "scope": "department", "domain": "*",
                                                         "condition": ""},
                             "role": f"role{k % 40}", "via": [f"role{k % 40}"],
                             "grant": {"id": k, "source": "manual", "domain": f"hq/d{k % 30}/",
                                       "valid_until": None}}).decode() for k in range(400)]
    head = os.urandom(12).hex()
    prefix = f"{head[:8]}-{head[8:12]}-4{head[13:16]}-{head[16:20]}-{head[20:24]}"
    start = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    rows: list[tuple[Any, ...]] = []
    at = start
    for i in range(n):
        if i % 20 == 0:  # one request, one clock reading
            at = start + timedelta(microseconds=i * 37)
        person = f"P{rng.randrange(300):05d}"
        fields = "{}"
        if rng.random() < fields_share:
            fields = orjson.dumps({f: rng.choice(LEVELS) for f in rng.sample(FIELDS, 3)}).decode()
        allowed = rng.random() < 0.8
        rows.append((f"{prefix}{i:08x}", at, "crm-backend", f"user:{person}", person, rng.choice(ACTIONS),
                     rng.choice(RESOURCE_TYPES), f"CUS-{rng.randrange(100_000):06d}", allowed, "7",
                     rng.choice(reasons), fields))
    return rows


def _writer(seal: bool) -> Callable[[Any, Any], None]:
    return lambda engine, rows: write_rows(engine, rows, seal=seal)


def _write_all(engine: Any, rows: list[Any], batch: int, seal: bool) -> tuple[float, float]:
    write = _writer(seal)
    wall = cpu = 0.0
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        t0, c0 = time.perf_counter(), time.thread_time()
        write(engine, chunk)
        wall += time.perf_counter() - t0
        cpu += time.thread_time() - c0
    return wall, cpu


def bench_write(kind: str, n: int, batch: int, repeat: int, modes: list[bool]) -> None:
    """Median rows/s and CPU µs/row of write_rows, per mode."""
    results: dict[bool, list[tuple[float, float]]] = {m: [] for m in modes}
    for r in range(repeat):
        for seal in modes:
            with fresh_database(kind, keep=False) as url:
                engine = make_engine(url)
                upgrade(engine)
                rows = make_rows(n, seed=r)
                _write_all(engine, rows[:batch], batch, seal)  # warm up: statements, caches, the head row
                results[seal].append(_write_all(engine, rows[batch:], batch, seal))
                engine.dispose()
    for seal in modes:
        walls = [w for w, _ in results[seal]]
        cpus = [c for _, c in results[seal]]
        count = n - batch
        print(f"{kind:9s} write  seal={'on ' if seal else 'off'}  {count / statistics.median(walls):>10,.0f} rows/s"
              f"  cpu {statistics.median(cpus) / count * 1e6:6.1f} µs/row  (median of {repeat})")


def bench_hash(n: int) -> None:
    """What sealing costs in Python under the interpreter lock: hashing the rows."""
    try:
        from audit.trail import decision_hashes
    except ImportError:
        return
    rows = make_rows(n)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        for start in range(0, n, 5000):
            decision_hashes(rows[start:start + 5000])
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(f"          hash   {n / best:>10,.0f} rows/s  {best / n * 1e6:6.2f} µs/row (decision_hashes alone)")


def bench_verify(kind: str, n: int, batch: int) -> None:
    """Write n sealed rows, then verify the whole chain."""
    from audit.trail import verify

    with fresh_database(kind, keep=False) as url:
        engine = make_engine(url)
        upgrade(engine)
        write = _writer(True)
        for start in range(0, n, 100_000):
            rows = make_rows(min(100_000, n - start), seed=start)
            for s in range(0, len(rows), batch):
                write(engine, rows[s:s + batch])
        with engine.connect() as conn:
            t0 = time.perf_counter()
            report = verify(conn)
            seconds = time.perf_counter() - t0
        engine.dispose()
    status = "ok" if report.ok else f"{len(report.problems)} problems"
    print(f"{kind:9s} verify {n / seconds:>10,.0f} rows/s  {seconds:6.1f} s for {n:,} rows in {report.entries:,} "
          f"entries: {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default="off,on", help="sealing off, on, or both (off,on)")
    parser.add_argument("--verify-rows", type=int, default=0, help="also time verify over this many rows")
    args = parser.parse_args()
    modes = [m.strip() == "on" for m in args.modes.split(",")]
    for kind in [d.strip() for d in args.db.split(",") if d.strip()]:
        if args.rows:
            bench_write(kind, args.rows, args.batch, args.repeat, modes)
        if args.verify_rows:
            bench_verify(kind, args.verify_rows, args.batch)
    if args.rows and True in modes:
        bench_hash(min(args.rows, 100_000))


if __name__ == "__main__":
    main()
