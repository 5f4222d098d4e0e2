"""The policy tables in policies/tests run as pytest cases (and by `accessgov policy test`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.authz.policy import parse_bundle, read_bundle
from app.authz.policytest import load_tables, run_tables

POLICIES = Path(__file__).resolve().parent.parent / "policies"
POLICY = parse_bundle(read_bundle(POLICIES))
RESULTS = run_tables(POLICY, load_tables(POLICIES / "tests"))


def test_there_are_policy_tables() -> None:
    assert len({r.table for r in RESULTS}) >= 2
    assert len(RESULTS) >= 20


@pytest.mark.parametrize("result", RESULTS, ids=[f"{r.table}:{r.name}" for r in RESULTS])
def test_policy_case(result) -> None:  # type: ignore[no-untyped-def]
    assert result.passed, result.message


def test_a_wrong_expectation_is_reported_as_a_failure() -> None:
    table = {
        "departments": {"east": "hq/sales/east/"},
        "people": {"alice": {"department": "east", "grants": [{"role": "sales", "department": "east"}]}},
        "cases": [
            {"subject": "alice", "action": "read", "expect": "deny",
             "resource": {"type": "crm.customer", "owner": "alice", "department": "east"}},
            {"subject": "alice", "action": "read", "expect": "allow", "fields": {"phone": "hidden"},
             "resource": {"type": "crm.customer", "owner": "alice", "department": "east"}},
        ],
    }
    results = run_tables(POLICY, {"t.yaml": table})
    assert [r.passed for r in results] == [False, False]
    assert "expected deny, got allow" in results[0].message
    assert "field phone: expected hidden, got visible" in results[1].message


def test_a_malformed_table_fails_instead_of_passing_silently() -> None:
    results = run_tables(POLICY, {"bad.yaml": {"cases": [{"subject": "x"}]}, "empty.yaml": {}})
    assert results and not any(r.passed for r in results)
