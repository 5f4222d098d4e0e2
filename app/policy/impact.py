"""What a policy change would do before it goes live: who gains and who loses which permission.

A candidate engine is built beside the live one from the changed policy: it holds only the grants
of the people affected and only the lines that can differ, so nothing live is touched and the cost
follows the change, not the company.  The people compared are those holding a role the
changed lines name (directly, or a role that inherits it); their effective permissions (the same
expansion ``/v1/people/{id}/effective-permissions`` answers with) are computed under the live and
the candidate policy, each narrowed to the lines of the shapes the change can alter, and compared.
People with the same grants and home department hold the same permissions, so each such group is
computed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from app.authz.directory import PersonView, State
from app.authz.engine import Engine, GrantEdge
from app.authz.insight import effective_permissions, meet, scope_reachable
from app.authz.policy import Policy, PolicyDelta
from app.authz.rules import FieldRule, Inherit, Rule, domain_prefixes

# (kind, resource type, action, effect or field level, data scope, condition, department pattern)
Key = tuple[str, ...]
LIMIT = 200


@dataclass(frozen=True, slots=True)
class ImpactRow:
    """One permission one person would gain or lose."""

    person_id: str
    name: str
    department_id: str | None
    kind: str  # "rule" (p lines) or "field" (p2 lines)
    resource_type: str
    action: str  # the action, or "read:phone" for a field
    effect: str  # allow / deny, or the field's level
    scope: str
    condition: str
    area: str  # the department pattern where it applies (the narrower of the rule's and the grant's)
    role: str  # a role it comes through

    @property
    def system(self) -> str:
        """The source system of the resource type (``crm.customer`` -> ``crm``)."""
        return self.resource_type.split(".", 1)[0]


@dataclass(frozen=True)
class Impact:
    """Gains and losses of one candidate policy against the live one (rows capped, totals exact)."""

    gains: list[ImpactRow]
    losses: list[ImpactRow]
    gains_total: int
    losses_total: int
    people_checked: int
    people_gaining: int
    people_losing: int
    roles: tuple[str, ...]  # roles the changed lines name
    counts: Mapping[str, int]  # lines changed, by kind

    @property
    def truncated(self) -> bool:
        """Whether some rows were left out."""
        return len(self.gains) < self.gains_total or len(self.losses) < self.losses_total


def delta_between(old: Policy, new: Policy) -> PolicyDelta:
    """The lines that differ between two whole policies (an import or a rollback)."""
    old_lines, new_lines = old.lines, new.lines
    return PolicyDelta(
        rules_added=tuple(r for t, r in new_lines.items() if t not in old_lines and isinstance(r, Rule)),
        rules_removed=tuple(r for t, r in old_lines.items() if t not in new_lines and isinstance(r, Rule)),
        field_rules_added=tuple(r for t, r in new_lines.items() if t not in old_lines and isinstance(r, FieldRule)),
        field_rules_removed=tuple(r for t, r in old_lines.items()
                                  if t not in new_lines and isinstance(r, FieldRule)),
        inherits_added=tuple(i for i in new.inherits if i not in set(old.inherits)),
        inherits_removed=tuple(i for i in old.inherits if i not in set(new.inherits)),
    )


def touched_roles(delta: PolicyDelta) -> set[str]:
    """Roles a change names: of its rules and field rules, and the inheriting side of its ``g`` lines."""
    items: Iterable[Rule | FieldRule | Inherit] = (
        *delta.rules_added, *delta.rules_removed, *delta.field_rules_added, *delta.field_rules_removed,
        *delta.inherits_added, *delta.inherits_removed)
    return {i.role for i in items}


def policy_impact(state: State, new: Policy, delta: PolicyDelta, *, at: datetime | None = None,
                  limit: int = LIMIT) -> Impact:
    """Who gains and who loses what if ``new`` (``delta`` away from the live policy) went live."""
    at = at or datetime.now(UTC)
    old, live = state.engine.policy, state.engine
    inherits = (*old.inherits, *new.inherits)  # either side's inheritance can carry the change
    touched = touched_roles(delta)
    groups = _groups(live, state.directory.people, _below(touched, inherits), at)
    reps = {sig: members[0] for sig, members in groups.items()}
    edges = [g for person in reps.values() for g in live.grants_of(person.sub)]
    needed, shapes = _above({g.role for g in edges}, inherits), _shapes(old, new, delta, inherits)
    (was, was_fields), (will, will_fields) = (_restricted(p, needed, shapes, edges) for p in (old, new))
    changed: list[tuple[PersonView, list[tuple[Key, str]], list[tuple[Key, str]]]] = []
    for sig, rep in reps.items():
        before, after = _permissions(was, was_fields, rep, at), _permissions(will, will_fields, rep, at)
        # What comes (goes) counts only where neither side holds it as widely already (any more).
        came = [(k, after[k], _widens(k, added=True)) for k in after.keys() - before.keys()
                if not _covers(before, k) and not _covers(after, k)]
        went = [(k, before[k], _widens(k, added=False)) for k in before.keys() - after.keys()
                if not _covers(after, k) and not _covers(before, k)]
        gains = sorted((k, role) for k, role, wider in (*came, *went) if wider)
        losses = sorted((k, role) for k, role, wider in (*came, *went) if not wider)
        if gains or losses:
            changed.extend((person, gains, losses) for person in groups[sig])
    changed.sort(key=lambda c: c[0].id)
    return Impact(
        gains=_rows(((p, g) for p, g, _ in changed), limit), losses=_rows(((p, lo) for p, _, lo in changed), limit),
        gains_total=sum(len(g) for _, g, _ in changed), losses_total=sum(len(lo) for _, _, lo in changed),
        people_checked=sum(len(m) for m in groups.values()), people_gaining=sum(1 for _, g, _ in changed if g),
        people_losing=sum(1 for _, _, lo in changed if lo), roles=tuple(sorted(touched)), counts=delta.counts())


def _widens(key: Key, *, added: bool) -> bool:
    """Whether a line appearing (``added``) or going away gives access: an allow or a visible field added,
    a deny or a hidden field removed."""
    restrictive = key[3] in ("deny", "hidden")
    return restrictive != added


def _groups(engine: Engine, people: Mapping[str, PersonView], affected: set[str],
            at: datetime) -> dict[tuple[object, ...], list[PersonView]]:
    """Active people holding an affected role now, grouped by (home, active grants)."""
    out: dict[tuple[object, ...], list[PersonView]] = {}
    for sub in engine.subjects():
        edges = [g for g in engine.grants_of(sub) if g.active(at)]
        if not any(g.role in affected for g in edges):
            continue
        person = people.get(sub.removeprefix("user:"))
        if person is None or person.status != "active":  # inactive people hold no permissions
            continue
        sig = (person.home, tuple(sorted({(g.role, g.dom) for g in edges})))
        out.setdefault(sig, []).append(person)
    return out


def _shapes(old: Policy, new: Policy, delta: PolicyDelta, inherits: Iterable[Inherit]) -> set[tuple[str, ...]]:
    """What a permission must be (all of its key but the department) for the change to alter it: the changed
    lines', and for an inheritance change every line of the roles whose reach it changes."""
    out: set[tuple[str, ...]] = {("rule", *r.shape) for r in (*delta.rules_added, *delta.rules_removed)}
    out |= {_field_shape(f) for f in (*delta.field_rules_added, *delta.field_rules_removed)}
    changed = (*delta.inherits_added, *delta.inherits_removed)
    if changed:
        roles = _reach_changed(old, new, changed) if all(i.dom == "*" for i in inherits) else _above(
            {i.parent for i in changed}, inherits)
        for policy in (old, new):
            out |= {("rule", *r.shape) for r in policy.rules if r.role in roles}
            out |= {_field_shape(f) for f in policy.field_rules if f.role in roles}
    # An unconditional ``all`` of the same kind may cover them (see _covers): it must be on both sides too.
    return out | {(k, obj, act, eft, "all", "-" if k == "rule" else "") for k, obj, act, eft, _s, _c in out}


def _reach_changed(old: Policy, new: Policy, changed: Iterable[Inherit]) -> set[str]:
    """Roles some holder may reach on one side only, when every inheritance is company-wide.

    A role newly reached by anyone is newly reached from the inheriting side of the first added line on
    its path (the path before it is old), and likewise for a removed line: the roles above each changed
    line's role that differ between the two sides.
    """
    out: set[str] = set()
    for role in {i.role for i in changed}:
        out |= _above({role}, old.inherits) ^ _above({role}, new.inherits)
    return out


def _restricted(policy: Policy, roles: set[str], shapes: set[tuple[str, ...]],
                edges: list[GrantEdge]) -> tuple[Engine, dict[str, list[FieldRule]]]:
    """An engine of the people compared and only the lines that can differ: a permission of another shape
    is the same on both sides, and cannot cover one of these shapes either."""
    rules = tuple(r for r in policy.rules if r.role in roles and ("rule", *r.shape) in shapes)
    fields = tuple(f for f in policy.field_rules if f.role in roles and _field_shape(f) in shapes)
    by_role: dict[str, list[FieldRule]] = {}
    for fr in fields:
        by_role.setdefault(fr.role, []).append(fr)
    return Engine(replace(policy, rules=rules, field_rules=fields), edges, "impact"), by_role


def _field_shape(fr: FieldRule) -> tuple[str, ...]:
    return ("field", fr.obj, f"{fr.act}:{fr.field}", fr.level, fr.scope, "")


def _permissions(engine: Engine, fields: Mapping[str, list[FieldRule]], person: PersonView,
                 at: datetime) -> dict[Key, str]:
    """A person's permissions as keys, each with one role it comes through."""
    out: dict[Key, str] = {}
    for p in effective_permissions(engine, person.sub, person.home, at):
        for dom in p["domains"]:
            key = ("rule", p["resource_type"], p["action"], p["effect"], p["scope"], p["condition"],
                   _narrower(dom, p["held_in"]))
            out.setdefault(key, p["role"])
    for g in engine.grants_of(person.sub):
        if not g.active(at):
            continue
        base = g.dom[:-1] if g.dom.endswith("*") else g.dom
        for role, _chain in engine.closure(g.role, base):  # as effective_permissions walks it
            for fr in fields.get(role, ()):
                if meet(fr.dom, g.dom) and scope_reachable(fr.scope, fr.dom, g.dom, person.home):
                    out.setdefault((*_field_shape(fr), _narrower(fr.dom, g.dom)), role)
    return out


def _covers(side: Mapping[Key, str], key: Key) -> bool:
    """Whether ``side`` holds ``key``'s permission as widely by another key: the same (or an unconditional
    ``all``) scope, in the same department pattern or one covering it (held company-wide and in the east: the
    east adds nothing)."""
    kind, obj, act, effect, scope, cond, area = key
    base = area[:-1] if area.endswith("*") else area
    areas = {area, *(p + "*" for p in domain_prefixes(base))}
    ways = {(scope, cond), ("all", "-" if kind == "rule" else "")}
    return any(other != key and other in side
               for other in ((kind, obj, act, effect, s, c, a) for s, c in ways for a in areas))


def _rows(items: Iterable[tuple[PersonView, list[tuple[Key, str]]]], limit: int) -> list[ImpactRow]:
    out: list[ImpactRow] = []
    for person, keys in items:
        for (kind, obj, act, effect, scope, cond, area), role in keys:
            if len(out) >= limit:
                return out
            out.append(ImpactRow(person.id, person.name, person.department_id, kind, obj, act, effect, scope,
                                 cond, area, role))
    return out


def _narrower(a: str, b: str) -> str:
    """The narrower of two domain patterns that meet (patterns form a tree)."""
    if a == b or b == "*":
        return a
    if a == "*" or (a.endswith("*") and b.startswith(a[:-1])):
        return b
    return a


def _below(roles: set[str], inherits: Iterable[Inherit]) -> set[str]:
    """The roles and every role inheriting them (in any department: over-counting only costs time)."""
    children: dict[str, set[str]] = {}
    for i in inherits:
        children.setdefault(i.parent, set()).add(i.role)
    return _walk(roles, children)


def _above(roles: set[str], inherits: Iterable[Inherit]) -> set[str]:
    """The roles and every role they inherit."""
    parents: dict[str, set[str]] = {}
    for i in inherits:
        parents.setdefault(i.role, set()).add(i.parent)
    return _walk(roles, parents)


def _walk(start: set[str], edges: Mapping[str, set[str]]) -> set[str]:
    seen, frontier = set(start), list(start)
    while frontier:
        for nxt in edges.get(frontier.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen


__all__ = ["Impact", "ImpactRow", "delta_between", "policy_impact", "touched_roles"]
