"""CPU per decision of the batch path, in process: the HTTP benchmark's batch bodies through the ASGI app.

No sockets and no uvicorn: one request at a time is handed to the app (the decision fast path answers
it), on the demo organisation in a temporary SQLite copy.  It prints the CPU time per decision of the
request thread and of the whole process (the decision-log writer included; it is flushed before the
clock stops), so a change on the decision path can be measured without the noise of the HTTP run:

    .venv/bin/python -m bench.batch_cpu                   # demo, 1,500 batches of 100, decision log on
    .venv/bin/python -m bench.batch_cpu --no-log          # the request thread alone (rows are dropped)
    .venv/bin/python -m bench.batch_cpu --processes 2     # two processes on one database, as two workers

With ``--processes N`` the processes start together on one database file; the combined rate is the
decisions of all of them over the wall time of the slowest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import hostspeed

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID = "bench-batch-cpu"


def _prepare(workdir: Path) -> str:
    url = f"sqlite:///{workdir / 'demo.db'}"
    env = {**os.environ, "ACCESSGOV_DATABASE_URL": url, "ACCESSGOV_AUTH__DEV_TOKENS": "true"}
    subprocess.run([sys.executable, "-m", "app.cli", "demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    return url


async def _call(app: Any, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {"type": "http", "method": "POST", "path": "/access/v1/evaluations",
             "raw_path": b"/access/v1/evaluations", "root_path": "", "headers": headers, "query_string": b"",
             "app": app, "http_version": "1.1", "scheme": "http", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 2)}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:  # the app never asks twice for a body it has whole; a disconnect would come here
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [200]:
        raise RuntimeError(f"the app answered {status}")


WARMUP = 200  # batches per process before the clock starts


def _stored(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM decision_log WHERE caller = ?", (CLIENT_ID,)).fetchone()[0])


def run_one(url: str, batches: int, batch_size: int, log: bool) -> dict[str, float]:
    """Decide ``batches`` batches in this process; CPU and wall time per decision."""
    os.environ.update({"ACCESSGOV_DATABASE_URL": url, "ACCESSGOV_AUTH__DEV_TOKENS": "true"})
    from app.auth.verifier import make_dev_token
    from app.config import Settings
    from app.main import SWITCH_INTERVAL, create_app
    from bench.http_bench import batch_bodies, load_catalog

    settings = Settings()
    token = make_dev_token(secret=settings.auth.dev_secret, audience=settings.auth.audience,
                           client_id=CLIENT_ID, scopes=["accessgov.decide"], ttl_seconds=3600)
    headers = [(b"content-type", b"application/json"), (b"authorization", f"Bearer {token}".encode())]
    bodies = batch_bodies(load_catalog(url), batch_size)
    app = create_app(settings)
    if not log:
        app.state.services.recorder.record_rows = lambda _rows: None  # decided, answered, not recorded
    sys.setswitchinterval(SWITCH_INTERVAL)  # as app_from_env sets it in each worker

    async def main() -> dict[str, float]:
        async with app.router.lifespan_context(app):
            recorder = app.state.services.recorder
            for i in range(WARMUP):  # warm-up: caches, the engine's merged views, the writer's statements
                await _call(app, bodies[i % len(bodies)], headers)
            recorder.flush(60)
            wall, cpu, thread = time.perf_counter(), time.process_time(), time.thread_time()
            for i in range(batches):
                await _call(app, bodies[i % len(bodies)], headers)
            thread = time.thread_time() - thread
            if not recorder.flush(300):
                raise RuntimeError("the decision log did not drain")
            n = batches * batch_size
            return {"decisions": n, "request_thread_us": thread * 1e6 / n,
                    "process_us": (time.process_time() - cpu) * 1e6 / n,
                    "wall_us": (time.perf_counter() - wall) * 1e6 / n}

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--no-log", action="store_true", help="drop the decision-log rows (the request thread alone)")
    ap.add_argument("--url", help=argparse.SUPPRESS)  # a child process: the prepared database
    args = ap.parse_args(argv)
    if args.url:
        print(json.dumps(run_one(args.url, args.batches, args.batch_size, not args.no_log)))
        return 0
    host = hostspeed.measure()
    workdir = Path(tempfile.mkdtemp(prefix="accessgov-batch-cpu-"))
    try:
        url = _prepare(workdir)
        cmd = [sys.executable, "-m", "bench.batch_cpu", "--url", url, "--batches", str(args.batches),
               "--batch-size", str(args.batch_size), *(["--no-log"] if args.no_log else [])]
        started = time.perf_counter()
        procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)  # noqa: S603
                 for _ in range(args.processes)]
        results = []
        for proc in procs:
            out, _ = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"a worker process failed ({proc.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
        elapsed = time.perf_counter() - started
        stored = _stored(workdir / "demo.db")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for i, r in enumerate(results):
        print(f"process {i + 1}: {r['decisions']:,} decisions; CPU per decision: request thread "
              f"{r['request_thread_us']:.2f} µs, process {r['process_us']:.2f} µs"
              f"{' (log writer included)' if not args.no_log else ''}; "
              f"wall {r['wall_us']:.2f} µs")
    print(f"before the run: {hostspeed.describe(host)}\nafter the run:  {hostspeed.describe(hostspeed.measure())}")
    if not args.no_log:
        answered = args.processes * (WARMUP + args.batches) * args.batch_size
        print(f"decision log: {stored:,} rows of {answered:,} decisions answered (warm-up included)")
        if stored != answered:
            raise SystemExit("the decision log is missing decisions")
    if len(results) > 1:
        slowest = max(r["wall_us"] * r["decisions"] for r in results) / 1e6
        total = sum(r["decisions"] for r in results)
        print(f"combined: {total / slowest:,.0f} decisions/s over the slowest process's timed loop "
              f"({elapsed:.0f} s in all, start-up included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
