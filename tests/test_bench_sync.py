"""`python -m bench.sync` works end to end at a small size, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from bench.dbload import fresh_database
from bench.sync import company, measure, next_day


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_sync_benchmark_runs_and_applies_every_step(kind: str) -> None:
    with fresh_database(kind, keep=False) as url:
        result = measure(url, 1_000)
    counts = result["changes_counts"]
    assert counts["movers"] == 10 and counts["leavers"] == 5 and counts["people_created"] == 5  # type: ignore[index]
    assert result["first"] > 0 and result["unchanged"] > 0


def test_the_next_day_differs_as_documented() -> None:
    first = company(2_000)
    second = next_day(first)
    assert len(second.accounts) == 2_010
    moved = sum(a.department_keys != b.department_keys for a, b in zip(first.accounts, second.accounts, strict=False))
    left = sum(b.status == "left" for b in second.accounts)
    assert (moved, left) == (20, 10)
