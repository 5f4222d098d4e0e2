"""Effective permissions are complete: every rule that decides a request for a person is listed among
that person's effective permissions, under the grant and role that hold it (the pruning of rules that
cannot apply never drops one that does).  Checked on the benchmark's small company (1,000 people)."""

from __future__ import annotations

from functools import cache

from app.authz.engine import Engine
from app.authz.insight import effective_permissions
from bench import scenario
from bench.engines import accessgov


@cache
def company() -> tuple[scenario.Scenario, Engine]:
    sc = scenario.generate("small", scenario.DEFAULT_SEED)
    return sc, accessgov.load(sc)


def test_every_deciding_rule_is_an_effective_permission() -> None:
    sc, engine = company()
    listed: dict[str, set[tuple[str, int | None, str]]] = {}
    checked = {"allowed": 0, "explicit_deny": 0}
    for probe in sc.probes[:4000]:
        req = probe.req
        decision = engine.decide(req)
        if decision.rule is None or decision.hold is None:
            continue
        if req.sub not in listed:
            listed[req.sub] = {
                (rule_id, p["grant"]["id"], p["role"])
                for p in effective_permissions(engine, req.sub, req.home, sc.at) for rule_id in p["rules"]
            }
        hold = decision.hold
        assert (decision.rule.id, hold.grant.grant_id, hold.role) in listed[req.sub], (req, decision.rule.text)
        checked[decision.code] += 1
    assert checked["allowed"] > 500 and checked["explicit_deny"] > 20, checked


def test_entries_group_rules_by_what_they_permit() -> None:
    sc, engine = company()
    sub = next(iter(sc.people))
    perms = effective_permissions(engine, sub, sc.people[sub], sc.at)
    assert perms
    keys = [(p["grant"]["id"], p["role"], p["resource_type"], p["action"], p["effect"], p["scope"], p["condition"])
            for p in perms]
    assert len(keys) == len(set(keys)), "one entry per grant, role and shape"
    for p in perms:
        assert len(p["domains"]) == len(p["rules"]) > 0
