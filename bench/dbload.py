"""Cold load of a scenario company from the database, timed the way the service loads it at start-up.

    python -m bench.dbload --size large --db sqlite|postgres [--repeat 3] [--sample 2000] [--keep]
    python -m bench.dbload --size small --url URL      # an empty database you made (tests: a fresh schema)

1. A fresh database (a temp SQLite file, or a ``bench_<hex>`` schema in the local PostgreSQL that is
   dropped at the end unless ``--keep``) is migrated with ``app.migrate.upgrade`` and filled with the
   scenario in bulk: departments with their paths, people with home departments, the roles of roles.yaml,
   every grant edge as a grant row (time window and source system kept, the scenario's grant id as the
   row id), the bundle as the active policy version and its ``policy.import`` change row.  SQLite gets
   Core ``executemany`` inserts, PostgreSQL ``COPY``.  This step is not the figure.
2. Each repetition starts a fresh Python process that builds the services as ``app.main`` does and calls
   ``PolicyService.reload()`` itself.  The four steps reload() runs (``parse_bundle``,
   ``load_directory``, ``load_grant_edges`` and the ``Engine`` build) are timed by wrapping the names
   ``app.policy.service`` calls them by; "total" is reload() end to end (queries, ``gc.freeze`` and
   the swap included).  RSS is read right after.  The median of the repetitions is printed.
3. The first repetition then checks what it loaded: the grant edges equal the scenario's, every person
   resolves to the scenario's home department, and the loaded engine answers a sample of the scenario's
   requests exactly as the in-memory engine (``bench.engines.accessgov.load``) does: decision, reason
   code, rule, grant and role chain, and the level of every classified field.  Any difference: exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, insert, make_url, text

from app.authz.engine import Engine, GrantEdge
from app.authz.policy import parse_bundle
from app.db import make_engine
from app.directory.models import Department, DepartmentSourceId, Grant, Person, Role
from app.migrate import upgrade
from app.policy.models import Change, PolicyVersion
from bench import scenario as sc
from bench.template import POLICIES

POSTGRES_URL = os.environ.get("ACCESSGOV_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ACTOR = "bench.dbload"
STEPS = ("policy parse", "directory load", "grant edges load", "engine build", "other", "total")
_TIMED = {"parse_bundle": "policy parse", "load_directory": "directory load",
          "load_grant_edges": "grant edges load", "Engine": "engine build"}


# -- the database -------------------------------------------------------------------------------

@contextmanager
def fresh_database(kind: str, keep: bool) -> Iterator[str]:
    """URL of a new empty database of ``kind`` (sqlite | postgres), removed afterwards unless ``keep``."""
    if kind == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="accessgov-dbload-"))
        path = directory / "accessgov.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            if keep:
                print(f"kept: sqlite:///{path}")
            else:
                for p in directory.iterdir():
                    p.unlink()
                directory.rmdir()
        return
    if kind != "postgres":
        raise ValueError(f"--db sqlite|postgres, not {kind!r}")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        if keep:
            print(f"kept: schema {schema} in {POSTGRES_URL}")
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def department_id(path: str) -> str:
    """Our id of a scenario department path: ``hq/v3/d31/`` -> ``hq-v3-d31``."""
    return path.rstrip("/").replace("/", "-")


def grant_scope(dom: str) -> tuple[str | None, bool]:
    """(department id, include_subtree) of a grant edge's domain pattern; the inverse of ``grant_domain``."""
    if dom == "*":
        return None, False
    if dom.endswith("*"):
        return department_id(dom[:-1]), True
    return department_id(dom), False


def _all_paths(scenario: sc.Scenario) -> list[str]:
    """Every department path the scenario uses (homes and grant scopes) and their ancestors, parents first."""
    paths = set(scenario.knobs) | set(scenario.people.values())
    paths |= {g.dom.rstrip("*") for g in scenario.grants if g.dom != "*"}
    closed = set()
    for p in paths:
        parts = p.rstrip("/").split("/")
        closed |= {"/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1)}
    return sorted(closed, key=lambda p: (p.count("/"), p))


def _bulk(conn: Connection, table: Any, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert many rows: COPY on PostgreSQL, one Core executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        cols = ", ".join(columns)
        with conn.connection.dbapi_connection.cursor() as cur, cur.copy(  # type: ignore[union-attr]
                f"COPY {table.name} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])


def populate(url: str, scenario: sc.Scenario) -> dict[str, int]:
    """Migrate ``url`` and write the scenario into it; counts of what was written."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        policy = parse_bundle(scenario.files)
        now = datetime.now(UTC)
        paths = _all_paths(scenario)
        ids = {p: department_id(p) for p in paths}
        departments = [(ids[p], p.rstrip("/").rsplit("/", 1)[-1], f"部门 {ids[p]}",
                        ids.get(p.rstrip("/").rsplit("/", 1)[0] + "/") if p.count("/") > 1 else None, p, now)
                       for p in paths]
        sources = [(ids[p], system, f"{system}-{n}") for n, p in enumerate(paths, start=1) for system in ("crm", "oa")]
        people = [(sub.removeprefix("user:"), f"员工 {sub.removeprefix('user:')}", ids[home], "active", now)
                  for sub, home in scenario.people.items()]
        grants = []
        for g in scenario.grants:
            dep, subtree = grant_scope(g.dom)
            grants.append((g.grant_id, g.sub.removeprefix("user:"), g.role, dep, subtree, g.source, ACTOR,
                           "scenario grant", g.valid_from, g.valid_until, now))
        with engine.begin() as conn:
            conn.execute(insert(Role), [
                {"name": name, "title_zh": spec.title_zh, "title_en": spec.title_en,
                 "privileged": spec.privileged, "description": spec.description}
                for name, spec in policy.roles.items()])
            _bulk(conn, Department.__table__, ("id", "code", "name", "parent_id", "path", "created_at"), departments)
            _bulk(conn, DepartmentSourceId.__table__, ("department_id", "system", "source_id"), sources)
            _bulk(conn, Person.__table__, ("id", "name", "department_id", "status", "updated_at"), people)
            _bulk(conn, Grant.__table__, ("id", "person_id", "role", "department_id", "include_subtree",
                                          "source_system", "granted_by", "reason", "valid_from", "valid_until",
                                          "created_at"), grants)
            reason = f"bench scenario {scenario.size} (seed {scenario.seed})"
            version_id = conn.execute(insert(PolicyVersion).returning(PolicyVersion.id), {
                "parent_id": None, "digest": policy.digest, "files": dict(policy.files), "created_at": now,
                "created_by": ACTOR, "reason": reason}).scalar_one()
            conn.execute(insert(Change), {
                "at": now, "actor": ACTOR, "kind": "policy.import", "target": f"policy:{version_id}",
                "reason": reason, "details": {"source": str(sc.data_dir(scenario.size, scenario.seed) / "bundle")},
                "policy_version_id": version_id})
            if conn.dialect.name == "postgresql":  # explicit ids: move the sequence past them
                conn.execute(text("SELECT setval(pg_get_serial_sequence('grants', 'id'), "
                                  "(SELECT max(id) FROM grants))"))
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return {"departments": len(departments), "people": len(people), "grants": len(grants)}


# -- the cold load (in a fresh process) -----------------------------------------------------------

def rss_mb() -> float:
    """Resident set size of this process (VmRSS), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_reload(url: str) -> tuple[dict[str, float], Any]:
    """Build the services as ``app.main`` does and run ``PolicyService.reload()``, its steps timed (s)."""
    import app.policy.service as service_module
    from app.config import Settings
    from app.main import build_services

    times = dict.fromkeys(STEPS, 0.0)

    def timed(step: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[step] += time.perf_counter() - t0
        return wrapper

    for name, step in _TIMED.items():
        if not hasattr(service_module, name):
            raise SystemExit(f"app.policy.service no longer calls {name}: update bench/dbload.py")
        setattr(service_module, name, timed(step, getattr(service_module, name)))
    services = build_services(Settings(database_url=url, policies_dir=POLICIES))
    t0 = time.perf_counter()
    state = services.policy.reload()
    times["total"] = time.perf_counter() - t0
    times["other"] = times["total"] - sum(times[s] for s in _TIMED.values())
    services.factory.kw["bind"].dispose()
    return times, state


def _signature(engine: Engine, probe: sc.Probe) -> tuple[Any, ...]:
    """Everything the engine says about one probe: decision, code, rule, grant path, every field level."""
    d = engine.decide(probe.req)
    hold = (d.hold.role, d.hold.grant, d.hold.chain) if d.hold is not None else None
    fields = tuple(sorted(engine.policy.classification.get(probe.req.obj, {})))
    return d.allowed, d.code, d.rule, hold, engine.field_levels(probe.req, fields, d.allowed)


def check(state: Any, size: str, seed: int, sample: int) -> dict[str, Any]:
    """Compare the loaded state with the scenario: edges, homes, and the answers on a sample of requests."""
    from bench.engines import accessgov

    scenario = sc.load(size, seed)
    db_edges: list[GrantEdge] = [g for sub in state.engine.subjects() for g in state.engine.grants_of(sub)]
    edges_equal = sorted(db_edges, key=_edge_key) == sorted(scenario.grants, key=_edge_key)
    people = state.directory.people
    wrong_homes = [sub for sub, home in scenario.people.items()
                   if (p := people.get(sub.removeprefix("user:"))) is None or p.home != home or p.sub != sub]
    reference = accessgov.load(scenario)
    probes = random.Random(seed).sample(scenario.probes, min(sample, len(scenario.probes)))
    diffs = [p for p in probes if _signature(state.engine, p) != _signature(reference, p)]
    allowed = sum(reference.decide(p.req).allowed for p in probes)
    return {"edges": len(db_edges), "edges_equal": edges_equal, "wrong_homes": len(wrong_homes),
            "compared": len(probes), "allowed": allowed, "differ": len(diffs),
            "examples": [repr(p)[:400] for p in diffs[:3]]}


def _edge_key(g: GrantEdge) -> tuple[Any, ...]:
    return g.sub, g.grant_id or 0, g.role, g.dom, g.source, str(g.valid_from), str(g.valid_until), str(g.delegated_from)


def measure_child(url: str, size: str | None, seed: int, sample: int) -> dict[str, Any]:
    """What one fresh process reports: step times, RSS before and after, the check when asked."""
    rss_before = rss_mb()
    times, state = timed_reload(url)
    out: dict[str, Any] = {"times": times, "rss_before_mb": rss_before, "rss_mb": rss_mb(),
                           "edges": sum(len(state.engine.grants_of(s)) for s in state.engine.subjects()),
                           "rules": len(state.engine.policy.rules), "field_rules": len(state.engine.policy.field_rules)}
    if size is not None:
        out["check"] = check(state, size, seed, sample)
    return out


def cold_load(url: str, *, size: str | None, seed: int, sample: int) -> dict[str, Any]:
    """Run one measurement in a fresh Python process and return its report."""
    cmd = [sys.executable, "-m", "bench.dbload", "--measure", url, "--seed", str(seed), "--sample", str(sample)]
    if size is not None:
        cmd += ["--check", size]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise RuntimeError(f"cold-load process failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# -- the run ------------------------------------------------------------------------------------

def run(url: str, scenario: sc.Scenario, *, repeat: int = 3, sample: int = 2_000) -> dict[str, Any]:
    """Populate ``url`` (empty), then time ``repeat`` cold loads; the first also checks agreement."""
    t0 = time.perf_counter()
    counts = populate(url, scenario)
    populate_s = time.perf_counter() - t0
    runs = [cold_load(url, size=scenario.size if i == 0 else None, seed=scenario.seed, sample=sample)
            for i in range(repeat)]
    median = {s: statistics.median(r["times"][s] for r in runs) for s in STEPS}
    return {"size": scenario.size, "db": make_url(url).get_backend_name(), "counts": counts, "populate_s": populate_s,
            "runs": runs, "median": median, "rss_mb": statistics.median(r["rss_mb"] for r in runs),
            "rss_before_mb": statistics.median(r["rss_before_mb"] for r in runs), "check": runs[0]["check"]}


def agrees(result: dict[str, Any]) -> bool:
    """The loaded state equals the scenario's and every compared answer agrees."""
    c = result["check"]
    return bool(c["edges_equal"] and c["wrong_homes"] == 0 and c["differ"] == 0 and c["compared"] > 0)


def report(result: dict[str, Any]) -> str:
    """The table: each step per repetition and the median, RSS after."""
    runs, c = result["runs"], result["check"]
    n = result["counts"]
    lines = [f"cold load, {result['size']} on {result['db']}: {n['people']:,} people, {n['departments']:,} "
             f"departments, {c['edges']:,} grant edges, {runs[0]['rules']:,} rules + {runs[0]['field_rules']:,} "
             f"field rules (database filled in {result['populate_s']:.1f} s, not part of the figure)", ""]
    head = f"{'step':<18}" + "".join(f"{'run ' + str(i + 1):>9}" for i in range(len(runs))) + f"{'median s':>10}"
    lines += [head, "-" * len(head)]
    for step in STEPS:
        lines.append(f"{step:<18}" + "".join(f"{r['times'][step]:>9.2f}" for r in runs)
                     + f"{result['median'][step]:>10.2f}")
    lines.append(f"{'RSS after, MB':<18}" + "".join(f"{r['rss_mb']:>9,.0f}" for r in runs)
                 + f"{result['rss_mb']:>10,.0f}")
    lines += ["", f"RSS before the load (interpreter and imports): {result['rss_before_mb']:,.0f} MB",
              f"agreement: grant edges {'equal' if c['edges_equal'] else 'DIFFER'}, homes wrong {c['wrong_homes']}, "
              f"{c['compared']:,} requests compared ({c['allowed']:,} allowed), {c['differ']} differ"]
    lines += [f"  differs: {e}" for e in c["examples"]]
    total = result["median"]["total"]
    lines.append(f"{'PASS' if total <= 10 else 'FAIL'}  cold load <= 10 s: {total:.2f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """CLI."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="large")
    ap.add_argument("--seed", type=int, default=sc.DEFAULT_SEED)
    ap.add_argument("--db", default="sqlite", help="sqlite | postgres (a fresh database, removed afterwards)")
    ap.add_argument("--url", help="use this empty database instead (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the fresh database and print its URL")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample", type=int, default=2_000, help="scenario requests to compare")
    ap.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)  # the fresh-process side
    ap.add_argument("--check", metavar="SIZE", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        print(json.dumps(measure_child(args.measure, args.check, args.seed, args.sample), default=str))
        return
    scenario = sc.load(args.size, args.seed)
    if args.url:
        result = run(args.url, scenario, repeat=args.repeat, sample=args.sample)
    else:
        with fresh_database(args.db, args.keep) as url:
            result = run(url, scenario, repeat=args.repeat, sample=args.sample)
    print(report(result))
    if not agrees(result):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
