"""The list filter selects exactly the records single decisions allow, on the benchmark's small company
(1,000 people, 50 departments, every rule family of the model), read with SQL's three-valued logic."""

from __future__ import annotations

from functools import cache
from typing import Any

from app.authz.engine import Engine
from app.authz.filtering import compile_filter
from app.errors import Unsupported
from bench import scenario
from bench.engines import accessgov


@cache
def company() -> tuple[scenario.Scenario, Engine]:
    sc = scenario.generate("small", scenario.DEFAULT_SEED)
    return sc, accessgov.load(sc)


_OPS = {
    "eq": lambda a, b: a == b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "in": lambda a, b: a in b, "not_in": lambda a, b: a not in b,
}


def sql(cond: dict[str, Any] | None, row: dict[str, Any]) -> bool | None:
    """Evaluate a filter condition as SQL would: a missing column is NULL, comparisons with NULL are NULL."""
    if cond is None:
        return False
    if "or" in cond:
        parts = [sql(c, row) for c in cond["or"]]
        return True if True in parts else (None if None in parts else False)
    if "and" in cond:
        parts = [sql(c, row) for c in cond["and"]]
        return False if False in parts else (None if None in parts else True)
    if "not" in cond:
        inner = sql(cond["not"], row)
        return None if inner is None else not inner
    value = row.get(cond["field"].removeprefix("record."))
    if value is None:
        return None
    try:
        return bool(_OPS[cond["op"]](value, cond["value"]))
    except TypeError:  # SQL would refuse to compare; the row is not selected
        return None


def test_the_filter_agrees_with_decisions_on_the_scenario() -> None:
    sc, engine = company()
    departments = {path: path for path in set(sc.people.values())}
    filters: dict[tuple[str, str, str, str], dict[str, Any] | None] = {}
    compared = allowed = 0
    for probe in sc.probes[:6000]:
        req = probe.req
        if probe.field or req.sub not in sc.people:
            continue
        action = dict(req.attrs.get("action") or {})
        key = (req.sub, req.obj, req.act, repr(sorted(action.items())))
        if key not in filters:
            try:
                filters[key] = compile_filter(
                    engine, sub=req.sub, person_id=req.sub, home=sc.people[req.sub], obj=req.obj, act=req.act,
                    action_props=action, context={}, departments=departments, at=req.at)
            except Unsupported:
                filters[key] = None
        out = filters[key]
        if out is None or req.home != sc.people[req.sub]:
            continue
        row = {"department": req.dom, "owner": req.owner, **dict(req.attrs.get("record") or {})}
        selected = out["decision"] == "always" or (out["decision"] == "conditional" and sql(out["condition"], row))
        decision = engine.decide(req).allowed
        assert bool(selected) == decision, (req, out)
        compared += 1
        allowed += decision
    assert compared > 3000 and allowed > 500, (compared, allowed)
