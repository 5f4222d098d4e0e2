"""What both pycasbin peers share: loading the lines, the custom functions, and the field question.

The enforcer is made exactly as ``app.authz.reference.build_reference`` makes it (same model text,
``scopeMatch``/``condMatch`` functions, ``keyMatch`` as the role manager's domain-matching function,
the grant edges active at the scenario time), except that the lines are loaded through an
in-memory adapter, as a file or database adapter would load them: ``build_reference`` adds them
with ``add_named_policies``, which is O(lines²) in pycasbin 2.8 (each rule is first looked up in
the list), minutes at the large size.

Only the grant edges of the subjects in ``scenario.probes`` are loaded.  For these subjects the
answers are the same (``g(sub, role, dom)`` follows only ``sub``'s own links and role-to-role
links), but it keeps the per-department role managers small: with every person holding
``employee`` at ``*``, stock pycasbin builds each department's role manager in O(people²) on its
first use (about 1 s at 1,000 people, hours at 100,000).  The departments of the sample are touched
at load (``warm``), so timed decisions measure the steady state.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

import casbin
from casbin import persist
from casbin.model import Model

from app.authz import reference
from app.authz.engine import GrantEdge
from app.authz.policy import Policy
from app.authz.rules import key_match, scope_match
from bench.engines import RANK
from bench.scenario import Probe, Scenario


class LinesAdapter(persist.Adapter):  # type: ignore[misc]
    """A read-only adapter serving policy lines from memory, one ``append`` per line."""

    def __init__(self, lines: dict[str, list[list[str]]]) -> None:
        self.lines = lines

    def load_policy(self, model: Model) -> None:
        """Append every line to its assertion (no duplicate check, like the file adapter)."""
        for ptype, rows in self.lines.items():
            policy = model.model[ptype[0]][ptype].policy
            for row in rows:
                policy.append(row)


def policy_lines(policy: Policy, grants: Iterable[GrantEdge], at: datetime,
                 subjects: Collection[str]) -> dict[str, list[list[str]]]:
    """The ``p``, ``p2`` and ``g`` lines ``build_reference`` would add, grant edges limited to ``subjects``."""
    g = {(i.role, i.parent, i.dom) for i in policy.inherits}
    g |= {(e.sub, e.role, e.dom) for e in grants if e.sub in subjects and e.active(at)}
    return {
        "p": [[r.role, r.dom, r.obj, r.act, r.scope, r.cond.source, r.eft] for r in policy.rules],
        "p2": [[f.role, f.dom, f.obj, f.act, f.field, f.scope, f.level] for f in policy.field_rules],
        "g": [list(t) for t in sorted(g)],
    }


def sample_lines(policy: Policy, scenario: Scenario) -> dict[str, list[list[str]]]:
    """``policy_lines`` for the subjects of the scenario's probes."""
    return policy_lines(policy, scenario.grants, scenario.at, {p.req.sub for p in scenario.probes})


def build(cls: type[casbin.Enforcer], model: Model, lines: dict[str, list[list[str]]], **kw: Any) -> Any:
    """An enforcer of class ``cls`` with the reference's functions and domain matching."""
    enforcer = cls(model, LinesAdapter(lines), **kw)
    enforcer.add_function("scopeMatch", scope_match)
    enforcer.add_function("condMatch", reference._cond_match)
    enforcer.add_named_domain_matching_func("g", key_match)
    return enforcer


def warm(enforcer: casbin.Enforcer, scenario: Scenario) -> None:
    """Build the role manager of every department the probes touch (pycasbin builds them lazily)."""
    rm = enforcer.get_role_manager()
    for dom in sorted({p.req.dom for p in scenario.probes}):
        rm.has_link("warmup:", "warmup:", dom)


def decide(enforcer: casbin.Enforcer, policy: Policy, probe: Probe) -> bool:
    """Record decision via ``m``; a field's level via ``m2`` asked per level, as the service resolves it."""
    req = probe.req
    allowed = reference.reference_decide(enforcer, req)
    if not probe.field or not allowed:
        return allowed
    rt = policy.resources.get(req.obj)
    if rt is None or probe.field not in rt.fields:
        return False  # unknown fields are hidden
    if probe.field not in policy.classification.get(req.obj, {}):
        return True  # known, unclassified fields are visible with the record
    fact = "write" if req.act in rt.write_actions else "read"
    for level in ("hidden", "visible", "masked"):  # a hidden rule beats all, then the most open level
        if reference.reference_field_has(enforcer, req, fact, probe.field, level):
            return RANK[level] >= RANK[probe.want]
    return False
