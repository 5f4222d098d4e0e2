"""List-page filters: for a subject, an action and a type, which records would be allowed?

The answer is ``always``, ``never`` or a condition over the record's ``department`` (as sets of
department ids), ``owner`` and ``record.<property>`` comparisons that a CRM can turn into its own
SQL.  Action and context conditions are evaluated now from the properties the caller gives.
What cannot be expressed (nested properties, domain-specific inheritance) raises
:class:`Unsupported`: a filter is refused, never silently widened or narrowed.

Doubt keeps its meaning in SQL's three-valued logic: an allow clause on a NULL column is not
true (row excluded) and ``NOT`` of a deny clause on a NULL column is not true (row excluded).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.authz.conditions import Clause, ConditionError
from app.authz.engine import Engine
from app.authz.rules import Rule, key_match, parse_scope
from app.errors import Unsupported

Cond = dict[str, Any]


def compile_filter(
    engine: Engine, *, sub: str, person_id: str, home: str, obj: str, act: str,
    action_props: Mapping[str, Any], context: Mapping[str, Any], departments: Mapping[str, str], at: datetime,
) -> dict[str, Any]:
    """The filter for (subject, action, type); ``departments`` maps department id -> path."""
    if any(i.dom != "*" for i in engine.policy.inherits):
        raise Unsupported("role inheritance limited to some departments cannot be expressed as a filter")
    all_ids = frozenset(departments)
    allows: list[Cond] = []
    denies: list[Cond] = []
    changes: list[datetime] = []
    for g in engine.grants_of(sub):
        if g.valid_until is not None and g.valid_until > at:
            changes.append(g.valid_until)
        if g.valid_from is not None and g.valid_from > at:
            changes.append(g.valid_from)
        if not g.active(at):
            continue
        for role, _chain in engine._closure(g.role, ""):
            for rule in engine.rules_for(obj, act):
                if rule.role != role:
                    continue
                clause = _clause(rule, g.dom, person_id, home, departments, action_props, context)
                if clause is not None:
                    (denies if rule.eft == "deny" else allows).append(clause)
    return _combine(allows, denies, all_ids, min(changes) if changes else None)


def _clause(
    rule: Rule, grant_dom: str, person_id: str, home: str, departments: Mapping[str, str],
    action_props: Mapping[str, Any], context: Mapping[str, Any],
) -> Cond | None:
    deps = {d for d, path in departments.items()
            if key_match(path, grant_dom) and key_match(path, rule.dom) and _in_scope(rule.scope, path, home)}
    if not deps:
        return None
    terms: list[Cond] = [{"field": "department", "op": "in", "value": sorted(deps)}]
    if rule.scope == "own":
        terms.append({"field": "owner", "op": "eq", "value": person_id})
    static = {"action": dict(action_props), "context": dict(context)}
    for c in rule.cond.clauses:
        if c.path[0] == "record":
            if len(c.path) != 2:
                raise Unsupported(f"nested property {'.'.join(c.path)} cannot be expressed as a filter")
            terms.append({"field": ".".join(c.path), "op": c.op, "value": _json(c.value)})
        elif not _static_true(c, static, rule.eft):
            return None
    return {"and": terms, "rule": rule.text}


def _in_scope(scope: str, path: str, home: str) -> bool:
    kind, listed = parse_scope(scope)
    if kind in ("all", "own"):
        return True
    if kind == "dept":
        return home != "" and path == home
    if kind == "tree":
        return home != "" and path.startswith(home)
    return any(key_match(path, p) for p in listed)


def _static_true(clause: Clause, attrs: Mapping[str, Any], eft: str) -> bool:
    from app.authz.conditions import Condition

    try:
        return Condition("", (clause,)).evaluate(attrs)
    except ConditionError:
        return eft == "deny"  # doubt: a deny rule applies, an allow rule does not


def _json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _combine(allows: list[Cond], denies: list[Cond], all_ids: frozenset[str], until: datetime | None) -> dict[str, Any]:
    out: dict[str, Any] = {"valid_until": until.isoformat() if until else None}
    if not allows:
        return out | {"decision": "never", "condition": None}
    unconditional = [a for a in allows if len(a["and"]) == 1 and set(a["and"][0]["value"]) == all_ids]
    if unconditional and not denies:
        return out | {"decision": "always", "condition": {"field": "department", "op": "in",
                                                          "value": sorted(all_ids)}}
    condition: Cond = {"or": allows}
    if denies:
        condition = {"and": [condition, *({"not": d} for d in denies)]}
    return out | {"decision": "conditional", "condition": condition}
