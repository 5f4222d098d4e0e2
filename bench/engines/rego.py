"""Rego (regopy, rego-cpp): ``authz.rego`` over the scenario's lines as indexed data.

The policy is the model (domains, role closure, scopes, conditions, deny-overrides, field levels),
written once in ``authz.rego``; the bundle's lines are data, indexed so that a query looks up only
what can apply:

* ``grants[..][..][sub]`` = ``[{role, dom, from, until}]`` (all grant edges, windows as epoch
  seconds checked against ``input.at``);
* ``inherit[<dom>][role]`` = parent roles (followed up to 8 hops);
* ``rules[type][action][<dom>][role]`` = ``[{scope, listed, cond, eft}]``, conditions as parsed
  clauses ``{path, op, value}`` interpreted by the policy (missing property = doubt);
* ``frules[type][read|write][field][<dom>][role]`` = ``[{scope, listed, level}]``;

where ``<dom>`` is a line's domain pattern as a path of nested keys (``hq/v1/*`` ->
``["hq"]["v1"]["*"]``, ``hq/v1/d3/`` -> ``["hq"]["v1"]["d3"][""]``, ``*`` -> ``["*"]``); the policy
looks up ``*`` at every level of the request's department and the department itself.

Why nested: rego-cpp 1.5.2 finds an object key by a linear scan (``data.grants[input.sub]`` costs
0.65 ms with 1,000 subjects and 5 ms with 10,000), so no object may be big: departments are nested
along their path, and grants under the last two and the two before of the subject id
(``user:P000349`` -> ``["49"]["03"]``).  Data and policy are compiled once into a bundle; each
request sets the input and runs the ``accessgov/answer`` entry point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from regopy import Bundle, Input, Interpreter

from app.authz.policy import Policy, parse_bundle, parse_scope
from bench.scenario import Probe, Scenario

POLICY = Path(__file__).with_name("authz.rego")
ENTRYPOINT = "accessgov/answer"
_NEVER = 10**12


def _epoch(t: datetime | None, default: int) -> int:
    return default if t is None else int(t.timestamp())


def dom_path(pattern: str) -> list[str]:
    """A domain pattern as nested keys: ``*`` -> [*], ``a/b/*`` -> [a, b, *], ``a/b/`` -> [a, b, ""]."""
    if pattern.endswith("*"):
        return [*pattern[:-1].split("/")[:-1], "*"]
    return pattern.split("/")


def shard(sub: str) -> list[str]:
    """Where a subject's grants sit: the id's last two characters, then the two before."""
    if len(sub) < 4:
        raise ValueError(f"subject ids need at least 4 characters: {sub!r}")
    return [sub[-2:], sub[-4:-2], sub]


def _nest(root: dict[str, Any], keys: list[str], item: Any) -> None:
    node = root
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node.setdefault(keys[-1], []).append(item)


def data(policy: Policy, scenario: Scenario) -> dict[str, Any]:
    """The data document: grants, inheritance, rules and field rules, indexed."""
    grants: dict[str, Any] = {}
    for g in scenario.grants:
        _nest(grants, shard(g.sub), {"role": g.role, "dom": g.dom, "from": _epoch(g.valid_from, -_NEVER),
                                     "until": _epoch(g.valid_until, _NEVER)})
    inherit: dict[str, Any] = {}
    for inh in policy.inherits:
        _nest(inherit, [*dom_path(inh.dom), inh.role], inh.parent)
    rules: dict[str, Any] = {}
    for r in policy.rules:
        cond = [{"path": list(c.path), "op": c.op, "value": list(c.value) if isinstance(c.value, tuple) else c.value}
                for c in r.cond.clauses]
        _nest(rules, [r.obj, r.act, *dom_path(r.dom), r.role], {"scope": parse_scope(r.scope)[0],
                                                     "listed": list(parse_scope(r.scope)[1]), "cond": cond,
                                                     "eft": r.eft})
    frules: dict[str, Any] = {}
    for f in policy.field_rules:
        _nest(frules, [f.obj, f.act, f.field, *dom_path(f.dom), f.role], {"scope": parse_scope(f.scope)[0],
                                                               "listed": list(parse_scope(f.scope)[1]),
                                                               "level": f.level})
    return {"grants": grants, "inherit": inherit, "rules": rules, "frules": frules,
            "writes": {k: list(v.write_actions) for k, v in policy.resources.items()},
            "fields": {k: list(v.fields) for k, v in policy.resources.items()},
            "classified": {k: sorted(v) for k, v in policy.classification.items()}}


@dataclass
class Handle:
    """The compiled bundle, the interpreter that runs it and the scenario time in epoch seconds."""

    bundle: Bundle
    interpreter: Interpreter
    at: int


def load(scenario: Scenario) -> Handle:
    """Compile policy + data into a bundle with the ``answer`` entry point."""
    policy = parse_bundle(scenario.files)
    builder = Interpreter()
    builder.add_module("authz.rego", POLICY.read_text(encoding="utf-8"))
    builder.add_data_json(json.dumps(data(policy, scenario), separators=(",", ":")))
    bundle = builder.build(None, [ENTRYPOINT])
    if not bundle.ok():
        raise RuntimeError("regopy could not build the bundle")
    return Handle(bundle, Interpreter(), int(scenario.at.timestamp()))


def decide(h: Handle, probe: Probe) -> bool:
    """One query of the ``answer`` entry point with the request as input."""
    req = probe.req
    h.interpreter.set_input(Input({"sub": req.sub, "dom": req.dom, "obj": req.obj, "act": req.act,
                                   "owner": req.owner, "home": req.home, "attrs": dict(req.attrs),
                                   "at": h.at, "field": probe.field, "want": probe.want}))
    out = h.interpreter.query_bundle_entrypoint(h.bundle, ENTRYPOINT)
    if not out.ok():
        raise RuntimeError(f"rego query failed: {out}")
    return out[0][0] is True
