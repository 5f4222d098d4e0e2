"""How fast this host is today, at the kind of work the decision path does: a reference for reading figures.

The benchmarks' targets are absolute ("on this 2-core machine"), but the VMs they run on are not all
alike, nor steady: the same commit's batch path (``bench.batch_cpu --no-log``) took 8.7 µs per decision
on one day and 13-26 µs on another, with nothing else running on the VM (bench/README, "Host speed").
So the benchmarks print this reference beside their figures, and a reader can tell a slower host from
slower code.

Two fixed workloads, each run after one warm-up run several times (python ``ROUNDS``, sqlite
``SQLITE_ROUNDS``):

* **python**: a decision-like mix of dict lookups, small tuples and dicts, f-strings and a function call
  (ns per round of the loop);
* **sqlite**: rows of the decision log's shape inserted into a table with three indexes, in one
  transaction, in WAL mode without checkpoints, on a temporary file (µs per row).

The fastest run is the host's speed (the least disturbed by its neighbours); the slowest over the fastest
is the spread (1.0 steady; above 1.3 the host was noisy while it ran, and so are the figures beside it).

    .venv/bin/python -m bench.hostspeed
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from typing import Any

ROUNDS = 7
PY_LOOPS = 20_000
SQLITE_ROUNDS = 5
SQLITE_ROWS = 4_000


@dataclass(frozen=True)
class Reference:
    """One workload's timings: the fastest run and the slowest over the fastest."""

    best: float
    spread: float

    def as_dict(self) -> dict[str, float]:
        """For the JSON summaries."""
        return {"best": round(self.best, 3), "spread": round(self.spread, 2)}


def _check(table: dict[str, Any], key: tuple[str, str], owner: str, sub: str) -> bool:
    found = table.get(key)
    return found is not None and (found[0] == "all" or owner == sub)


def _python_round(loops: int) -> int:
    table = {(f"crm.t{i % 7}", f"a{i % 5}"): ("all" if i % 3 else "own", i) for i in range(64)}
    people = {f"P{i:05d}": {"home": f"hq/d{i % 30}/", "status": "active"} for i in range(300)}
    out = 0
    for i in range(loops):
        pid = f"P{i % 300:05d}"
        person = people.get(pid)
        if person is None or person["status"] != "active":
            continue
        key = (f"crm.t{i % 7}", f"a{i % 5}")
        allowed = _check(table, key, pid if i % 2 else "", pid)
        answer = {"decision": allowed, "context": {"id": f"{i:08x}", "home": person["home"]}}
        row = (answer["context"]["id"], pid, key[0], key[1], allowed)
        out += len(row) + (1 if answer["decision"] else 0)
    return out


def python_reference(rounds: int = ROUNDS, loops: int = PY_LOOPS) -> Reference:
    """ns per round of a decision-like loop of pure Python."""
    _python_round(loops)  # warm-up, not counted
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        _python_round(loops)
        times.append((time.perf_counter() - started) / loops * 1e9)
    return Reference(min(times), max(times) / min(times))


_SCHEMA = ("DROP TABLE IF EXISTS log; CREATE TABLE log (id TEXT PRIMARY KEY, at TEXT NOT NULL,"
           " subject TEXT NOT NULL, person_id TEXT, resource_type TEXT NOT NULL, allowed INTEGER NOT NULL,"
           " reason TEXT NOT NULL, seal INTEGER);"
           " CREATE INDEX ix_at ON log (at); CREATE INDEX ix_person_at ON log (person_id, at);"
           " CREATE INDEX ix_seal ON log (seal)")
_REASON = ('{"code":"allowed","rule":{"id":"bf28665f75","text":"p, sales_manager, *, crm.opportunity, update, all,'
           ' -, allow","effect":"allow","scope":"all","domain":"*"},"role":"sales_manager"}')


def sqlite_reference(rounds: int = SQLITE_ROUNDS, rows: int = SQLITE_ROWS) -> Reference:
    """µs per row inserted (one transaction per run, WAL, three indexes, a temporary file)."""
    times = []
    with tempfile.TemporaryDirectory(prefix="accessgov-hostspeed-") as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "ref.db"), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # else a checkpoint falls in some rounds and not in others
            for r in range(-1, rounds):  # a warm-up round, not counted; a new table each round
                conn.executescript(_SCHEMA)
                batch = [(f"5c621725-940c-4578-c455-{r % 0x10000:04x}{i:08x}", f"2026-12-07 15:{i % 60:02d}:00.{i:06d}",
                          f"user:P{i % 300:05d}", f"P{i % 300:05d}", "crm.customer", i % 2, _REASON, r)
                         for i in range(rows)]
                started = time.perf_counter()
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
                conn.execute("COMMIT")
                if r >= 0:
                    times.append((time.perf_counter() - started) / rows * 1e6)
        finally:
            conn.close()
    return Reference(min(times), max(times) / min(times))


def measure() -> dict[str, dict[str, float]]:
    """Both references, for a benchmark's summary."""
    return {"python_ns_per_round": python_reference().as_dict(),
            "sqlite_us_per_row": sqlite_reference().as_dict()}


def describe(host: dict[str, dict[str, float]]) -> str:
    """One line for a benchmark's report."""
    py, sq = host["python_ns_per_round"], host["sqlite_us_per_row"]
    noisy = max(py["spread"], sq["spread"]) > 1.3
    return (f"host speed (bench.hostspeed; lower is faster): python {py['best']:,.0f} ns/round"
            f" (spread x{py['spread']:.2f}), sqlite {sq['best']:.2f} µs/row (spread x{sq['spread']:.2f})"
            + ("  NOISY: the host's speed varied while it was measured" if noisy else ""))


def main() -> int:
    print(describe(measure()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
