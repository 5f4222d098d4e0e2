"""End-to-end HTTP benchmark of the decision API, decision log on, as deployed.

``python -m bench.http_bench [--duration 15] [--concurrency 32] [--batch-size 100] [--db sqlite|postgres]``

1. Prepares a fresh database (a temp SQLite file, or a fresh schema in the local PostgreSQL), loads
   the demo organisation (``accessgov demo``; ``--skip-demo`` seeds the tests' mini organisation
   instead, in about a second) and gets development tokens from ``accessgov dev-token``: one
   ``client_id`` per stage, so every decision-log row says which stage answered it.
2. Starts ``accessgov serve --workers 2`` on a free loopback port and waits for ``/readyz``.
3. Drives it from a separate process: an asyncio client speaking raw HTTP/1.1 keep-alive over
   ``--concurrency`` connections (uvloop when installed), rotating through a few hundred request
   bodies built from the demo's records.  First the client's own ceiling on ``GET /healthz``, then
   phase (a) single evaluations and phase (b) batches of ``--batch-size``; each phase is a warm-up
   then a timed window, and each stage drains: it stops issuing at its deadline and waits for every
   answer, so the decisions the client saw are exactly the decisions the server made.
4. Reads ``/metrics`` of each worker (see ``read_worker_metrics``), stops the server with SIGTERM
   (it flushes the decision log on shutdown) and counts ``decision_log`` rows per stage against the
   decisions answered.  Prints a table with PASS/FAIL against the targets and writes a JSON summary
   to ``bench/results/http-<timestamp>.json``.

Everything it starts (server, its workers, the client, py-spy) runs in its own process group and is
stopped in ``finally``, on errors and on SIGINT/SIGTERM too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import hostspeed

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
POSTGRES_URL = os.environ.get("ACCESSGOV_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
HOST = "127.0.0.1"  # loopback only, always
SERVER_MAX_BATCH = 200  # the service's default ACCESSGOV_MAX_BATCH

# The targets the numbers are compared with (never tuned towards: the service runs with its defaults).
TARGET_SINGLE_RPS = 3_000.0
TARGET_SINGLE_P99_MS = 10.0
TARGET_BATCH_DPS = 100_000.0

# Stage tags: the dev token's client_id, hence decision_log.caller of every decision the stage made.
TAGS = {
    "single": ("bench-single-warmup", "bench-single"),
    "single@rate": ("bench-rate-warmup", "bench-rate"),
    "batch": ("bench-batch-warmup", "bench-batch"),
}

N_SINGLE_BODIES = 400
N_BATCH_BODIES = 60
FIELD_SHARE = 0.30  # share of evaluations that ask for field visibility
OWNER_SHARE = 0.50  # share of evaluations whose subject is the record's owner
READ_SHARE = 0.70  # share of single evaluations that are reads (the rest: the type's other actions)


# --------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------

def percentiles(samples: Iterable[float], ps: Sequence[float] = (50, 90, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles: ``pP`` is the smallest sample with at least P % of samples <= it.

    Keys are ``p50``, ``p99.9`` and so on; every value is None when there are no samples.
    """
    data = sorted(samples)
    out: dict[str, float | None] = {}
    for p in ps:
        if not 0 < p <= 100:
            raise ValueError(f"percentile out of range: {p}")
        key = f"p{p:g}"
        if not data:
            out[key] = None
            continue
        rank = max(1, math.ceil(p / 100 * len(data)))
        out[key] = data[rank - 1]
    return out


# --------------------------------------------------------------------------------------------------
# The request mix
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RecordRow:
    """One row of the ``records`` table."""

    type: str
    id: str
    owner: str | None
    department: str | None
    properties: dict[str, Any]


@dataclass
class Catalog:
    """What the request bodies are drawn from."""

    records: list[RecordRow]
    people: list[str]  # active people
    fields: dict[str, list[str]]  # resource type -> askable fields
    actions: dict[str, list[str]]  # resource type -> actions


def load_catalog(db_url: str, policies_dir: Path = ROOT / "policies") -> Catalog:
    """Records and active people from the prepared database; fields and actions from resources.yaml."""
    import yaml
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT type, id, owner_id, department_id, properties FROM records ORDER BY type, id")).all()
            people = list(conn.scalars(text("SELECT id FROM people WHERE status = 'active' ORDER BY id")))
    finally:
        engine.dispose()
    records = []
    for rtype, rid, owner, dep, props in rows:
        if isinstance(props, str):
            props = json.loads(props)
        records.append(RecordRow(rtype, rid, owner, dep, dict(props or {})))
    spec = yaml.safe_load((policies_dir / "resources.yaml").read_text(encoding="utf-8"))["resource_types"]
    fields = {t: [f for f in v.get("fields", []) if f not in ("owner", "department")] for t, v in spec.items()}
    actions = {t: list(v.get("actions", [])) for t, v in spec.items()}
    if not records or not people:
        raise RuntimeError("the database holds no records or no active people: nothing to ask about")
    return Catalog(records, people, fields, actions)


def _resource(rng: random.Random, cat: Catalog, rec: RecordRow) -> dict[str, Any]:
    props = dict(rec.properties)
    if rec.owner:
        props["owner"] = rec.owner
    if rec.department:
        props["department"] = rec.department  # a CRM/OA call carries it: no registry lookup
    fields = cat.fields.get(rec.type) or []
    if fields and rng.random() < FIELD_SHARE:
        props["fields"] = rng.sample(fields, k=rng.randint(min(2, len(fields)), min(5, len(fields))))
    return {"type": rec.type, "id": rec.id, "properties": props}


def _action(rng: random.Random, cat: Catalog, rtype: str) -> dict[str, Any]:
    others = [a for a in cat.actions.get(rtype, []) if a not in ("read", "create")]
    name = "read" if not others or rng.random() < READ_SHARE else rng.choice(others)
    action: dict[str, Any] = {"name": name}
    if name == "export":
        action["properties"] = {"rows": rng.choice([20, 100, 500, 1500])}
    return action


def single_bodies(cat: Catalog, n: int = N_SINGLE_BODIES, seed: int = 1) -> list[bytes]:
    """``n`` single evaluation bodies: random records, the owner or another active person asking."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        rec = rng.choice(cat.records)
        subject = rec.owner if rec.owner and rng.random() < OWNER_SHARE else rng.choice(cat.people)
        body = {"subject": {"type": "user", "id": subject}, "action": _action(rng, cat, rec.type),
                "resource": _resource(rng, cat, rec)}
        out.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    return out


def batch_bodies(cat: Catalog, batch_size: int, n: int = N_BATCH_BODIES, seed: int = 2) -> list[bytes]:
    """``n`` batch bodies, as a list page asks: one subject and ``read`` at the top level, then
    ``batch_size`` records of one type (the subject owns some of them half of the time)."""
    rng = random.Random(seed)
    by_type: dict[str, list[RecordRow]] = {}
    for rec in cat.records:
        by_type.setdefault(rec.type, []).append(rec)
    types = sorted(by_type)
    out = []
    for _ in range(n):
        recs = by_type[rng.choice(types)]
        owners = [r.owner for r in recs if r.owner]
        subject = rng.choice(owners) if owners and rng.random() < OWNER_SHARE else rng.choice(cat.people)
        items = [{"resource": _resource(rng, cat, rng.choice(recs))} for _ in range(batch_size)]
        body = {"subject": {"type": "user", "id": subject}, "action": {"name": "read"}, "evaluations": items}
        out.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    return out


# --------------------------------------------------------------------------------------------------
# The load client (runs in its own process: ``python -m bench.http_bench --run-client SPEC``)
# --------------------------------------------------------------------------------------------------

@dataclass
class StageStats:
    """What one stage of the client saw."""

    ok: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    conn_errors: int = 0
    timeouts: int = 0
    decisions: int = 0
    allows: int = 0
    decision_errors: int = 0  # fail-closed answers: 200 and decision false, but an internal error
    short_answers: int = 0  # 200 answers with fewer decisions than asked for
    latencies: list[float] = field(default_factory=list)


class _Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, payload: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self.reader is not None
        self.writer.write(payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        close = b"connection: close" in lower
        i = lower.find(b"content-length:")
        if i >= 0:
            length = int(lower[i + 15:lower.index(b"\r\n", i)])
            body = await self.reader.readexactly(length) if length else b""
        elif b"transfer-encoding: chunked" in lower:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        else:
            body, close = await self.reader.read(), True
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _build_requests(method: str, path: str, port: int, token: str | None, bodies: list[str]) -> list[bytes]:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: accessgov-http-bench\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if method == "GET":
        return [(head + "\r\n").encode()]
    out = []
    for b in bodies:
        raw = b.encode()
        out.append((head + f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n").encode() + raw)
    return out


async def _run_stage(conns: list[_Conn], stage: dict[str, Any], port: int, timeout: float) -> dict[str, Any]:
    payloads = _build_requests(stage["method"], stage["path"], port, stage.get("token"), stage.get("bodies", []))
    expected = int(stage.get("decisions_per_request", 0))
    stats = StageStats()
    n = len(payloads)
    perf = time.perf_counter
    start = perf()
    deadline = start + float(stage["duration"])
    rate = float(stage.get("rate") or 0)
    ticket = 0

    async def worker(i: int) -> None:
        nonlocal ticket
        conn, idx = conns[i], (i * 7919) % n
        while perf() < deadline:
            payload = payloads[idx]
            idx = (idx + 1) % n
            t = perf()
            if rate:
                # Open loop: request k is due at start + k/rate.  Its latency counts from then, so time
                # spent waiting for a free connection is counted (no coordinated omission).
                due, ticket = start + ticket / rate, ticket + 1
                if due >= deadline:
                    break
                if due > t:
                    await asyncio.sleep(due - t)
                t = due
            try:
                status, body = await conn.request(payload)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                stats.conn_errors += 1
                conn.close()
                await asyncio.sleep(0.01)
                continue
            stats.latencies.append(perf() - t)
            if status != 200:
                stats.statuses[status] += 1
                continue
            stats.ok += 1
            if expected:
                got = body.count(b'"decision_id"')
                stats.decisions += got
                stats.allows += body.count(b'"decision":true')
                stats.decision_errors += body.count(b'"internal_error"') + body.count(b'"policy_not_loaded"')
                if got < expected:
                    stats.short_answers += 1

    ru0, wall0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.time(), perf()
    tasks = [asyncio.ensure_future(worker(i)) for i in range(len(conns))]
    _done, pending = await asyncio.wait(tasks, timeout=float(stage["duration"]) + timeout)
    for task in pending:  # an answer that never came: counted, and its connection dropped
        task.cancel()
        stats.timeouts += 1
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
        for c in conns:
            c.close()
    elapsed, wall1, ru1 = perf() - t0, time.time(), resource.getrusage(resource.RUSAGE_SELF)
    lat_ms = [x * 1000 for x in stats.latencies]
    pct = percentiles(lat_ms, (50, 90, 99, 99.9))
    return {
        "name": stage["name"], "path": stage["path"], "tag": stage.get("tag"), "duration": stage["duration"],
        "rate": rate or None,
        "elapsed": elapsed, "wall_start": wall0, "wall_end": wall1, "concurrency": len(conns),
        "requests": stats.ok, "errors": sum(stats.statuses.values()) + stats.conn_errors + stats.timeouts,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "conn_errors": stats.conn_errors, "timeouts": stats.timeouts, "decisions": stats.decisions,
        "allows": stats.allows, "decision_errors": stats.decision_errors, "short_answers": stats.short_answers,
        "latency_ms": {**pct, "mean": (sum(lat_ms) / len(lat_ms)) if lat_ms else None,
                       "max": max(lat_ms) if lat_ms else None},
        "client_cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
    }


async def _client(spec: dict[str, Any]) -> list[dict[str, Any]]:
    conns = [_Conn(HOST, int(spec["port"])) for _ in range(int(spec["concurrency"]))]
    out = []
    try:
        # Open the connections one at a time, as a caller's pool grows, each with one cheap request.
        # Opened in one burst, they would all be accepted by whichever worker woke first (the
        # workers share one listening socket and each accepts everything pending when it wakes).
        hello = _build_requests("GET", "/healthz", int(spec["port"]), None, [])[0]
        for c in conns:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await c.request(hello)
            await asyncio.sleep(0.005)
        for stage in spec["stages"]:
            out.append(await _run_stage(conns, stage, int(spec["port"]), float(spec.get("timeout", 30))))
    finally:
        for c in conns:
            c.close()
    return out


def client_main(spec_path: Path) -> None:
    """Entry of the client process: run the spec's stages, write their results next to it."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    if spec["host"] != HOST:
        raise SystemExit("the benchmark only ever targets the loopback address")
    loop_kind = "asyncio"
    try:
        import uvloop

        uvloop.install()
        loop_kind = "uvloop"
    except ImportError:
        pass
    results = asyncio.run(_client(spec))
    Path(spec["out"]).write_text(json.dumps({"loop": loop_kind, "stages": results}), encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _die_with_parent(sig: int) -> Any:
    """preexec_fn: ask Linux to send ``sig`` to the child when the harness dies (even by SIGKILL)."""
    def setup() -> None:
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
    return setup


def _spawn(cmd: list[str], *, env: dict[str, str] | None = None, log: Path | None = None,
           death_signal: int = signal.SIGKILL) -> subprocess.Popen[bytes]:
    """A child in its own process group (so the whole group can be stopped)."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True, preexec_fn=_die_with_parent(death_signal))
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


def _kill_group(proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """SIGTERM the child's process group, SIGKILL what is left after ``grace`` seconds."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out.extend(int(x) for x in (task / "children").read_text().split())
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields_ = stat[stat.rindex(")") + 2:].split()
    return (int(fields_[11]) + int(fields_[12])) / _CLK_TCK


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return (total - idle) / _CLK_TCK, total / _CLK_TCK


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    out.add(target[8:-1])
    return out


def connections_per_worker(port: int, pids: Iterable[int]) -> dict[str, int]:
    """Established client connections each worker holds on ``port`` (from /proc/net/tcp and the fds)."""
    established: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "01":
                    established.add(parts[9])
    return {str(pid): len(_socket_inodes(pid) & established) for pid in pids}


def machine_busy_cores(seconds: float = 1.0) -> float:
    """Cores busy on the whole machine over ``seconds`` (before the run: is someone else using it?)."""
    b0, t0 = _machine_cpu()
    time.sleep(seconds)
    b1, t1 = _machine_cpu()
    return (b1 - b0) / (t1 - t0) * (os.cpu_count() or 1) if t1 > t0 else 0.0


def _postgres_cpu() -> float:
    """CPU seconds of every local PostgreSQL process (the database's share of the machine)."""
    total = 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if (d / "comm").read_text().strip() == "postgres":
                    total += _cpu_seconds(int(d.name)) or 0.0
    return total


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET on a fresh connection (so successive calls may reach different workers)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Server:
    """``accessgov serve --workers N`` on a loopback port, in its own process group."""

    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.env, self.workers, self.log = env, workers, log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> float:
        """Start and wait until ``/readyz`` answers 200; returns the seconds it took."""
        started = time.monotonic()
        cmd = [str(Path(sys.executable).parent / "accessgov"), "serve", "--host", HOST, "--port", str(self.port),
               "--workers", str(self.workers)]
        if not Path(cmd[0]).exists():
            cmd = [sys.executable, "-m", "app.cli", *cmd[1:]]
        # SIGTERM, not SIGKILL, when the harness dies: the master then stops its workers.
        self.proc = _spawn(cmd, env=self.env, log=self.log, death_signal=signal.SIGTERM)
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if _http_get(self.port, "/readyz", timeout=2)[0] == 200 and len(self.worker_pids()) >= self.workers:
                    return time.monotonic() - started
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (multiprocessing children running the app)."""
        if self.proc is None:
            return []
        return sorted(p for p in _children(self.proc.pid) if "resource_tracker" not in _cmdline(p))

    def stop(self, timeout: float = 120.0) -> tuple[float, bool]:
        """SIGTERM to the master (as an orchestrator stops it); returns (seconds, forced)."""
        assert self.proc is not None
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        forced = False
        try:
            self.proc.wait(timeout=timeout)
            deadline = time.monotonic() + 10
            while _group_alive(self.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            forced = _group_alive(self.proc.pid)
        except subprocess.TimeoutExpired:
            forced = True
        if forced:
            _kill_group(self.proc, grace=2)
        return time.monotonic() - started, forced

    def kill(self) -> None:
        _kill_group(self.proc)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# --------------------------------------------------------------------------------------------------
# /metrics
# --------------------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format -> {"name{labels}": value} (comments skipped)."""
    out = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def _fingerprint(sample: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """Counters that differ between workers and stay still once the load has stopped."""
    return tuple(sorted((k, v) for k, v in sample.items()
                        if k.startswith(("accessgov_decisions_total", "accessgov_decision_seconds_count"))))


def read_worker_metrics(port: int, workers: int, tries: int = 60) -> dict[str, Any]:
    """Each worker's drop counter, read through the shared listening socket.

    With ``--workers N`` the workers share one socket and whichever accepts a connection answers;
    there is no way to address one.  After the load has stopped each worker's counters stand still,
    so answers are told apart by a fingerprint (its decision counters): up to ``tries`` fresh
    connections are opened until ``workers`` distinct fingerprints were seen.  A worker that never
    answered stays unseen (reported), and ``decisions_total`` summed over the workers seen must
    equal the decisions the client was answered.
    """
    seen: dict[tuple[tuple[str, float], ...], dict[str, float]] = {}
    for _ in range(tries):
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, body = _http_get(port, "/metrics")
            if status == 200:
                sample = parse_metrics(body.decode())
                seen[_fingerprint(sample)] = sample
        if len(seen) >= workers:
            break
    per_worker = [{
        "decisions_total": sum(v for k, v in s.items() if k.startswith("accessgov_decisions_total")),
        "dropped_total": s.get("accessgov_decision_log_dropped_total", 0.0),
        "write_failures_total": s.get("accessgov_decision_log_write_failures_total", 0.0),
        "queue_depth": s.get("accessgov_decision_log_queue_depth", 0.0),
    } for s in seen.values()]
    return {"workers_expected": workers, "workers_seen": len(per_worker), "per_worker": per_worker,
            "dropped_total": sum(w["dropped_total"] for w in per_worker),
            "write_failures_total": sum(w["write_failures_total"] for w in per_worker),
            "decisions_total": sum(w["decisions_total"] for w in per_worker)}


class Monitor(threading.Thread):
    """Samples CPU (server workers, client, machine) and the decision-log queue depth while a phase runs."""

    def __init__(self, server: Server, client_pid: int, interval: float = 0.5, *, db_cpu: bool = False) -> None:
        super().__init__(name="bench-monitor", daemon=True)
        self.server, self.client_pid, self.interval, self.db_cpu = server, client_pid, interval, db_cpu
        self.samples: list[dict[str, Any]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        workers = self.server.worker_pids()
        while not self._stop_event.is_set():
            busy, total = _machine_cpu()
            sample: dict[str, Any] = {
                "t": time.time(), "machine_busy": busy, "machine_total": total,
                "workers": {str(p): _cpu_seconds(p) for p in workers},
                "master": _cpu_seconds(self.server.proc.pid) if self.server.proc else None,
                "client": _cpu_seconds(self.client_pid),
                "connections": connections_per_worker(self.server.port, workers),
                "db": _postgres_cpu() if self.db_cpu else 0.0,
            }
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, body = _http_get(self.server.port, "/metrics", timeout=2)
                if status == 200:
                    m = parse_metrics(body.decode())
                    sample["queue_depth"] = m.get("accessgov_decision_log_queue_depth")
                    sample["dropped"] = m.get("accessgov_decision_log_dropped_total")
            self.samples.append(sample)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

    def window(self, start: float, end: float) -> dict[str, Any]:
        """CPU use between the samples nearest to [start, end], and the queue depth seen within it."""
        inside = [s for s in self.samples if start <= s["t"] <= end]
        depth = [s["queue_depth"] for s in inside if s.get("queue_depth") is not None]
        if len(inside) < 2:
            return {"queue_depth_max": max(depth, default=None)}
        a, b = inside[0], inside[-1]
        wall = b["t"] - a["t"]
        per_worker = {}
        for pid, cpu in b["workers"].items():
            if cpu is not None and a["workers"].get(pid) is not None:
                per_worker[pid] = (cpu - a["workers"][pid]) / wall
        client = ((b["client"] - a["client"]) / wall) if a["client"] is not None and b["client"] is not None else None
        master = ((b["master"] - a["master"]) / wall) if a["master"] is not None and b["master"] is not None else 0.0
        busy = (b["machine_busy"] - a["machine_busy"]) / wall
        db = (b["db"] - a["db"]) / wall
        mid = inside[len(inside) // 2]
        return {
            "seconds": wall, "machine_busy_cores": busy,
            "server_worker_cores": per_worker, "server_cores": sum(per_worker.values()),
            "client_cores": client, "db_cores": db,
            # CPU that neither the server, the client nor PostgreSQL used: the monitor, the kernel,
            # other people's jobs.
            "other_cores": busy - sum(per_worker.values()) - (client or 0.0) - master - db,
            "connections_per_worker": mid.get("connections"), "queue_depth_max": max(depth, default=None),
        }


# --------------------------------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------------------------------

def _seed_mini_org(db_url: str) -> None:
    """Migrate, import the policy baseline and seed the tests' mini organisation (about a second)."""
    from app.config import AuthSettings, Settings
    from app.db import transaction
    from app.main import build_services
    from app.migrate import upgrade
    from tests.factories import seed_org

    settings = Settings(database_url=db_url, policies_dir=ROOT / "policies", auth=AuthSettings(dev_tokens=True))
    services = build_services(settings)
    engine = services.factory.kw["bind"]
    try:
        upgrade(engine)
        services.policy.import_baseline(actor="bench", reason="benchmark baseline")
        with transaction(services.factory) as session:
            seed_org(session)
    finally:
        engine.dispose()


def _count_rows(db_url: str, tags: Iterable[str]) -> dict[str, int]:
    from sqlalchemy import bindparam, create_engine, text

    tags = list(tags)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            stmt = text("SELECT caller, count(*) FROM decision_log WHERE caller IN :tags GROUP BY caller")
            rows = conn.execute(stmt.bindparams(bindparam("tags", expanding=True)), {"tags": tags}).all()
    finally:
        engine.dispose()
    counts = dict.fromkeys(tags, 0)
    counts.update({caller: int(n) for caller, n in rows})
    return counts


class Database:
    """A fresh SQLite file or PostgreSQL schema, removed by ``drop``."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.schema: str | None = None
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / 'accessgov-bench.db'}"
        else:
            from sqlalchemy import create_engine, text

            self.schema = f"bench_{uuid.uuid4().hex[:12]}"
            admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            finally:
                admin.dispose()
            sep = "&" if "?" in POSTGRES_URL else "?"
            self.url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{self.schema}"

    def drop(self) -> None:
        if self.schema is None:
            return
        from sqlalchemy import create_engine, text

        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text("SET lock_timeout = '20s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        finally:
            admin.dispose()
        self.schema = None


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------

def _accessgov(args: list[str], env: dict[str, str], timeout: float) -> str:
    exe = Path(sys.executable).parent / "accessgov"
    cmd = [str(exe), *args] if exe.exists() else [sys.executable, "-m", "app.cli", *args]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,  # noqa: S603
                         check=False)
    if res.returncode != 0:
        raise RuntimeError(f"accessgov {' '.join(args)} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return res.stdout


def _dev_tokens(env: dict[str, str], client_ids: list[str]) -> dict[str, str]:
    """``accessgov dev-token --client-id X --scopes accessgov.decide`` for each id, in parallel."""
    exe = Path(sys.executable).parent / "accessgov"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "app.cli"]
    procs = {cid: subprocess.Popen([*base, "dev-token", "--client-id", cid, "--scopes", "accessgov.decide",  # noqa: S603
                                    "--ttl", "7200"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for cid in client_ids}
    out = {}
    try:
        for cid, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=60)
            if proc.returncode != 0:
                raise RuntimeError(f"accessgov dev-token failed: {stderr[-2000:]}")
            out[cid] = stdout.strip()
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    return out


def _code_version() -> dict[str, Any]:
    """The commit measured, and the files of app/ that differ from it (others edit the tree)."""
    def git(*a: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            res = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10,  # noqa: S603,S607
                                 check=False)
            return res.stdout.strip() if res.returncode == 0 else ""
        return ""
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "app_changes": [ln[3:] for ln in git("status", "--porcelain", "--", "app", "policies").splitlines()]}


def _server_env(db_url: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSGOV_")}
    env.update({"ACCESSGOV_DATABASE_URL": db_url, "ACCESSGOV_AUTH__DEV_TOKENS": "true",
                "ACCESSGOV_POLICIES_DIR": str(ROOT / "policies")})
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@dataclass
class Run:
    """Everything started by one run, for the ``finally``."""

    workdir: Path
    db: Database | None = None
    server: Server | None = None
    client: subprocess.Popen[bytes] | None = None
    profiler: subprocess.Popen[bytes] | None = None
    monitor: Monitor | None = None

    def cleanup(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        _kill_group(self.profiler, grace=5)
        _kill_group(self.client, grace=2)
        if self.server is not None:
            self.server.kill()
        if self.db is not None:
            try:
                self.db.drop()
            except Exception as exc:
                print(f"warning: could not drop schema {self.db.schema}: {exc}", file=sys.stderr)


def _run_client(run: Run, spec: dict[str, Any], server: Server, profile: dict[str, Any] | None
                ) -> tuple[list[dict[str, Any]], Monitor, str]:
    """Run the client process over ``spec``'s stages while the monitor (and py-spy) watch."""
    spec_path = run.workdir / f"client-{uuid.uuid4().hex[:6]}.json"
    spec["out"] = str(spec_path.with_suffix(".out.json"))
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    run.client = _spawn([sys.executable, "-m", "bench.http_bench", "--run-client", str(spec_path)],
                        log=run.workdir / "client.log")
    run.monitor = Monitor(server, run.client.pid, db_cpu=spec.get("db") == "postgres")
    run.monitor.start()
    total = sum(float(s["duration"]) for s in spec["stages"])
    if profile is not None:
        _start_profiler(run, server, spec, profile)
    try:
        rc = run.client.wait(timeout=total + float(spec.get("timeout", 30)) + 60)
    except subprocess.TimeoutExpired:
        _kill_group(run.client, grace=2)
        raise RuntimeError("the load client did not finish in time") from None
    finally:
        run.monitor.stop()
    monitor, run.monitor = run.monitor, None
    if rc != 0:
        log = (run.workdir / "client.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the load client failed ({rc}):\n{log}")
    run.client = None
    if run.profiler is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.profiler.wait(timeout=30)
        _kill_group(run.profiler, grace=2)
        run.profiler = None
    result = json.loads(Path(spec["out"]).read_text(encoding="utf-8"))
    return result["stages"], monitor, result["loop"]


def _start_profiler(run: Run, server: Server, spec: dict[str, Any], profile: dict[str, Any]) -> None:
    """py-spy on one worker for a few seconds in the middle of the timed stage."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        profile["error"] = "py-spy not installed (pip install py-spy)"
        return
    pid = server.worker_pids()[0]
    delay = float(spec["stages"][0]["duration"]) + 1.0
    out = run.workdir / f"pyspy-{spec['stages'][-1]['name']}.txt"
    profile.update({"pid": pid, "raw": str(out), "seconds": profile["seconds"]})

    def later() -> None:
        time.sleep(delay)
        if run.client is None or run.client.poll() is not None:
            return
        # --gil: sample only the thread holding the GIL, i.e. where the worker's Python CPU goes
        # (idle threadpool threads and the event loop's epoll wait are left out).
        run.profiler = _spawn([exe, "record", "--pid", str(pid), "--duration", str(int(profile["seconds"])),
                               "--rate", "250", "--format", "raw", "--gil", "--threads",
                               "--output", str(out)], log=run.workdir / "py-spy.log")
        # Linux delivers the "parent died" signal when the spawning *thread* ends: stay until py-spy does.
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.profiler.wait(timeout=float(profile["seconds"]) + 30)

    threading.Thread(target=later, daemon=True).start()


_PACKAGES = ("uvicorn", "starlette", "fastapi", "anyio", "sqlalchemy", "pydantic", "jose", "orjson",
             "prometheus_client", "httptools", "uvloop", "psycopg")


def frame_package(frame: str) -> str:
    """``f (sqlalchemy/orm/session.py:12)`` -> ``sqlalchemy``; ``app/decisions/...`` -> ``app/decisions``."""
    m = re.search(r"\(([^()]+):\d+\)$", frame)
    path = m.group(1) if m else frame
    top = path.split("/")[0]
    if top in _PACKAGES:
        return top
    if top == "app":
        return "/".join(path.split("/")[:2]).removesuffix(".py")
    if top in ("asyncio", "json", "multiprocessing", "concurrent") or path.startswith(
            ("threading.py", "queue.py", "<frozen", "weakref.py", "_weakrefset.py", "contextlib.py")):
        return f"stdlib {top.removesuffix('.py')}"
    return top


def summarize_profile(raw: Path, top: int = 25) -> dict[str, Any]:
    """Top frames of a py-spy ``--format raw`` (collapsed stacks) file: self time, inclusive time, and
    self time by package."""
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0]] += n
        frames = frames[1:] if frames[0].startswith(("thread", "process")) else frames
        if frames:
            self_t[frames[-1]] += n
            packages[frame_package(frames[-1])] += n
        for f in set(frames):
            incl[f] += n
    def share(c: Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": f, "share": n / total} for f, n in c.most_common(top)] if total else []

    return {"samples": total, "threads": share(threads), "packages": share(packages), "self": share(self_t),
            "inclusive": share(incl)}


def _phase_result(stage: dict[str, Any], batch: int, cpu: dict[str, Any]) -> dict[str, Any]:
    elapsed = stage["elapsed"] or 1e-9
    out = dict(stage)
    out.update({
        "requests_per_s": stage["requests"] / elapsed, "decisions_per_s": stage["decisions"] / elapsed,
        "batch_size": batch, "cpu": cpu,
        "server_cpu_ms_per_request": (cpu["server_cores"] * elapsed * 1000 / stage["requests"])
        if cpu.get("server_cores") and stage["requests"] else None,
        "client_cpu_us_per_request": (stage["client_cpu_s"] * 1e6 / stage["requests"]) if stage["requests"] else None,
    })
    return out


def _wait_drained(port: int, timeout: float) -> float | None:
    """Poll /metrics until several answers in a row show an empty decision-log queue; seconds taken."""
    started, zeros = time.monotonic(), 0
    while time.monotonic() - started < timeout:
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, body = _http_get(port, "/metrics")
            depth = parse_metrics(body.decode()).get("accessgov_decision_log_queue_depth") if status == 200 else None
            zeros = zeros + 1 if depth == 0 else 0
            if zeros >= 8:
                return time.monotonic() - started
        time.sleep(0.1)
    return None


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the summary (also written to ``--results-dir``)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    workdir = Path(tempfile.mkdtemp(prefix="accessgov-http-bench-"))
    run = Run(workdir)
    extra_env = dict(kv.split("=", 1) for kv in args.env)
    if args.batch_size > SERVER_MAX_BATCH and "ACCESSGOV_MAX_BATCH" not in extra_env:
        extra_env["ACCESSGOV_MAX_BATCH"] = str(args.batch_size)  # let the batch through; not a tuning knob
    summary: dict[str, Any] = {
        "started_at": stamp, "db": args.db, "workers": args.workers, "concurrency": args.concurrency,
        "duration_s": args.duration, "warmup_s": args.warmup, "batch_size": args.batch_size,
        "skip_demo": args.skip_demo, "server_env_overrides": extra_env,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "client": "asyncio raw HTTP/1.1 keep-alive, separate process", "phases": {},
    }
    try:
        summary["machine"]["busy_cores_before"] = machine_busy_cores(1.0)
        summary["machine"]["host_speed"] = {"before": hostspeed.measure()}  # the server is not started yet
        summary["code"] = _code_version()
        t = time.monotonic()
        run.db = Database(args.db, workdir)
        env = _server_env(run.db.url, extra_env)
        if args.skip_demo:
            _seed_mini_org(run.db.url)
            summary["organisation"] = "tests.factories.seed_org (mini organisation)"
        else:
            out = _accessgov(["demo"], env, timeout=900)
            summary["organisation"] = "accessgov demo"
            with contextlib.suppress(ValueError):
                summary["demo_summary"] = json.loads(out[out.index("{"):])
        summary["prepare_s"] = time.monotonic() - t
        cat = load_catalog(run.db.url)
        singles, batches = single_bodies(cat), batch_bodies(cat, args.batch_size)
        summary["request_mix"] = {"records": len(cat.records), "active_people": len(cat.people),
                                  "single_bodies": len(singles), "batch_bodies": len(batches),
                                  "mean_single_body_bytes": sum(map(len, singles)) / len(singles),
                                  "mean_batch_body_bytes": sum(map(len, batches)) / len(batches)}
        tokens = _dev_tokens(env, [tag for name, pair in TAGS.items() for tag in pair
                                   if name != "single@rate" or args.rate])

        run.server = Server(env, args.workers, workdir / "server.log")
        summary["server_start_s"] = run.server.start()
        server = run.server
        summary["worker_pids"] = server.worker_pids()
        base = {"host": HOST, "port": server.port, "concurrency": args.concurrency, "timeout": args.timeout,
                "db": args.db}

        # The client's own ceiling: a trivial endpoint, same connections and the same code path.
        if args.ceiling_duration > 0:
            stages, mon, loop = _run_client(run, {**base, "stages": [
                {"name": "healthz-warmup", "method": "GET", "path": "/healthz", "duration": min(1.0, args.warmup)},
                {"name": "healthz", "method": "GET", "path": "/healthz", "duration": args.ceiling_duration},
            ]}, server, None)
            st = stages[-1]
            cpu = mon.window(st["wall_start"], st["wall_end"])
            res = _phase_result(st, 0, cpu)
            us = res["client_cpu_us_per_request"]
            summary["client"] += f" ({loop})"
            summary["client_ceiling"] = {
                "healthz_requests_per_s": res["requests_per_s"], "latency_ms": st["latency_ms"],
                "errors": st["errors"], "client_cpu_us_per_request": us,
                "client_ceiling_per_core_rps": (1e6 / us) if us else None, "cpu": cpu,
            }

        phases: list[tuple[str, str, list[bytes], int, float]] = [
            ("single", "/access/v1/evaluation", singles, 1, 0.0)]
        if args.rate:
            phases.append(("single@rate", "/access/v1/evaluation", singles, 1, args.rate))
        phases.append(("batch", "/access/v1/evaluations", batches, args.batch_size, 0.0))
        summary["drain_s"] = {}
        for name, path, bodies, per_req, rate in phases:
            warm_tag, tag = TAGS[name]
            body_strs = [b.decode() for b in bodies]
            profile = {"seconds": args.profile} if args.profile and not rate else None
            stages, mon, _ = _run_client(run, {**base, "stages": [
                {"name": f"{name}-warmup", "tag": warm_tag, "method": "POST", "path": path,
                 "token": tokens[warm_tag], "bodies": body_strs, "duration": args.warmup,
                 "decisions_per_request": per_req, "rate": rate},
                {"name": name, "tag": tag, "method": "POST", "path": path, "token": tokens[tag],
                 "bodies": body_strs, "duration": args.duration, "decisions_per_request": per_req, "rate": rate},
            ]}, server, profile)
            warm, timed = stages
            res = _phase_result(timed, per_req, mon.window(timed["wall_start"], timed["wall_end"]))
            res["warmup"] = {k: warm[k] for k in ("requests", "decisions", "errors", "elapsed", "tag")}
            res["queue_depth_max_seen"] = max((s["queue_depth"] for s in mon.samples
                                               if s.get("queue_depth") is not None), default=None)
            # Seconds from the timed window's start -> the depth reported by whichever worker answered.
            res["queue_depth_timeline"] = [(round(s["t"] - timed["wall_start"], 2), s["queue_depth"])
                                           for s in mon.samples if s.get("queue_depth") is not None]
            if profile is not None and profile.get("raw") and Path(profile["raw"]).exists():
                profile["summary"] = summarize_profile(Path(profile["raw"]))
                kept = RESULTS_DIR if args.results_dir is None else Path(args.results_dir)
                kept.mkdir(parents=True, exist_ok=True)
                dest = kept / f"http-{stamp}-pyspy-{name}.txt"
                shutil.copy(profile["raw"], dest)
                profile["raw"] = str(dest)
            res["profile"] = profile
            summary["phases"][name] = res
            # Let the writer catch up before the next phase, so one phase's backlog does not slow the
            # next; after the last phase the shutdown flush does it (that is part of what is checked).
            if name != phases[-1][0]:
                summary["drain_s"][name] = _wait_drained(server.port, args.drain_timeout)

        # Integrity: drops counted by each worker, then SIGTERM (flush), then rows vs answers.
        summary["metrics_before_shutdown"] = read_worker_metrics(server.port, args.workers)
        shutdown_s, forced = server.stop()
        summary["shutdown"] = {"seconds": shutdown_s, "forced_kill": forced}
        log_text = server.log.read_text(errors="replace")
        summary["server_log"] = {
            "tracebacks": log_text.count("Traceback"), "errors": len(re.findall(r'"level": ?"ERROR"|ERROR', log_text)),
            "worker_died": log_text.count(" died"), "tail": log_text.splitlines()[-15:],
        }
        summary["decision_log"] = _integrity(run.db.url, summary, stages_by_tag={
            stage["tag"]: stage for ph in summary["phases"].values() for stage in (ph, ph["warmup"])})
        summary["targets"] = evaluate_targets(summary)
        summary["machine"]["host_speed"]["after"] = hostspeed.measure()  # the server has stopped
    finally:
        run.cleanup()
        if args.keep_workdir:
            summary["workdir"] = str(workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results_dir = RESULTS_DIR if args.results_dir is None else Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"http-{stamp}.json"
    path.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    summary["summary_path"] = str(path)
    return summary


def _integrity(db_url: str, summary: dict[str, Any], stages_by_tag: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rows = _count_rows(db_url, stages_by_tag)
    by_tag = {tag: {"answered": st["decisions"], "rows": rows[tag], "missing": st["decisions"] - rows[tag]}
              for tag, st in stages_by_tag.items()}
    answered = sum(v["answered"] for v in by_tag.values())
    written = sum(v["rows"] for v in by_tag.values())
    metrics = summary["metrics_before_shutdown"]
    return {
        "by_caller": by_tag, "answered": answered, "rows": written, "missing": answered - written,
        "dropped_metric_total": metrics["dropped_total"], "workers_seen": metrics["workers_seen"],
        "metric_decisions_total": metrics["decisions_total"],
        "complete": answered == written and metrics["dropped_total"] == 0 and not summary["shutdown"]["forced_kill"],
    }


def evaluate_targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """PASS/FAIL of each target line."""
    single, batch = summary["phases"].get("single"), summary["phases"].get("batch")
    dl = summary.get("decision_log", {})
    out = []

    def line(name: str, value: Any, ok: bool, shown: str) -> None:
        out.append({"target": name, "value": value, "pass": bool(ok), "shown": shown})

    if single:
        rps, errs = single["decisions_per_s"], single["errors"]
        line("single evaluations >= 3,000/s", rps, rps >= TARGET_SINGLE_RPS and errs == 0,
             f"{rps:,.0f}/s" + (f", {errs} errors" if errs else ""))
        rated = summary["phases"].get("single@rate")
        src = rated or single
        p99 = src["latency_ms"]["p99"]
        where = (f"at {rated['rate']:,.0f}/s offered, {rated['requests_per_s']:,.0f}/s answered" if rated
                 else f"closed loop, {summary['concurrency']} connections, {single['requests_per_s']:,.0f}/s")
        ok = p99 is not None and p99 <= TARGET_SINGLE_P99_MS and src["errors"] == 0
        if rated:  # the latency only counts at the target's load
            ok = ok and rated["rate"] >= TARGET_SINGLE_RPS and rated["requests_per_s"] >= 0.98 * rated["rate"]
        line("single evaluations p99 <= 10 ms", p99, ok,
             (f"p99 {p99:.1f} ms" if p99 is not None else "no samples") + f" ({where})")
    if batch:
        dps, errs = batch["decisions_per_s"], batch["errors"]
        line("batch >= 100,000 decisions/s", dps, dps >= TARGET_BATCH_DPS and errs == 0,
             f"{dps:,.0f} decisions/s" + (f", {errs} errors" if errs else ""))
    if dl:
        line("decision log complete (0 dropped)", dl["missing"], dl["complete"],
             f"{dl['rows']:,} rows / {dl['answered']:,} answered, missing {dl['missing']:,}, "
             f"dropped metric {dl['dropped_metric_total']:.0f} "
             f"({dl['workers_seen']}/{summary['workers']} workers seen)")
    return out


def _fmt(v: float | None, spec: str = ",.1f") -> str:
    return "-" if v is None else format(v, spec)


def render(summary: dict[str, Any]) -> str:
    """The printed report."""
    s = summary
    lines = [f"accessgov HTTP benchmark  {s['started_at']}  db={s['db']}  workers={s['workers']}  "
             f"concurrency={s['concurrency']}  duration={s['duration_s']:g}s (warm-up {s['warmup_s']:g}s)  "
             f"batch={s['batch_size']}  cpus={s['machine']['cpus']}",
             f"code: commit {s.get('code', {}).get('commit') or '?'}"
             + (f" + uncommitted changes in {', '.join(s['code']['app_changes'])}" if s.get("code", {}).get(
                 "app_changes") else " (app/ and policies/ clean)"),
             f"organisation: {s.get('organisation')}  ({s['request_mix']['records']} records, "
             f"{s['request_mix']['active_people']} active people; prepared in {s.get('prepare_s', 0):.1f}s)"]
    if s.get("client_ceiling"):
        c = s["client_ceiling"]
        lines.append(f"client: {s['client']}; GET /healthz {c['healthz_requests_per_s']:,.0f} req/s "
                     f"(p99 {_fmt(c['latency_ms']['p99'])} ms), client CPU {_fmt(c['client_cpu_us_per_request'])} "
                     f"us/req => client ceiling ~{_fmt(c['client_ceiling_per_core_rps'], ',.0f')} req/s per core")
    lines.append("")
    head = (f"{'phase':<12}{'req/s':>9}{'decisions/s':>13}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
            f"{'errors':>8}{'allow %':>9}")
    lines += [head, "-" * len(head)]
    for name, p in s["phases"].items():
        lat = p["latency_ms"]
        allow = 100 * p["allows"] / p["decisions"] if p["decisions"] else None
        lines.append(f"{name:<12}{p['requests_per_s']:>9,.0f}{p['decisions_per_s']:>13,.0f}{_fmt(lat['p50']):>9}"
                     f"{_fmt(lat['p90']):>9}{_fmt(lat['p99']):>9}{_fmt(lat['max']):>9}{p['errors']:>8}"
                     f"{_fmt(allow, '.0f'):>9}")
    lines += ["", "where the CPU went during each timed window (cores of 2 = machine full):"]
    head = (f"{'phase':<12}{'server':>8}{'per worker':>14}{'conns/worker':>14}{'client':>8}{'pg':>6}{'other':>7}"
            f"{'srv ms/req':>12}{'client us/req':>15}{'max log queue':>15}")
    lines += [head, "-" * len(head)]
    for name, p in s["phases"].items():
        cpu = p["cpu"]
        split = "/".join(format(v, ".2f") for v in (cpu.get("server_worker_cores") or {}).values())
        conns = "/".join(str(v) for v in (cpu.get("connections_per_worker") or {}).values())
        lines.append(f"{name:<12}{_fmt(cpu.get('server_cores'), '.2f'):>8}{split:>14}{conns:>14}"
                     f"{_fmt(cpu.get('client_cores'), '.2f'):>8}"
                     f"{_fmt(cpu.get('db_cores') if s['db'] == 'postgres' else None, '.2f'):>6}"
                     f"{_fmt(cpu.get('other_cores'), '.2f'):>7}"
                     f"{_fmt(p['server_cpu_ms_per_request'], '.2f'):>12}"
                     f"{_fmt(p['client_cpu_us_per_request'], ',.0f'):>15}"
                     f"{_fmt(p.get('queue_depth_max_seen'), ',.0f'):>15}")
    speed = s["machine"].get("host_speed") or {}
    for when in ("before", "after"):
        if speed.get(when):
            lines.append(f"{when} the run: {hostspeed.describe(speed[when])}")
    busy = s["machine"].get("busy_cores_before") or 0.0
    other = max((p["cpu"].get("other_cores") or 0.0 for p in s["phases"].values()), default=0.0)
    if busy > 0.2 or other > 0.2:
        lines.append(f"WARNING: the machine was not ours alone ({busy:.2f} cores busy before the run, up to "
                     f"{other:.2f} cores used by other processes during it): the numbers are low by that much.")
    dl = s.get("decision_log")
    if dl:
        lines += ["", "decision log (rows by caller after SIGTERM vs decisions answered):"]
        for tag, v in dl["by_caller"].items():
            lines.append(f"  {tag:<22} answered {v['answered']:>10,}  rows {v['rows']:>10,}  "
                         f"missing {v['missing']:>8,}")
        m = s["metrics_before_shutdown"]
        lines.append(f"  accessgov_decision_log_dropped_total: {m['dropped_total']:.0f} over {m['workers_seen']}/"
                     f"{m['workers_expected']} workers seen (per worker: "
                     f"{', '.join(format(w['dropped_total'], '.0f') for w in m['per_worker'])}); "
                     f"accessgov_decisions_total over those workers: {m['decisions_total']:,.0f}")
        lines.append(f"  drain between phases: {', '.join(f'{k} {_fmt(v)}s' for k, v in s['drain_s'].items()) or '-'}"
                     f"; shutdown (SIGTERM -> exit): {s['shutdown']['seconds']:.1f}s"
                     f"{' (over docker stop default 10 s grace)' if s['shutdown']['seconds'] > 10 else ''}"
                     f"{' FORCED KILL' if s['shutdown']['forced_kill'] else ''}; server log: "
                     f"{s['server_log']['tracebacks']} tracebacks, {s['server_log']['worker_died']} worker deaths")
    lines += ["", "targets:"]
    for t in s.get("targets", []):
        lines.append(f"  {'PASS' if t['pass'] else 'FAIL'}  {t['target']:<38} {t['shown']}")
    for name, p in s["phases"].items():
        prof = p.get("profile") or {}
        if prof.get("summary"):
            lines += ["", f"py-spy --gil, one worker (pid {prof['pid']}), {prof['seconds']:g}s of phase {name}, "
                      f"{prof['summary']['samples']} samples (GIL held); top self frames:"]
            lines += [f"  {f['share'] * 100:5.1f}%  {f['frame']}" for f in prof["summary"]["self"][:15]]
            lines.append("  self time by package: " + ", ".join(
                f"{f['frame']} {f['share'] * 100:.0f}%" for f in prof["summary"]["packages"][:12]))
            lines.append("  threads: " + ", ".join(
                f"{f['frame']} {f['share'] * 100:.0f}%" for f in prof["summary"]["threads"][:6]))
        elif prof.get("error"):
            lines.append(f"py-spy: {prof['error']}")
    if s.get("summary_path"):
        lines += ["", f"summary: {s['summary_path']}"]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.http_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=15.0, help="timed seconds per phase")
    ap.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds before each timed window")
    ap.add_argument("--concurrency", type=int, default=32, help="client connections")
    ap.add_argument("--batch-size", type=int, default=100, help="evaluations per batch request")
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (one per core as deployed)")
    ap.add_argument("--skip-demo", action="store_true",
                    help="seed the tests' mini organisation (tests.factories.seed_org) instead of the demo")
    ap.add_argument("--ceiling-duration", type=float, default=3.0,
                    help="seconds of GET /healthz measuring the client's ceiling (0: skip)")
    ap.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                    help="py-spy one worker for SECONDS in each timed window (changes the numbers a little)")
    ap.add_argument("--rate", type=float, default=0.0, metavar="REQ_PER_S",
                    help="also run single evaluations open loop at this offered rate (latency at that load, "
                    "counted from when each request was due); 0: off")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds an answer may take before it is an error")
    ap.add_argument("--drain-timeout", type=float, default=300.0,
                    help="longest wait for the decision-log queue to empty between phases")
    ap.add_argument("--env", action="append", default=[], metavar="ACCESSGOV_X=VALUE",
                    help="extra server setting (recorded in the summary); inherited ACCESSGOV_* are dropped")
    ap.add_argument("--results-dir", default=None, help="where the JSON summary goes (default bench/results)")
    ap.add_argument("--keep-workdir", action="store_true", help="keep the temp dir (database, logs)")
    ap.add_argument("--run-client", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for kv in args.env:
        if "=" not in kv or not kv.startswith("ACCESSGOV_"):
            ap.error(f"--env takes ACCESSGOV_NAME=VALUE, not {kv!r}")
    if args.concurrency < 1 or args.duration <= 0 or args.batch_size < 1 or args.workers < 1:
        ap.error("concurrency, duration, batch size and workers must be positive")
    return args


def _raise_on_sigterm(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_client:
        client_main(Path(args.run_client))
        return 0
    signal.signal(signal.SIGTERM, _raise_on_sigterm)  # so the finally blocks stop what was started
    try:
        summary = run_benchmark(args)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print(render(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
