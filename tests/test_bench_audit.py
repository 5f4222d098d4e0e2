"""`python -m bench.audit` at a tiny size, so that the audit benchmark cannot silently rot.

On SQLite and on PostgreSQL (a fresh schema; under CI=true a missing server fails, never skips): the
company is built through the migrations, two audit runs are timed in a fresh process and reported,
and the usage aggregates the benchmark computes with SQL equal what the decision-log writer folds in
for the same rows.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from app.db import make_engine
from app.decisions import recorder
from app.decisions.models import DecisionRecord, Usage
from audit import tables as at
from bench import audit as bench_audit

TINY = bench_audit.Params(people=300, decisions=20_000)


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_audit_benchmark_at_a_tiny_size(db: str, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url"))
    said: list[str] = []
    result = bench_audit.run(url, TINY, log=said.append)
    assert not result["reused"] and result["db"] == db

    out = bench_audit.report(result)
    for label in (*bench_audit.SETUP_STEPS, "population load s", "checks s", "store s", "total s", "peak RSS MB",
                  "findings by kind", "cold (first run)", "warm (seen again)", "audit run <= 120 s"):
        assert label in out, label
    cold, warm = result["runs"]
    for run in (cold, warm):
        assert run["wall_s"] >= sum(run["counts"]["seconds"].values()) > 0
        assert run["peak_rss_mb"] > 0
    assert cold["counts"]["new"] == cold["counts"]["total"] > 0
    assert warm["counts"]["seen_again"] + warm["counts"]["new"] == warm["counts"]["total"]
    assert warm["counts"]["seen_again"] >= cold["counts"]["total"] - 5  # a finding may age out between runs
    by_kind = cold["counts"]["by_kind"]
    for kind in ("unused_permission", "unused_sensitive_field", "dormant_account", "leaver_active",
                 "orphan_account", "peer_outlier"):
        assert by_kind.get(kind), (kind, by_kind)
    assert result["setup"]["counts"]["people"] == TINY.people

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            logged = conn.execute(select(
                DecisionRecord.id, DecisionRecord.at, DecisionRecord.caller, DecisionRecord.subject,
                DecisionRecord.person_id, DecisionRecord.action, DecisionRecord.resource_type,
                DecisionRecord.resource_id, DecisionRecord.allowed, DecisionRecord.policy_version,
                DecisionRecord.reason, DecisionRecord.fields)).all()
            usage = conn.execute(select(
                Usage.person_id, Usage.resource_type, Usage.action, Usage.count, Usage.allows, Usage.denies,
                Usage.first_used, Usage.last_used).order_by(Usage.person_id, Usage.resource_type, Usage.action)).all()
            fu = at.field_usage.c
            field_usage = conn.execute(select(fu.person_id, fu.resource_type, fu.field, fu.count, fu.first_used,
                                              fu.last_used)).all()
    finally:
        engine.dispose()
    assert len(logged) == TINY.decisions
    rows = [(*r[:10], orjson.dumps(r.reason).decode(), orjson.dumps(r.fields).decode()) for r in logged]
    # usage: exactly the writer's fold of the same rows (count, allows, denies, first and last use)
    assert [tuple(u) for u in recorder._usage_rows(rows)] == [tuple(u) for u in usage]
    assert sum(u.count for u in usage) == TINY.decisions
    assert Counter(r.allowed for r in logged)[False] == sum(u.denies for u in usage) > 0
    # field usage: per person, type and field, the allowed decisions that showed the field
    expected = _field_usage(rows)
    assert {(f[0], f[1], f[2]): tuple(f[3:]) for f in field_usage} == expected
    fold = getattr(recorder, "_field_usage_rows", None)  # the writer's own fold, where it has one
    if fold is not None:
        assert {(f[0], f[1], f[2]): tuple(f[3:]) for f in fold(rows)} == expected
    assert expected and any(r[11] != "{}" for r in rows)

    if db == "sqlite":  # built once: --reuse finds the marker, empties the audit tables, runs again
        again = bench_audit.run(url, TINY, reuse=True, runs=1, log=said.append)
        assert again["reused"] and again["built_at"] == result["built_at"]
        assert again["runs"][0]["counts"]["new"] == again["runs"][0]["counts"]["total"] > 0
    assert any("reusing" in line for line in said) == (db == "sqlite")


def _field_usage(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    out: dict[tuple[str, str, str], list[Any]] = {}
    for r in rows:
        if r[4] is None or not r[8]:
            continue
        for name, level in orjson.loads(r[11]).items():
            if level == "hidden":
                continue
            key = (r[4], r[6], name)
            u = out.setdefault(key, [0, r[1], r[1]])
            u[0] += 1
            u[1], u[2] = min(u[1], r[1]), max(u[2], r[1])
    return {k: tuple(v) for k, v in out.items()}
