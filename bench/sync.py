"""How long a full snapshot sync takes, at 10,000 and 100,000 people, on SQLite and PostgreSQL.

    python -m bench.sync [--people 10000,100000] [--db sqlite,postgres] [--keep]

For each size and database: a fresh database (as ``bench.dbload`` makes it), the shipped policy
imported, and an org directory source ``hr`` that is master of every person attribute.  Then, through
``SyncService.push`` (what ``PUT /v1/sync/sources/hr/snapshot`` calls, minus HTTP):

1. **first**: the whole company arrives (every department and person created, every account linked);
2. **changes**: the same company a day later: 1 % moved department, 0.5 % left, 1 % renamed,
   0.5 % joined;
3. **unchanged**: the second snapshot again (recognised by its digest: nothing is written).

Each step's wall time includes validation, the one-transaction apply and the catch-up of the live
decision state (a full reload, since people changed).  The target: 100,000 people within 60 s on
PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.dbload import fresh_database

SOURCES = """
masters: {people: hr, status: hr, name: hr, department: hr, departments: hr, employee_no: hr, mobile: hr,
          email: hr, manager: hr, position: hr}
defaults: {interval_minutes: 0, disable_threshold: 0.5}
sources:
  hr: {connector: file, kind: directory}
"""
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"


def company(people: int, seed: int = 7) -> Any:
    """A snapshot of ``people`` people in two levels of departments (about 50 people per department)."""
    from app.sync.canonical import Snapshot, SourceAccount, SourceDepartment

    rng = random.Random(f"sync:{people}:{seed}")
    leaves = max(1, people // 50)
    divisions = max(1, leaves // 10)
    depts = [SourceDepartment("root", "演示集团")]
    depts += [SourceDepartment(f"v{j}", f"事业部{j}", "root") for j in range(divisions)]
    depts += [SourceDepartment(f"d{i}", f"部门{i}", f"v{i % divisions}") for i in range(leaves)]
    accounts = []
    for k in range(people):
        dept = f"d{rng.randrange(leaves)}"
        accounts.append(SourceAccount(
            key=f"u{k:06d}", name=rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
            employee_no=f"E{k:06d}", mobile=f"+861{rng.randrange(30, 99)}{k:08d}", email=f"u{k:06d}@demo.cn",
            department_keys=(dept,), position=rng.choice(["专员", "经理", "主管", "总监"]),
            manager_key=f"u{rng.randrange(k):06d}" if k else None))
    return Snapshot(source="hr", departments=tuple(depts), accounts=tuple(accounts), version="day1",
                    complete=frozenset({"departments", "accounts"}))


def next_day(snap: Any, seed: int = 8) -> Any:
    """1 % movers, 0.5 % leavers, 1 % renamed, 0.5 % joiners."""
    from app.sync.canonical import SourceAccount

    rng = random.Random(seed)
    leaves = [d.key for d in snap.departments if d.key.startswith("d")]
    accounts = list(snap.accounts)
    n = len(accounts)
    for i in rng.sample(range(n), n // 100):
        elsewhere = [d for d in leaves if d not in accounts[i].department_keys] or leaves
        accounts[i] = replace(accounts[i], department_keys=(rng.choice(elsewhere),))
    for i in rng.sample(range(n), n // 200):
        accounts[i] = replace(accounts[i], status="left")
    for i in rng.sample(range(n), n // 100):
        accounts[i] = replace(accounts[i], name=accounts[i].name + "·")
    accounts += [SourceAccount(key=f"n{k:06d}", name=f"新员工{k}", employee_no=f"N{k:06d}",
                               department_keys=(rng.choice(leaves),)) for k in range(n // 200)]
    return replace(snap, accounts=tuple(accounts), version="day2")


def measure(url: str, people: int) -> dict[str, float]:
    """The three steps on one fresh database."""
    from app.config import Settings, SyncSettings
    from app.main import build_services
    from app.migrate import upgrade

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        sources = Path(tmp) / "sources.yaml"
        sources.write_text(SOURCES, encoding="utf-8")
        settings = Settings(database_url=url, policies_dir=root / "policies",
                            sync=SyncSettings(sources_file=sources, schedule=False))
        services = build_services(settings)
        upgrade(services.factory.kw["bind"])
        services.policy.import_baseline(actor="bench", reason="baseline")
        services.policy.reload()
        first = company(people)
        second = next_day(first)
        out: dict[str, float] = {}
        for name, snap in (("first", first), ("changes", second), ("unchanged", second)):
            t = time.perf_counter()
            run = services.sync.push(snap, actor="bench", confirm=True)
            out[name] = time.perf_counter() - t
            expected = "unchanged" if name == "unchanged" else "applied"
            if run["status"] != expected:
                raise SystemExit(f"{name}: run {run['status']}: {run['message']}")
            out[f"{name}_counts"] = run["counts"]  # type: ignore[assignment]
        services.factory.kw["bind"].dispose()
        return out


def main(argv: list[str] | None = None) -> None:
    """Run and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", default="10000,100000")
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--keep", action="store_true")
    opts = parser.parse_args(argv)
    rows = []
    for people in (int(p) for p in opts.people.split(",")):
        for kind in opts.db.split(","):
            with fresh_database(kind, opts.keep) as url:
                result = measure(url, people)
            rows.append((people, kind, result))
            print(f"{people:>7,} {kind:<9} first {result['first']:7.1f} s   changes {result['changes']:6.1f} s   "
                  f"unchanged {result['unchanged']:5.1f} s   {result['changes_counts']}", flush=True)
    target = [r for r in rows if r[0] >= 100_000 and r[1] == "postgres"]
    for people, _, result in target:
        verdict = "PASS" if result["first"] <= 60 and result["changes"] <= 60 else "FAIL"
        print(f"{verdict}  {people:,} people on PostgreSQL within 60 s: first {result['first']:.1f} s, "
              f"changes {result['changes']:.1f} s")


if __name__ == "__main__":
    main()
