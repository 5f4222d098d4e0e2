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

from bisect import bisect_left
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
    """The filter for (subject, action, type); ``departments`` maps department id -> path.

    Cost: the subject's grants x the rule domains of (type, action) for the roles they hold, each
    rule resolved to departments by a range of the sorted paths (not a scan of every department).
    Clauses that differ only in their departments are merged into one.
    """
    if any(i.dom != "*" for i in engine.policy.inherits):
        raise Unsupported("role inheritance limited to some departments cannot be expressed as a filter")
    paths = _Paths(departments)
    index = engine._rules.get((obj, act))
    allows: dict[str, tuple[set[str], list[Cond], list[str]]] = {}
    denies: dict[str, tuple[set[str], list[Cond], list[str]]] = {}
    changes: list[datetime] = []
    for g in engine.grants_of(sub):
        if g.valid_until is not None and g.valid_until > at:
            changes.append(g.valid_until)
        if g.valid_from is not None and g.valid_from > at:
            changes.append(g.valid_from)
        if not g.active(at) or index is None:
            continue
        for role, _chain in engine._closure(g.role, ""):
            for bucket in (*index.prefix.values(), *index.exact.values()):
                for rule in bucket.get(role, ()):
                    found = _clause(rule, g.dom, person_id, home, paths, action_props, context)
                    if found is None:
                        continue
                    deps, terms = found
                    group = (denies if rule.eft == "deny" else allows).setdefault(repr(terms), (set(), terms, []))
                    group[0].update(deps)
                    group[2].append(rule.text)
    return _combine(_merge(allows), _merge(denies), frozenset(departments), min(changes) if changes else None)


class _Paths:
    """Department ids by path, and the sorted paths for prefix ranges."""

    def __init__(self, departments: Mapping[str, str]) -> None:
        self.ids: dict[str, list[str]] = {}
        for dep_id, path in departments.items():
            self.ids.setdefault(path, []).append(dep_id)
        self.sorted = sorted(self.ids)

    def matching(self, pattern: str) -> list[str]:
        """The paths a domain pattern covers (keyMatch with the ``*`` last)."""
        if not pattern.endswith("*"):
            return [pattern] if pattern in self.ids else []
        prefix = pattern[:-1]
        lo = bisect_left(self.sorted, prefix)
        hi = lo
        while hi < len(self.sorted) and self.sorted[hi].startswith(prefix):
            hi += 1
        return self.sorted[lo:hi]


def _narrowest(patterns: list[str]) -> str | None:
    """Of patterns that must all match, the one covering least (None if two cannot meet)."""
    best = patterns[0]
    for p in patterns[1:]:
        if key_match(_stem(p), best) or p == best:
            best = p  # p lies inside best
        elif not key_match(_stem(best), p):
            return None  # neither inside the other: disjoint
    return best


def _stem(pattern: str) -> str:
    return pattern[:-1] if pattern.endswith("*") else pattern


def _clause(
    rule: Rule, grant_dom: str, person_id: str, home: str, paths: _Paths,
    action_props: Mapping[str, Any], context: Mapping[str, Any],
) -> tuple[list[str], list[Cond]] | None:
    kind, listed = parse_scope(rule.scope)
    if kind in ("dept", "tree") and not home:
        return None
    scope_patterns = {"dept": [home], "tree": [home + "*"], "listed": list(listed)}.get(kind, ["*"])
    deps: set[str] = set()
    for sp in scope_patterns:
        narrowest = _narrowest([rule.dom, grant_dom, sp])
        if narrowest is None:
            continue
        for path in paths.matching(narrowest):
            if key_match(path, grant_dom) and key_match(path, rule.dom) and _in_scope(rule.scope, path, home):
                deps.update(paths.ids[path])
    if not deps:
        return None
    terms: list[Cond] = []
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
    return sorted(deps), terms


def _merge(groups: Mapping[str, tuple[set[str], list[Cond], list[str]]]) -> list[Cond]:
    """One clause per distinct set of non-department terms, over the union of their departments."""
    return [{"and": [{"field": "department", "op": "in", "value": sorted(deps)}, *terms], "rules": texts}
            for deps, terms, texts in groups.values()]


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
