"""Why: the explanation of one decision, and a person's effective permissions with their paths."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from app.authz.conditions import ConditionError
from app.authz.engine import Engine, GrantEdge, Request
from app.authz.rules import Rule, key_match, parse_scope, scope_match


def grant_info(g: GrantEdge) -> dict[str, Any]:
    """A grant edge as JSON."""
    return {
        "id": g.grant_id, "source": g.source, "domain": g.dom,
        "valid_from": g.valid_from.isoformat() if g.valid_from else None,
        "valid_until": g.valid_until.isoformat() if g.valid_until else None,
        "delegated_from": g.delegated_from,
    }


def explain(engine: Engine, req: Request, fields: Sequence[str]) -> dict[str, Any]:
    """Every grant, role and candidate rule (those whose domain covers the record's department) of a
    decision, and what each contributed."""
    decision = engine.decide(req)
    holds = engine.holds(req.sub, req.dom, req.at)
    return {
        "decision": decision.allowed,
        "code": decision.code,
        "request": {"subject": req.sub, "department": req.dom, "resource_type": req.obj, "action": req.act,
                    "owner": req.owner or None, "home_department": req.home or None, "properties": req.attrs},
        "grants": [_grant_status(g, req) for g in engine.grants_of(req.sub)],
        "roles_here": [{"role": h.role, "via": list(h.chain), "grant": grant_info(h.grant)} for h in holds.values()],
        "rules": [_rule_status(r, req, holds) for r in engine.rules_for(req.obj, req.act, req.dom)],
        "fields": engine.field_levels(req, fields, decision.allowed) if fields else {},
        "decided_by": decision.rule.text if decision.rule else None,
    }


def _grant_status(g: GrantEdge, req: Request) -> dict[str, Any]:
    info = grant_info(g) | {"role": g.role}
    if g.valid_from is not None and req.at < g.valid_from:
        info["applies"], info["why"] = False, "not yet valid"
    elif g.valid_until is not None and req.at >= g.valid_until:
        info["applies"], info["why"] = False, "expired"
    elif not key_match(req.dom, g.dom):
        info["applies"], info["why"] = False, f"held in {g.dom}, record is in {req.dom}"
    else:
        info["applies"], info["why"] = True, "covers the record's department"
    return info


def _rule_status(rule: Rule, req: Request, holds: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rule.id, "text": rule.text, "effect": rule.eft}
    if rule.role not in holds:
        out["outcome"] = f"skipped: subject does not hold {rule.role} here"
    elif not scope_match(rule.scope, req.sub, req.owner, req.dom, req.home):
        out["outcome"] = f"skipped: record outside data scope {rule.scope}"
    else:
        out["outcome"] = _condition_outcome(rule, req)
    return out


def _condition_outcome(rule: Rule, req: Request) -> str:
    verb = "allows" if rule.eft == "allow" else "denies"
    if rule.cond.is_empty:
        return verb
    try:
        ok = rule.cond.evaluate(req.attrs)
    except ConditionError as exc:
        return f"{verb} (condition in doubt: {exc})" if rule.eft == "deny" else f"skipped: condition in doubt ({exc})"
    return verb if ok else f"skipped: condition {rule.cond.source} is false"


def effective_permissions(engine: Engine, sub: str, home: str, at: datetime) -> list[dict[str, Any]]:
    """Every permission a subject holds, grouped, each with the grant -> role chain -> rules behind it.

    One entry per (grant, role, type, action, effect, scope, condition) with the rule domains it
    covers.  Rules that cannot apply to any record the subject can reach are left out: a rule whose
    domain does not meet the grant's, and ``dept``/``tree``/``listed`` scopes whose departments do
    not meet both.  Cost: the subject's grants x the rules of the roles they hold, read from the
    engine's role index (not the whole policy).
    """
    out: list[dict[str, Any]] = []
    for g in engine.grants_of(sub):
        if not g.active(at):
            continue
        base = g.dom[:-1] if g.dom.endswith("*") else g.dom
        info = grant_info(g)
        for role, chain in engine.closure(g.role, base):
            if g.dom == "*":  # held everywhere: whole shapes at once
                groups = {shape: [r for r in rules if scope_reachable(shape[3], r.dom, "*", home)]
                          if shape[3] not in ("all", "own") else rules
                          for shape, rules in engine.rules_of_role(role).items()}
            else:  # held in part of the company: only the rule domains that meet it
                groups = {}
                for dom, rules in engine.rules_of_role_by_domain(role).items():
                    if meet(dom, g.dom):
                        for r in rules:
                            if scope_reachable(r.scope, dom, g.dom, home):
                                groups.setdefault(r.shape, []).append(r)
            out.extend({
                "resource_type": obj, "action": act, "effect": eft, "scope": scope, "condition": cond,
                "role": role, "via": list(chain), "held_in": g.dom, "grant": info,
                "domains": [r.dom for r in picked], "rules": [r.id for r in picked],
            } for (obj, act, eft, scope, cond), picked in groups.items() if picked)
    out.sort(key=lambda p: (p["resource_type"], p["action"], p["effect"], p["role"], p["held_in"]))
    return out


def meet(a: str, b: str) -> bool:
    """Do two domain patterns cover some department in common?"""
    if a == "*" or b == "*" or a == b:
        return True
    if a[-1] == "*":
        return b.startswith(a[:-1]) if b[-1] != "*" else (b.startswith(a[:-1]) or a.startswith(b[:-1]))
    if b[-1] == "*":
        return a.startswith(b[:-1])
    return False


def scope_reachable(scope: str, rule_dom: str, grant_dom: str, home: str) -> bool:
    """Can a record in both patterns fall in the scope? (Patterns form a tree: pairwise meeting suffices.)"""
    if scope in ("all", "own"):
        return True
    if scope == "dept":
        return home != "" and key_match(home, rule_dom) and key_match(home, grant_dom)
    if scope == "tree":
        return home != "" and meet(home + "*", rule_dom) and meet(home + "*", grant_dom)
    return any(meet(p, rule_dom) and meet(p, grant_dom) for p in parse_scope(scope)[1])
