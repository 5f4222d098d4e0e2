"""Cedar (cedarpy): the scenario's rule template as ~150 Cedar policies, departments' variations as data.

Translation (from ``bench.template``, not from the generated Casbin lines):

* one policy per template line: ``permit``/``forbid`` (forbid overrides permit = our deny rule);
  ``action == Action::"<act>"``, ``resource is Crm::Customer``;
* the department copies become one policy each: a per-department variation reads the record's
  ``Dept`` entity (``resource.dept.sales_export_denied``, ``resource.dept.expense_limit``); company
  and division lines apply to every department (records live in leaf departments);
* a role held in a domain: the user's ``roles`` attribute maps each role to the domain patterns
  of its grants (``hq/v1/d3/``, ``hq/v1/d3/*``, ``hq/v1/*``, ``*``), role inheritance (only at
  ``*``) expanded; a ``Dept`` carries ``scopes``, every pattern that covers it, so
  ``principal.roles.sales.containsAny(resource.dept.scopes)`` is Casbin's ``g(sub, sales, dom)``
  with ``keyMatch``.  (Scopes as entities, ``resource.dept in principal.roles.sales``, reads the
  same but cedarpy parses entity references in attributes ~3x slower: ~0.55 ms a decision);
* data scopes: own ``resource.owner == principal``, dept ``resource.dept.scopes.contains(principal.home)``,
  tree ``...contains(principal.tree)`` (``"<home>*"``), listed ``...containsAny([...])``;
* conditions read ``context["record"]`` / ``context["action"]`` guarded with ``has``: a missing
  property makes a permit not apply and a forbid apply (nested ``if``), as our doubt rule says;
* a field probe is a second request, action ``field_read``/``field_write`` with ``context.field``
  and ``context.want``: visible lines permit, masked lines permit when ``want`` is masked, hidden
  lines forbid.

Only grants in force at the scenario time are in the data.  Each request carries only the entities
it needs: the user, the record's department and the record, serialised in advance where possible.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cedarpy

from app.authz.policy import Policy, parse_bundle
from app.authz.rules import domain_prefixes
from bench import template as tpl
from bench.scenario import Probe, Scenario

_CLAUSE = re.compile(r"^\s*([a-z_]+(?:\.[a-z_]+)+)\s*(==|!=|<=|>=|<|>|not_in|in)\s*(.+?)\s*$")


def _type(obj: str) -> str:
    """``crm.customer`` -> ``Crm::Customer``."""
    return "::".join(part.capitalize() for part in obj.split("."))


def _value(raw: str) -> str:
    raw = raw.strip()
    if raw.startswith("{") and raw.endswith("}"):
        return f"resource.dept.{raw[1:-1]}"
    if raw.startswith("[") and raw.endswith("]"):
        return "[" + ", ".join(_value(v) for v in raw[1:-1].split(",") if v.strip()) + "]"
    if re.fullmatch(r"-?\d+", raw) or raw in ("true", "false"):
        return raw
    if re.fullmatch(r"-?\d+\.\d+", raw):
        raise ValueError(f"Cedar has no float literal: {raw}")
    return json.dumps(raw.strip("'\""))


def _clause(text: str) -> tuple[str, str]:
    """(guard, test) of one condition clause: ``has`` checks for the path, then the comparison."""
    match = _CLAUSE.match(text)
    if match is None:
        raise ValueError(f"cannot translate condition clause {text!r}")
    root, *attrs = match[1].split(".")
    node, guards = f'context["{root}"]', []
    for attr in attrs:
        guards.append(f"{node} has {attr}")
        node = f"{node}.{attr}"
    op, lit = match[2], _value(match[3])
    test = {"in": f"{lit}.contains({node})", "not_in": f"!{lit}.contains({node})"}.get(op, f"{node} {op} {lit}")
    return " && ".join(guards), test


def _condition(cond: str, eft: str) -> str | None:
    if cond.strip() in ("", "-"):
        return None
    clauses = [_clause(c) for c in re.split(r"\s+and\s+", cond.strip())]
    if eft == "allow":
        return " && ".join(f"({g} && {t})" for g, t in clauses)
    expr = "true"  # deny: a clause in doubt (property missing) makes the rule apply
    for guard, test in reversed(clauses):
        expr = f"(if !({guard}) then true else ({test} && {expr}))"
    return expr


def _scope(scope: str) -> str | None:
    if scope == "all":
        return None
    if scope == "own":
        return "resource.owner == principal"
    if scope == "dept":
        return "principal has home && resource.dept.scopes.contains(principal.home)"
    if scope == "tree":
        return "principal has tree && resource.dept.scopes.contains(principal.tree)"
    items = [i.strip() for i in scope.removeprefix("listed:").split(";") if i.strip()]
    return f"resource.dept.scopes.containsAny({json.dumps(items)})"


def _policy(effect: str, action: str, obj: str, terms: Iterable[str | None]) -> str:
    body = " && ".join(t for t in terms if t)
    return f'{effect}(principal, action == Action::"{action}", resource is {_type(obj)})\nwhen {{ {body} }};'


def _role(role: str) -> str:
    return f"principal.roles has {role} && principal.roles.{role}.containsAny(resource.dept.scopes)"


def record_policy(line: tpl.TemplateLine) -> str:
    """A ``p`` template line as one Cedar policy."""
    role, obj, act, scope, cond, eft = line.tokens
    flag = f"resource.dept.{line.flag}" if line.flag else None
    effect = "permit" if eft == "allow" else "forbid"
    return _policy(effect, act, obj, (_role(role), flag, _scope(scope), _condition(cond, eft)))


def field_policy(line: tpl.TemplateLine) -> str:
    """A ``p2`` template line as one Cedar policy over the ``field_<read|write>`` action."""
    role, obj, fact, fld, scope, level = line.tokens
    flag = f"resource.dept.{line.flag}" if line.flag else None
    want = 'context.want == "masked"' if level == "masked" else None
    effect = "forbid" if level == "hidden" else "permit"
    return _policy(effect, f"field_{fact}", obj, (f"context.field == {json.dumps(fld)}", want, _role(role),
                                                 flag, _scope(scope)))


def policy_text(policy: Policy) -> str:
    """Every Cedar policy of the scenario."""
    rules = tpl.company_rules() + tpl.parse_template(tpl.DIVISION_RULES) + tpl.parse_template(tpl.DEPT_RULES)
    fields = tpl.company_field_rules() + tpl.parse_template(tpl.DEPT_FIELD_RULES)
    out = [record_policy(line) for line in rules] + [field_policy(line) for line in fields]
    for obj, rt in sorted(policy.resources.items()):  # known, unclassified fields show with the record
        plain = [f for f in rt.fields if f not in policy.classification.get(obj, {})]
        for fact in ("read", "write"):
            out.append(_policy("permit", f"field_{fact}", obj, (f"{json.dumps(plain)}.contains(context.field)",)))
    return "\n\n".join(out) + "\n"


# -- entities -------------------------------------------------------------------------------------

def _ref(kind: str, uid: str) -> dict[str, Any]:
    return {"__entity": {"type": kind, "id": uid}}


def _closure(policy: Policy) -> dict[str, list[str]]:
    """Each role and the roles it inherits (inheritance must be company-wide, as in this scenario)."""
    parents: dict[str, set[str]] = {}
    for inh in policy.inherits:
        if inh.dom != "*":
            raise NotImplementedError("the Cedar translation expands only company-wide inheritance")
        parents.setdefault(inh.role, set()).add(inh.parent)
    out = {}
    for role in policy.roles:
        seen, todo = {role}, [role]
        while todo:
            for parent in parents.get(todo.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        out[role] = sorted(seen)
    return out


def user_entities(scenario: Scenario, policy: Policy) -> dict[str, str]:
    """Each person's User entity as JSON: home, subtree scope and role -> scopes of grants in force."""
    closure = _closure(policy)
    roles: dict[str, dict[str, set[str]]] = {}
    for g in scenario.grants:
        if g.active(scenario.at):
            for role in closure.get(g.role, [g.role]):
                roles.setdefault(g.sub, {}).setdefault(role, set()).add(g.dom)
    out = {}
    for sub, home in scenario.people.items():
        held = {r: sorted(doms) for r, doms in sorted(roles.get(sub, {}).items())}
        attrs = {"home": home, "tree": home + "*", "roles": held}
        out[sub] = json.dumps({"uid": {"type": "User", "id": sub}, "attrs": attrs, "parents": []})
    return out


def dept_entity(path: str, knobs: dict[str, Any]) -> str:
    """A Dept entity as JSON: its knobs, and every domain pattern that covers it (``scopes``)."""
    scopes = ["*", *(p + "*" for p in domain_prefixes(path)[1:]), path]
    return json.dumps({"uid": {"type": "Dept", "id": path}, "attrs": {**knobs, "scopes": scopes}, "parents": []})


@dataclass
class Handle:
    """Parsed policies and pre-serialised entities."""

    policies: cedarpy.PolicySet
    users: dict[str, str]
    depts: dict[str, str]
    writes: dict[str, frozenset[str]]


def load(scenario: Scenario) -> Handle:
    """Translate and parse the policies; serialise every user and department entity."""
    policy = parse_bundle(scenario.files)
    depts = {path: dept_entity(path, knobs) for path, knobs in scenario.knobs.items()}
    writes = {obj: frozenset(rt.write_actions) for obj, rt in policy.resources.items()}
    return Handle(cedarpy.PolicySet.from_str(policy_text(policy)), user_entities(scenario, policy), depts, writes)


def _ask(h: Handle, probe: Probe, action: str, context: dict[str, Any]) -> bool:
    req = probe.req
    dept = h.depts.get(req.dom) or dept_entity(req.dom, {})
    user = h.users.get(req.sub) or json.dumps({"uid": {"type": "User", "id": req.sub}, "attrs": {}, "parents": []})
    rtype = _type(req.obj)
    record = json.dumps({"uid": {"type": rtype, "id": "r"}, "parents": [],
                         "attrs": {"owner": _ref("User", req.owner), "dept": _ref("Dept", req.dom)}})
    request = {"principal": {"type": "User", "id": req.sub}, "action": {"type": "Action", "id": action},
               "resource": {"type": rtype, "id": "r"}, "context": context}
    return bool(cedarpy.is_authorized(request, h.policies, f"[{user},{dept},{record}]").allowed)


def decide(h: Handle, probe: Probe) -> bool:
    """The record request; for a field probe, then the field request."""
    if not _ask(h, probe, probe.req.act, dict(probe.req.attrs)):
        return False
    if not probe.field:
        return True
    fact = "write" if probe.req.act in h.writes.get(probe.req.obj, ()) else "read"
    return _ask(h, probe, f"field_{fact}", {"field": probe.field, "want": probe.want})
