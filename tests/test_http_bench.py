"""The benchmark harnesses: bench/http_bench.py (its percentile function, and a short real run), bench.batch_cpu
and bench.hostspeed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.http_bench import parse_metrics, percentiles

ROOT = Path(__file__).resolve().parent.parent


def test_percentiles_are_nearest_rank() -> None:
    samples = list(range(100, 0, -1))  # 1..100, unsorted on purpose
    assert percentiles(samples, (50, 90, 99, 100)) == {"p50": 50, "p90": 90, "p99": 99, "p100": 100}
    assert percentiles([7.0], (50, 99)) == {"p50": 7.0, "p99": 7.0}
    # Nearest rank never interpolates: with 10 samples p99 is the largest, p90 the ninth.
    ten = [float(x) for x in range(1, 11)]
    assert percentiles(ten, (90, 99, 99.9)) == {"p90": 9.0, "p99": 10.0, "p99.9": 10.0}
    assert percentiles([3.0, 1.0, 2.0, 4.0], (25, 50, 75)) == {"p25": 1.0, "p50": 2.0, "p75": 3.0}


def test_percentiles_of_nothing_and_out_of_range() -> None:
    assert percentiles([], (50, 99)) == {"p50": None, "p99": None}
    with pytest.raises(ValueError, match="out of range"):
        percentiles([1.0], (0,))
    with pytest.raises(ValueError, match="out of range"):
        percentiles([1.0], (101,))


def test_parse_metrics_reads_labelled_and_plain_samples() -> None:
    text = (
        "# HELP accessgov_decision_log_dropped_total Decisions not logged.\n"
        "# TYPE accessgov_decision_log_dropped_total counter\n"
        "accessgov_decision_log_dropped_total 3.0\n"
        'accessgov_decisions_total{effect="allow",system="crm"} 12.0\n'
        "accessgov_decision_log_queue_depth 0.0\n"
    )
    m = parse_metrics(text)
    assert m["accessgov_decision_log_dropped_total"] == 3.0
    assert m['accessgov_decisions_total{effect="allow",system="crm"}'] == 12.0
    assert m["accessgov_decision_log_queue_depth"] == 0.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_short_run_on_the_mini_organisation(tmp_path: Path) -> None:
    """Two seconds per phase on SQLite: both phases answer, without errors, and every decision is logged."""
    res = subprocess.run(
        [sys.executable, "-m", "bench.http_bench", "--skip-demo", "--duration", "2", "--warmup", "0.5",
         "--concurrency", "4", "--batch-size", "10", "--ceiling-duration", "0.5", "--results-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=85, check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    files = list(tmp_path.glob("http-*.json"))
    assert len(files) == 1, files
    s = json.loads(files[0].read_text(encoding="utf-8"))

    assert set(s["phases"]) == {"single", "batch"}
    for name, phase in s["phases"].items():
        assert phase["requests"] > 0, name
        assert phase["requests_per_s"] > 0, name
        assert phase["decisions_per_s"] > 0, name
        assert phase["errors"] == 0, (name, phase["statuses"], phase["conn_errors"], phase["timeouts"])
        assert phase["decision_errors"] == 0, name  # no fail-closed internal errors hiding behind a 200
        assert phase["short_answers"] == 0, name
        assert phase["latency_ms"]["p50"] is not None
        assert phase["latency_ms"]["p50"] <= phase["latency_ms"]["p90"] <= phase["latency_ms"]["p99"]
    assert s["phases"]["single"]["decisions"] == s["phases"]["single"]["requests"]
    assert s["phases"]["batch"]["decisions"] == 10 * s["phases"]["batch"]["requests"]

    dl = s["decision_log"]
    assert set(dl["by_caller"]) == {"bench-single", "bench-single-warmup", "bench-batch", "bench-batch-warmup"}
    for caller, counts in dl["by_caller"].items():
        assert counts["answered"] > 0, caller
        assert counts["rows"] == counts["answered"], (caller, counts)
    assert dl["missing"] == 0
    assert dl["dropped_metric_total"] == 0
    assert dl["workers_seen"] >= 1
    if dl["workers_seen"] == s["workers"]:
        assert dl["metric_decisions_total"] == dl["answered"]  # each worker's counter, summed
    assert dl["complete"] is True
    assert not s["shutdown"]["forced_kill"]

    targets = {t["target"] for t in s["targets"]}
    assert len(targets) == 4
    for when in ("before", "after"):  # the host's speed, measured before the server starts and after it stops
        speed = s["machine"]["host_speed"][when]
        assert speed["python_ns_per_round"]["best"] > 0 and speed["sqlite_us_per_row"]["best"] > 0
        assert f"{when} the run: host speed (bench.hostspeed" in res.stdout
    assert "PASS  decision log complete" in res.stdout
    assert "single" in res.stdout and "batch" in res.stdout

    # Everything the harness started is gone.
    assert s["worker_pids"]
    assert not any(_alive(pid) for pid in s["worker_pids"])


def test_batch_cpu_reports_each_process_and_checks_the_log() -> None:
    """bench.batch_cpu: two processes on one demo database, the log on; each reports its figures, and every
    decision answered is in the decision log."""
    res = subprocess.run([sys.executable, "-m", "bench.batch_cpu", "--batches", "30", "--processes", "2"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["process 1", "process 2", "before the run", "after the run",
                                                  "decision log", "combined"], res.stdout
    assert all("host speed (bench.hostspeed" in ln for ln in lines[2:4])
    assert all("3,000 decisions" in ln and "(log writer included)" in ln for ln in lines[:2])
    assert lines[4] == "decision log: 46,000 rows of 46,000 decisions answered (warm-up included)"


def test_host_speed_reference() -> None:
    """bench.hostspeed: both workloads timed, the fastest run kept, the spread at least 1; a noisy host is
    said to be noisy."""
    from bench import hostspeed

    py = hostspeed.python_reference(rounds=3, loops=2_000)
    sq = hostspeed.sqlite_reference(rounds=2, rows=500)
    for ref in (py, sq):
        assert ref.best > 0
        assert ref.spread >= 1.0
    steady = {"python_ns_per_round": {"best": 1800.0, "spread": 1.1}, "sqlite_us_per_row": {"best": 5.0, "spread": 1.2}}
    line = hostspeed.describe(steady)
    assert "python 1,800 ns/round (spread x1.10)" in line and "sqlite 5.00 µs/row" in line
    assert "NOISY" not in line
    noisy = {**steady, "sqlite_us_per_row": {"best": 5.0, "spread": 1.8}}
    assert "NOISY" in hostspeed.describe(noisy)
