"""The compiled decision engine: Casbin's meaning for ``policies/model.conf``, without the scan.

Stock pycasbin evaluates the matcher against every policy line per request.  Here the same lines
are compiled into hash maps keyed by (type, action) -> domain or domain prefix -> role, so a
decision touches only the subject's own grants, the few domain keys of the record's department
and the rules of the roles the subject holds there.  ``tests/test_differential.py`` checks every
answer against a stock ``casbin.Enforcer`` loaded with the same model and lines.

Changes are applied in place, copy-on-write: a writer (one at a time, under the state holder's
lock) builds a new list for the one bucket it touches and swaps it in with a single assignment,
so readers never lock and never see a half-applied change to a bucket.  Adding or revoking a grant
touches one subject's list; adding or removing a rule touches one (type, action, domain, role)
bucket.  Nothing is rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.authz.conditions import ConditionError
from app.authz.policy import Policy, PolicyDelta
from app.authz.rules import FieldRule, Rule, domain_prefixes, pattern_key, scope_match

MAX_INHERIT_HOPS = 8  # Casbin stops after 10 levels counting the user and the granted role.
_MEMO_LIMIT = 50_000
_MERGED_LIMIT = 8_192  # departments remembered per (type, action): 2,000 at the benchmark's large size


@dataclass(frozen=True, slots=True)
class GrantEdge:
    """A role held by a person in a domain pattern, from a grant or a delegation, with its window."""

    sub: str
    role: str
    dom: str
    grant_id: int | None = None
    source: str = "manual"
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    delegated_from: str | None = None

    def active(self, at: datetime) -> bool:
        """In force at ``at`` (from inclusive, until exclusive)."""
        if self.valid_from is not None and at < self.valid_from:
            return False
        return self.valid_until is None or at < self.valid_until


@dataclass(slots=True)  # built per request: not frozen (frozen init is several times slower)
class Request:
    """One record-level question, already resolved through the directory."""

    sub: str
    dom: str
    obj: str
    act: str
    owner: str
    home: str
    attrs: Mapping[str, Any]
    at: datetime


@dataclass(slots=True)
class RoleHold:
    """How a subject holds a role in a domain: the grant and the inheritance chain from it."""

    role: str
    grant: GrantEdge
    chain: tuple[str, ...]


@dataclass(slots=True)
class Decision:
    """The engine's answer; ``code`` says why in one word (not frozen: built on every request)."""

    allowed: bool
    code: str
    rule: Rule | None = None
    hold: RoleHold | None = None
    fields: dict[str, str] | None = None


Bucket = dict[str, list[Any]]
_PREFIXES: dict[str, list[str]] = {}


def _prefixes(dom: str) -> list[str]:
    """``domain_prefixes``, remembered (one entry per department path seen; bounded)."""
    found = _PREFIXES.get(dom)
    if found is None:
        if len(_PREFIXES) >= _MEMO_LIMIT:
            _PREFIXES.clear()
        found = _PREFIXES[dom] = domain_prefixes(dom)
    return found


class _DomainIndex:
    """Lines keyed by an exact domain or a domain prefix, then by role.

    ``merged(dom)`` is what a decision reads: for one department, every line of every pattern that
    covers it, by role, remembered per department (bounded; replaced by an empty memo after any
    change to this index, so readers never see a merge of lines that no longer exist).
    """

    __slots__ = ("exact", "memo", "prefix")

    def __init__(self) -> None:
        self.exact: dict[str, Bucket] = {}
        self.prefix: dict[str, Bucket] = {}
        self.memo: dict[str, dict[str, tuple[Any, ...]]] = {}

    def merged(self, dom: str) -> dict[str, tuple[Any, ...]]:
        memo = self.memo
        found = memo.get(dom)
        if found is None:
            found = {}
            for bucket in self.buckets(dom):
                for role, lines in bucket.items():
                    found[role] = (*found.get(role, ()), *lines)
            if len(memo) >= _MERGED_LIMIT:
                memo.clear()
            memo[dom] = found
        return found

    def add(self, dom: str, role: str, line: Any, *, bulk: bool = False) -> None:
        is_prefix, key = pattern_key(dom)
        table = self.prefix if is_prefix else self.exact
        bucket = table.get(key)
        if bucket is None:
            table[key] = {role: [line]}
        elif bulk:
            bucket.setdefault(role, []).append(line)
        else:
            bucket[role] = [*bucket.get(role, ()), line]
        self.memo = {}

    def remove(self, dom: str, role: str, line: Any) -> bool:
        is_prefix, key = pattern_key(dom)
        bucket = (self.prefix if is_prefix else self.exact).get(key)
        if bucket is None or line not in bucket.get(role, ()):
            return False
        kept = [x for x in bucket[role] if x != line]  # equality ignores the line number
        if kept:
            bucket[role] = kept
        else:
            bucket.pop(role, None)
        self.memo = {}
        return True

    def buckets(self, dom: str) -> list[Bucket]:
        prefix = self.prefix
        out = [b for k in _prefixes(dom) if (b := prefix.get(k)) is not None]
        exact = self.exact.get(dom)
        if exact is not None:
            out.append(exact)
        return out


class Engine:
    """Decisions, field visibility and role resolution over one policy and one set of grants."""

    def __init__(self, policy: Policy, grants: Iterable[GrantEdge], version: str = "0") -> None:
        self.policy = policy
        self.version = version
        self._rules: dict[tuple[str, str], _DomainIndex] = {}
        self._field_rules: dict[tuple[str, str, str], _DomainIndex] = {}
        self._inherit = _DomainIndex()
        self._grants: dict[str, list[GrantEdge]] = {}
        self._closure_memo: dict[tuple[str, str], tuple[tuple[str, tuple[str, ...]], ...]] = {}
        self._grant_subs: dict[int, set[str]] = {}  # writer-side index: grant id -> subjects with an edge
        self._by_role: dict[str, dict[tuple[str, ...], list[Rule]]] = {}  # role -> rule shape -> rules
        self._by_role_dom: dict[str, dict[str, list[Rule]]] = {}  # role -> rule domain -> rules
        for r in policy.rules:
            self._rules.setdefault((r.obj, r.act), _DomainIndex()).add(r.dom, r.role, r, bulk=True)
            self._by_role.setdefault(r.role, {}).setdefault(r.shape, []).append(r)
            self._by_role_dom.setdefault(r.role, {}).setdefault(r.dom, []).append(r)
        for fr in policy.field_rules:
            self._field_rules.setdefault((fr.obj, fr.act, fr.field), _DomainIndex()).add(
                fr.dom, fr.role, fr, bulk=True)
        for inh in policy.inherits:
            self._inherit.add(inh.dom, inh.role, inh.parent, bulk=True)
        self._inherit_global = all(i.dom == "*" for i in policy.inherits)
        for g in grants:
            self._grants.setdefault(g.sub, []).append(g)
            if g.grant_id is not None:
                self._grant_subs.setdefault(g.grant_id, set()).add(g.sub)

    # -- incremental change (one writer at a time: the caller holds the state holder's lock) ---

    def add_grant(self, edge: GrantEdge) -> None:
        """Make one grant edge count from now on."""
        self._grants[edge.sub] = [*self._grants.get(edge.sub, ()), edge]
        if edge.grant_id is not None:
            self._grant_subs.setdefault(edge.grant_id, set()).add(edge.sub)

    def remove_grant(self, grant_id: int) -> int:
        """Drop every edge of a grant: the holder's and any deputy's delegated copy."""
        removed = 0
        for sub in self._grant_subs.pop(grant_id, set()):
            old = self._grants.get(sub, [])
            kept = [g for g in old if g.grant_id != grant_id]
            removed += len(old) - len(kept)
            if kept:
                self._grants[sub] = kept
            else:
                self._grants.pop(sub, None)
        return removed

    def apply_delta(self, delta: PolicyDelta, new: Policy) -> dict[str, int]:
        """Move to ``new`` (made by ``edit_policy`` from this engine's policy) by applying only ``delta``."""
        for r in delta.rules_removed:
            self._remove_rule(r)
        for r in delta.rules_added:
            self._add_rule(r)
        for fr in delta.field_rules_removed:
            self._field_rules[(fr.obj, fr.act, fr.field)].remove(fr.dom, fr.role, fr)
        for fr in delta.field_rules_added:
            self._field_rules.setdefault((fr.obj, fr.act, fr.field), _DomainIndex()).add(fr.dom, fr.role, fr)
        if delta.inherits_added or delta.inherits_removed:
            self._set_inherits(new)
        self.policy = new
        return delta.counts()

    def apply_policy(self, new: Policy) -> dict[str, int]:
        """Move to any new policy (an import or a rollback) by applying only the lines that differ."""
        old = self.policy
        old_rules, new_rules = old.lines, new.lines
        delta = PolicyDelta(
            rules_added=tuple(r for t, r in new_rules.items() if t not in old_rules and isinstance(r, Rule)),
            rules_removed=tuple(r for t, r in old_rules.items() if t not in new_rules and isinstance(r, Rule)),
            field_rules_added=tuple(
                r for t, r in new_rules.items() if t not in old_rules and isinstance(r, FieldRule)),
            field_rules_removed=tuple(
                r for t, r in old_rules.items() if t not in new_rules and isinstance(r, FieldRule)),
            inherits_added=tuple(set(new.inherits) - set(old.inherits)),
            inherits_removed=tuple(set(old.inherits) - set(new.inherits)),
        )
        return self.apply_delta(delta, new)

    def _add_rule(self, r: Rule) -> None:
        self._rules.setdefault((r.obj, r.act), _DomainIndex()).add(r.dom, r.role, r)
        shapes = self._by_role.setdefault(r.role, {})
        shapes[r.shape] = [*shapes.get(r.shape, ()), r]
        doms = self._by_role_dom.setdefault(r.role, {})
        doms[r.dom] = [*doms.get(r.dom, ()), r]

    def _remove_rule(self, r: Rule) -> None:
        index = self._rules.get((r.obj, r.act))
        if index is not None:
            index.remove(r.dom, r.role, r)
        _drop(self._by_role.get(r.role, {}), r.shape, r)
        _drop(self._by_role_dom.get(r.role, {}), r.dom, r)

    def _set_inherits(self, policy: Policy) -> None:
        inherit = _DomainIndex()
        for inh in policy.inherits:
            inherit.add(inh.dom, inh.role, inh.parent, bulk=True)
        self._inherit_global = all(i.dom == "*" for i in policy.inherits)
        self._inherit, self._closure_memo = inherit, {}

    # -- roles ---------------------------------------------------------------------------------

    def grants_of(self, sub: str) -> list[GrantEdge]:
        """Every grant edge of a subject, active or not."""
        return list(self._grants.get(sub, ()))

    def holds(self, sub: str, dom: str, at: datetime) -> dict[str, RoleHold]:
        """Roles ``sub`` holds for a record in ``dom`` at ``at``, each with one path that grants it."""
        return {role: RoleHold(role, g, chain) for role, (g, chain) in self._held(sub, dom, at).items()}

    def _held(self, sub: str, dom: str, at: datetime) -> dict[str, tuple[GrantEdge, tuple[str, ...]]]:
        # The hot path: plain tuples, the grant's domain test inlined (keyMatch with a trailing
        # "*" is a prefix test), validity windows checked without a method call.
        out: dict[str, tuple[GrantEdge, tuple[str, ...]]] = {}
        for g in self._grants.get(sub, ()):
            gdom = g.dom
            if gdom[-1] == "*":
                if not dom.startswith(gdom[:-1]):
                    continue
            elif dom != gdom:
                continue
            if (g.valid_from is not None and at < g.valid_from) or (g.valid_until is not None and at >= g.valid_until):
                continue
            for role, chain in self._closure(g.role, dom):
                if role not in out:
                    out[role] = (g, chain)
        return out

    def _held_memo(self, req: Request,
                   memo: dict[tuple[str, str], Any]) -> dict[str, tuple[GrantEdge, tuple[str, ...]]]:
        key = (req.sub, req.dom)
        held = memo.get(key)
        if held is None:
            held = memo[key] = self._held(req.sub, req.dom, req.at)
        return held

    def closure(self, role: str, dom: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The roles ``role`` gives in ``dom`` (itself first), each with the inheritance chain to it."""
        return self._closure(role, dom)

    def _closure(self, role: str, dom: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        # When every inheritance line is company-wide the closure does not depend on the domain.
        key = (role, "*" if self._inherit_global else dom)
        memo = self._closure_memo.get(key)
        if memo is not None:
            return memo
        buckets = self._inherit.buckets(dom)
        seen: dict[str, tuple[str, ...]] = {role: (role,)}
        frontier = [role]
        for _ in range(MAX_INHERIT_HOPS):
            nxt = []
            for r in frontier:
                for b in buckets:
                    for parent in b.get(r, ()):
                        if parent not in seen:
                            seen[parent] = (*seen[r], parent)
                            nxt.append(parent)
            if not nxt:
                break
            frontier = nxt
        result = tuple(seen.items())
        if len(self._closure_memo) >= _MEMO_LIMIT:
            self._closure_memo.clear()  # bounded: the memo never outgrows the limit
        self._closure_memo[key] = result
        return result

    # -- decisions -----------------------------------------------------------------------------

    def decide(self, req: Request, memo: dict[tuple[str, str], Any] | None = None) -> Decision:
        """Allow only if some allow rule matches and no deny rule does (deny beats every allow).

        ``memo``: a dict that lives as long as one batch of requests sharing one ``at`` (the service's
        requests read the clock once): the roles a subject holds in a department are found once per batch.
        """
        index = self._rules.get((req.obj, req.act))
        if index is None:
            return Decision(False, "no_matching_rule")
        held = self._held(req.sub, req.dom, req.at) if memo is None else self._held_memo(req, memo)
        if not held:
            return Decision(False, "no_role_here")
        allow: tuple[Rule, str] | None = None
        merged = index.merged(req.dom)
        for role in held:
            for rule in merged.get(role, ()):
                scope = rule.scope  # "all" and "own" inline; the rest through scope_match
                if scope != "all":
                    if scope == "own":
                        if req.owner == "" or req.owner != req.sub:
                            continue
                    elif not scope_match(scope, req.sub, req.owner, req.dom, req.home):
                        continue
                if rule.cond.clauses and not cond_match(rule, req.attrs):
                    continue
                if rule.eft == "deny":
                    return Decision(False, "explicit_deny", rule, RoleHold(role, *held[role]))
                if allow is None:
                    allow = (rule, role)
        if allow is None:
            return Decision(False, "no_matching_rule")
        rule, role = allow
        return Decision(True, "allowed", rule, RoleHold(role, *held[role]))

    # -- fields --------------------------------------------------------------------------------

    def field_act(self, obj: str, act: str) -> str:
        """Field rules for create/update-like actions are ``write`` rules; all others ``read``."""
        rt = self.policy.resources.get(obj)
        return "write" if rt is not None and act in rt.write_actions else "read"

    def field_levels(self, req: Request, fields: Iterable[str], allowed: bool,
                     memo: dict[tuple[str, str], Any] | None = None) -> dict[str, str]:
        """Visibility of each asked field: hidden unless the record is allowed and a rule says more
        (``memo`` as for ``decide``)."""
        out: dict[str, str] = {}
        rt = self.policy.resources.get(req.obj)
        classified = self.policy.classification.get(req.obj, {})
        fact = self.field_act(req.obj, req.act)
        holds: Mapping[str, Any] = {}
        if allowed:
            holds = self._held(req.sub, req.dom, req.at) if memo is None else self._held_memo(req, memo)
        for name in fields:
            if not allowed or rt is None or name not in rt.fields:
                out[name] = "hidden"
            elif name not in classified:
                out[name] = "visible"
            else:
                out[name] = self._field_level(req, fact, name, holds)
        return out

    def field_level_has(self, req: Request, fact: str, name: str, level: str) -> bool:
        """Does any ``p2`` line grant exactly ``level`` for this field (the reference's m2 question)?"""
        return bool(self._field_matches(req, fact, name, self._held(req.sub, req.dom, req.at)).get(level))

    def _field_level(self, req: Request, fact: str, name: str, holds: Mapping[str, Any]) -> str:
        found = self._field_matches(req, fact, name, holds)
        for level in ("hidden", "visible", "masked"):
            if found.get(level):
                return level
        return "hidden"

    def _field_matches(
        self, req: Request, fact: str, name: str, holds: Mapping[str, Any]
    ) -> dict[str, bool]:
        index = self._field_rules.get((req.obj, fact, name))
        found: dict[str, bool] = {}
        if index is None:
            return found
        merged = index.merged(req.dom)
        for role in holds:
            for fr in merged.get(role, ()):
                if scope_match(fr.scope, req.sub, req.owner, req.dom, req.home):
                    found[fr.level] = True
        return found

    # -- introspection used by explain / effective permissions / filters -----------------------

    def rules_for(self, obj: str, act: str, dom: str | None = None) -> list[Rule]:
        """Rules about (type, action) in file order: all of them, or those that can apply in ``dom``."""
        index = self._rules.get((obj, act))
        if index is None:
            return []
        buckets = index.buckets(dom) if dom is not None else [*index.prefix.values(), *index.exact.values()]
        return sorted((r for b in buckets for lines in b.values() for r in lines), key=lambda r: r.line)

    def rules_of_role(self, role: str) -> Mapping[tuple[str, ...], list[Rule]]:
        """A role's rules by shape (type, action, effect, scope, condition): a read-only view of the index."""
        return self._by_role.get(role, {})

    def rules_of_role_by_domain(self, role: str) -> Mapping[str, list[Rule]]:
        """A role's rules by rule domain pattern: a read-only view of the index."""
        return self._by_role_dom.get(role, {})

    def lines_near(self, paths: Iterable[str]) -> tuple[list[Rule], list[FieldRule]]:
        """The ``p`` and ``p2`` lines that can apply to records in any of ``paths``, in file order."""
        paths = list(paths)
        rules = {id(r): r for index in self._rules.values() for p in paths for b in index.buckets(p)
                 for lines in b.values() for r in lines}
        fields = {id(f): f for index in self._field_rules.values() for p in paths for b in index.buckets(p)
                  for lines in b.values() for f in lines}
        return sorted(rules.values(), key=lambda r: r.line), sorted(fields.values(), key=lambda f: f.line)

    def subjects(self) -> list[str]:
        """Every subject that holds any grant edge."""
        return sorted(self._grants)


def _drop(lists: dict[Any, list[Rule]], key: Any, rule: Rule) -> None:
    """Copy-on-write removal of ``rule`` from ``lists[key]`` (the key goes when its list empties)."""
    kept = [x for x in lists.get(key, ()) if x != rule]
    if kept:
        lists[key] = kept
    else:
        lists.pop(key, None)


def cond_match(rule: Rule | str, attrs: Mapping[str, Any]) -> bool:
    """Evaluate a rule's condition; doubt means "matches" for deny rules and "no match" for allows."""
    assert isinstance(rule, Rule)
    if rule.cond.is_empty:
        return True
    try:
        return rule.cond.evaluate(attrs)
    except ConditionError:
        return rule.eft == "deny"
