"""The decision path does not scan every policy line: it touches only rules that can apply.

Counted, not timed: timing belongs in bench/.  A company with 2,000 departments, each with its
own copy of a rule template (as in the baseline study), must cost a decision the same number of
rule evaluations as a company with 20.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.authz import engine as engine_mod
from app.authz.engine import Engine, GrantEdge, Request
from app.authz.policy import parse_bundle, read_bundle

FILES = read_bundle(Path(__file__).resolve().parent.parent / "policies")
NOW = datetime.now(UTC)


def company(departments: int) -> Engine:
    extra = []
    for i in range(departments):
        dom = f"hq/r{i}/"
        extra += [f"p, sales, {dom}, crm.customer, read, all, -, allow",
                  f"p, sales_manager, {dom}, crm.customer, export, all, -, deny",
                  f"p, finance, {dom}, oa.expense, approve, all, record.amount <= {1000 + i}, allow"]
    files = dict(FILES) | {"rules.csv": FILES["rules.csv"] + "\n".join(extra) + "\n"}
    edges = [GrantEdge(f"user:u{i}", "sales", f"hq/r{i % departments}/") for i in range(departments * 5)]
    edges += [GrantEdge(f"user:u{i}", "employee", "*") for i in range(departments * 5)]
    return Engine(parse_bundle(files), edges)


def evaluations(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> int:
    calls = 0
    real = engine_mod.scope_match

    def counting(*args: object) -> bool:
        nonlocal calls
        calls += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_mod, "scope_match", counting)
    req = Request("user:u7", "hq/r7/", "crm.customer", "read", "user:u7", "hq/r7/",
                  {"record": {}, "action": {}, "context": {}}, NOW)
    assert engine.decide(req).allowed
    return calls


def test_rule_evaluations_per_decision_do_not_grow_with_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    small = evaluations(company(20), monkeypatch)
    large = evaluations(company(2000), monkeypatch)
    assert len(company(2000).policy.rules) > 6000
    assert small == large
    assert large <= 5
