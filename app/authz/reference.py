"""A stock ``casbin.Enforcer`` loaded with the same model and lines: the meaning the engine must keep.

Used by the differential tests and by ``accessgov policy test --reference``; never on the decision
path (it scans every line per request).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

import casbin
from casbin.model import Model

from app.authz.conditions import Condition, ConditionError, parse_condition
from app.authz.engine import GrantEdge, Request
from app.authz.policy import Policy
from app.authz.rules import key_match, scope_match


@lru_cache(maxsize=4096)
def _parsed(text: str) -> Condition:
    return parse_condition(text)


def _cond_match(cond: str, eft: str, attrs: Mapping[str, Any]) -> bool:
    condition = _parsed(cond)
    if condition.is_empty:
        return True
    try:
        return condition.evaluate(attrs)
    except ConditionError:
        return eft == "deny"


def build_reference(policy: Policy, grants: Iterable[GrantEdge], at: datetime) -> casbin.Enforcer:
    """A stock Enforcer with the policy lines and the grant edges active at ``at``."""
    model = Model()
    model.load_model_from_text(policy.files["model.conf"])
    enforcer = casbin.Enforcer(model)
    enforcer.add_function("scopeMatch", scope_match)
    enforcer.add_function("condMatch", _cond_match)
    # The domain-matching function is code, not model: forgetting it silently ignores every
    # subtree and company-wide grant.
    enforcer.add_named_domain_matching_func("g", key_match)
    p = [[r.role, r.dom, r.obj, r.act, r.scope, r.cond.source, r.eft] for r in policy.rules]
    p2 = [[f.role, f.dom, f.obj, f.act, f.field, f.scope, f.level] for f in policy.field_rules]
    g = {(i.role, i.parent, i.dom) for i in policy.inherits}
    g |= {(e.sub, e.role, e.dom) for e in grants if e.active(at)}
    if p:
        enforcer.add_named_policies("p", p)
    if p2:
        enforcer.add_named_policies("p2", p2)
    if g:
        enforcer.add_named_grouping_policies("g", [list(t) for t in sorted(g)])
    return enforcer


def reference_decide(enforcer: casbin.Enforcer, req: Request) -> bool:
    """Stock Casbin's allow/deny for a record request."""
    return bool(enforcer.enforce(req.sub, req.dom, req.obj, req.act, req.owner, req.home, req.attrs))


def reference_field_has(enforcer: casbin.Enforcer, req: Request, fact: str, name: str, level: str) -> bool:
    """Stock Casbin's answer to "does some p2 line grant ``level`` on this field?"."""
    ctx = enforcer.new_enforce_context("2")
    return bool(enforcer.enforce(ctx, req.sub, req.dom, req.obj, fact, name, req.owner, req.home, level))
