"""In-process benchmark: every engine, one fresh process per engine x size, same requests.

``python -m bench.inprocess [--sizes small,medium,large] [--engines accessgov,cedar,...]``

Each worker reads the cached scenario, loads its engine (timed; RSS from /proc/self/status),
then runs pass 1 over the requests (time-boxed; its answers are the agreement sample) and, when
pass 1 was quick, a timed pass 2 over the same requests (pass 1 is then the warm-up).  A slow
engine is timed on pass 1 (the first few calls dropped).  The pycasbin peers get a fixed prefix of
the requests (``CASBIN_SAMPLE``), see ``bench/engines/casbin_common.py`` for why.  Every answer is
compared with accessgov's before any figure is printed; a mismatch prints it and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import engines as engine_registry
from bench import hostspeed, scenario

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
SIZES = ("small", "medium", "large")
# Requests given to the pycasbin peers (a prefix of the shuffled request list): enough for stable
# medians, small enough that loading, warming departments and scanning fit the time box.
CASBIN_SAMPLE = {
    ("casbin_stock", "small"): 300, ("casbin_stock", "medium"): 100, ("casbin_stock", "large"): 24,
    ("casbin_fast", "small"): 400, ("casbin_fast", "medium"): 120, ("casbin_fast", "large"): 120,
}
WARMUP_CALLS = 3
LABELS = {"accessgov": "accessgov Engine", "casbin_stock": "pycasbin Enforcer", "casbin_fast": "pycasbin FastEnforcer",
          "cedar": "cedarpy", "rego": "regopy"}


# -- worker ---------------------------------------------------------------------------------------

def rss_mb() -> float:
    """Resident set size of this process (VmRSS), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_pass(module: Any, handle: Any, probes: list[Any], box_s: float) -> tuple[list[bool], list[int]]:
    """Decide probes in order until done or ``box_s`` spent; answers and per-call nanoseconds."""
    decide, clock = module.decide, time.perf_counter_ns
    answers: list[bool] = []
    lat: list[int] = []
    deadline = clock() + int(box_s * 1e9)
    for probe in probes:
        t0 = clock()
        answer = decide(handle, probe)
        t1 = clock()
        answers.append(answer)
        lat.append(t1 - t0)
        if t1 > deadline:
            break
    return answers, lat


def stats(lat: list[int]) -> dict[str, float]:
    """Median, p90, p99, max and mean in microseconds; decisions per second from the mean."""
    s = sorted(lat)

    def pick(q: float) -> float:
        return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] / 1e3

    mean = sum(s) / len(s)
    return {"n": len(s), "p50_us": pick(0.5), "p90_us": pick(0.9), "p99_us": pick(0.99), "max_us": s[-1] / 1e3,
            "mean_us": mean / 1e3, "per_s": 1e9 / mean}


def worker(engine: str, size: str, limit: int | None, box1: float, box2: float) -> dict[str, Any]:
    """Load one engine on one size and measure it (runs in its own process)."""
    module = engine_registry.get(engine)
    t0 = time.perf_counter()
    sc = scenario.load(size)
    if limit is not None:
        sc.probes = sc.probes[:limit]
    read_s, rss_before = time.perf_counter() - t0, rss_mb()
    t0 = time.perf_counter()
    handle = module.load(sc)
    load_s, rss_load = time.perf_counter() - t0, rss_mb()
    answers, lat = run_pass(module, handle, sc.probes, box1)
    pass1_s = sum(lat) / 1e9
    timed, passes = lat[WARMUP_CALLS:] or lat, 1
    if len(answers) == len(sc.probes) and pass1_s <= box2:
        again, timed = run_pass(module, handle, sc.probes, box2)
        passes = 2
        if again != answers[: len(again)]:
            raise RuntimeError(f"{engine} answered differently the second time")
    return {"engine": engine, "size": size, "read_s": read_s, "load_s": load_s, "rss_before_mb": rss_before,
            "rss_load_mb": rss_load, "rss_end_mb": rss_mb(), "offered": len(sc.probes), "passes": passes,
            "answers": "".join("1" if a else "0" for a in answers), **stats(timed)}


# -- parent ---------------------------------------------------------------------------------------

def spawn(engine: str, size: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one worker process and read its JSON."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = Path(tmp.name)
    cmd = [sys.executable, "-m", "bench.inprocess", "--worker", engine, "--sizes", size, "--out", str(out),
           "--box1", str(args.box1), "--box2", str(args.box2)]
    limit = CASBIN_SAMPLE.get((engine, size))
    if limit is not None:
        cmd += ["--limit", str(limit)]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)  # noqa: S603 - our own module, our own arguments
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    result["wall_s"] = time.perf_counter() - t0
    print(f"  {size:6} {engine:12} load {result['load_s']:6.2f} s, {len(result['answers']):5} answered, "
          f"{result['n']:5} timed, {result['wall_s']:5.1f} s wall", flush=True)
    return result


def agreement(results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Per engine x size: how many answers were compared with accessgov's and how many differ."""
    truth = {r["size"]: r["answers"] for r in results if r["engine"] == "accessgov"}
    rows, problems = [], []
    for r in results:
        if r["engine"] == "accessgov":
            continue
        ref = truth[r["size"]]
        n = min(len(ref), len(r["answers"]))
        bad = [i for i in range(n) if ref[i] != r["answers"][i]]
        rows.append({"engine": r["engine"], "size": r["size"], "compared": n, "mismatches": len(bad),
                     "allowed": ref[:n].count("1"), "mismatch_index": bad[:20]})
        problems += [f"{r['size']} request #{i}: accessgov {ref[i]} vs {r['engine']} {r['answers'][i]}"
                     for i in bad[:10]]
    return rows, problems


def show_mismatches(problems: list[str], rows: list[dict[str, Any]]) -> None:
    """Print the disagreeing requests in full."""
    for row in rows:
        if not row["mismatches"]:
            continue
        probes = scenario.load(row["size"]).probes
        for i in row["mismatch_index"][:10]:
            print(f"  {row['size']} #{i} {row['engine']}: {probes[i]}")
    print("\n".join(problems))


def table(results: list[dict[str, Any]]) -> list[str]:
    """The figures, as Markdown table lines."""
    base = {r["size"]: r["p50_us"] for r in results if r["engine"] == "accessgov"}
    lines = ["| engine | size | load s | RSS MB (load Δ) | p50 µs | p99 µs | decisions/s | n | p50 / accessgov |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        ratio = r["p50_us"] / base[r["size"]] if r["size"] in base else float("nan")
        rss = f"{r['rss_load_mb']:,.0f} (+{r['rss_load_mb'] - r['rss_before_mb']:,.0f})"
        lines.append(f"| {LABELS[r['engine']]} | {r['size']} | {r['load_s']:.2f} | {rss} | "
                     f"{r['p50_us']:,.1f} | {r['p99_us']:,.1f} | {r['per_s']:,.0f} | {r['n']:,} | {ratio:,.1f}x |")
    return lines


def environment() -> dict[str, Any]:
    """Machine, interpreter, package versions and commit."""
    versions: dict[str, str | None] = {}
    for dist in ("pycasbin", "cedarpy", "regopy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: S607
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "packages": versions, "commit": commit}


def scenario_meta(size: str) -> dict[str, Any]:
    """The cached scenario's counts."""
    meta: dict[str, Any] = json.loads((scenario.data_dir(size) / "meta.json").read_text())
    return meta


def main(argv: list[str] | None = None) -> int:
    """Run every engine x size, check agreement, print and save the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--engines", default=",".join(engine_registry.ENGINES), help="accessgov always runs")
    ap.add_argument("--box1", type=float, default=20.0, help="seconds for pass 1 (agreement) per engine x size")
    ap.add_argument("--box2", type=float, default=10.0, help="seconds for the timed pass 2")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        result = worker(args.worker, args.sizes, args.limit, args.box1, args.box2)
        Path(args.out).write_text(json.dumps(result))
        return 0
    return run(args)


def run(args: argparse.Namespace) -> int:
    """The parent: scenarios, workers, agreement, table, JSON."""
    started = time.perf_counter()
    host = hostspeed.measure()
    print(hostspeed.describe(host))
    sizes = [s for s in args.sizes.split(",") if s]
    names = ["accessgov"] + [e for e in args.engines.split(",") if e and e != "accessgov"]
    for name in names:
        engine_registry.get(name)  # fail early on an unknown engine or a missing package
    results = []
    for size in sizes:
        subprocess.run([sys.executable, "-m", "bench.scenario", "--size", size], cwd=ROOT, check=True)  # noqa: S603
        results += [spawn(name, size, args) for name in names]
    rows, problems = agreement(results)
    print("\nAgreement with accessgov (answers compared / allowed among them / mismatches):")
    for row in rows:
        print(f"  {row['size']:6} {row['engine']:12} {row['compared']:6} / {row['allowed']:5} / {row['mismatches']}")
    if problems:
        print("\nMISMATCHES:")
        show_mismatches(problems, rows)
        return 1
    lines = table(results)
    wall = time.perf_counter() - started
    host_after = hostspeed.measure()
    print("\n" + "\n".join(lines) + f"\n\nwall time {wall:.0f} s")
    print(f"before the run: {hostspeed.describe(host)}\nafter the run:  {hostspeed.describe(host_after)}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for r in results:
        r.pop("answers")
    env = {**environment(), "host_speed": {"before": host, "after": host_after}}
    summary = {"when": stamp, "wall_s": wall, "environment": env, "box_s": [args.box1, args.box2],
               "casbin_sample": {f"{e}/{s}": n for (e, s), n in CASBIN_SAMPLE.items()},
               "scenarios": {s: scenario_meta(s) for s in sizes}, "agreement": rows, "runs": results, "table": lines}
    path = RESULTS / f"inprocess-{stamp}.json"
    path.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
