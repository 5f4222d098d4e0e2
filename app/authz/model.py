"""The one Casbin model shape the compiled engine implements, and the check that a file has it."""

from __future__ import annotations

import configparser

CANONICAL: dict[str, dict[str, str]] = {
    "request_definition": {
        "r": "sub, dom, obj, act, owner, home, attrs",
        "r2": "sub, dom, obj, act, field, owner, home, level",
    },
    "policy_definition": {
        "p": "sub, dom, obj, act, scope, cond, eft",
        "p2": "sub, dom, obj, act, field, scope, level",
    },
    "role_definition": {"g": "_, _, _"},
    "policy_effect": {
        "e": "some(where (p.eft == allow)) && !some(where (p.eft == deny))",
        "e2": "some(where (p.eft == allow))",
    },
    "matchers": {
        "m": "r.obj == p.obj && r.act == p.act && keyMatch(r.dom, p.dom) && g(r.sub, p.sub, r.dom)"
        " && scopeMatch(p.scope, r.sub, r.owner, r.dom, r.home) && condMatch(p.cond, p.eft, r.attrs)",
        "m2": "r2.obj == p2.obj && r2.act == p2.act && r2.field == p2.field && r2.level == p2.level"
        " && keyMatch(r2.dom, p2.dom) && g(r2.sub, p2.sub, r2.dom)"
        " && scopeMatch(p2.scope, r2.sub, r2.owner, r2.dom, r2.home)",
    },
}


def _norm(value: str) -> str:
    return " ".join(value.split())


def check_model(text: str) -> list[str]:
    """Problems that keep ``text`` from being the model the engine compiles (empty list: fine).

    The engine answers from indexes built for exactly this matcher; a model with another matcher
    would be decided wrongly, so it is refused rather than approximated.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        return [f"not a Casbin model file ({exc})"]
    problems = []
    for section, keys in CANONICAL.items():
        if not parser.has_section(section):
            problems.append(f"missing [{section}]")
            continue
        found = {k: _norm(v) for k, v in parser.items(section)}
        for key, expected in keys.items():
            if found.get(key) != _norm(expected):
                problems.append(f"[{section}] {key} differs from the model the engine implements")
        for extra in sorted(set(found) - set(keys)):
            problems.append(f"[{section}] {extra} is not supported")
    return problems
