"""Why: the explanation of one decision, and a person's effective permissions with their paths."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.authz.conditions import ConditionError
from app.authz.engine import Engine, GrantEdge, Request
from app.authz.rules import Rule, key_match, scope_match


def grant_info(g: GrantEdge) -> dict[str, Any]:
    """A grant edge as JSON."""
    return {
        "id": g.grant_id, "source": g.source, "domain": g.dom,
        "valid_from": g.valid_from.isoformat() if g.valid_from else None,
        "valid_until": g.valid_until.isoformat() if g.valid_until else None,
        "delegated_from": g.delegated_from,
    }


def explain(engine: Engine, req: Request, fields: list[str]) -> dict[str, Any]:
    """Every grant, role and candidate rule of a decision, and what each contributed."""
    decision = engine.decide(req)
    holds = engine.holds(req.sub, req.dom, req.at)
    return {
        "decision": decision.allowed,
        "code": decision.code,
        "request": {"subject": req.sub, "department": req.dom, "resource_type": req.obj, "action": req.act,
                    "owner": req.owner or None, "home_department": req.home or None, "properties": req.attrs},
        "grants": [_grant_status(g, req) for g in engine.grants_of(req.sub)],
        "roles_here": [{"role": h.role, "via": list(h.chain), "grant": grant_info(h.grant)} for h in holds.values()],
        "rules": [_rule_status(r, req, holds) for r in engine.rules_for(req.obj, req.act)],
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
    elif not key_match(req.dom, rule.dom):
        out["outcome"] = f"skipped: rule applies in {rule.dom}"
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


def effective_permissions(engine: Engine, sub: str, at: datetime) -> list[dict[str, Any]]:
    """Every (type, action) a subject may be allowed or is denied, with the grant and role path."""
    out = []
    for g in engine.grants_of(sub):
        if not g.active(at):
            continue
        base = g.dom[:-1] if g.dom.endswith("*") else g.dom
        for role, chain in engine._closure(g.role, base):
            for rule in engine.policy.rules:
                if rule.role != role:
                    continue
                out.append({
                    "resource_type": rule.obj, "action": rule.act, "effect": rule.eft, "scope": rule.scope,
                    "condition": rule.cond.source, "rule": {"id": rule.id, "text": rule.text, "domain": rule.dom},
                    "held_in": g.dom, "role": role, "via": list(chain), "grant": grant_info(g),
                })
    out.sort(key=lambda p: (p["resource_type"], p["action"], p["effect"], p["role"], p["held_in"]))
    return out
