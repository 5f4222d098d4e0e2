"""Does the request mix exercise every rule family?  Agreement means little on requests that don't.

``python -m bench.coverage [--size small] [--n 20000]`` breaks the policy one way at a time (drops
deny lines, treats ``own`` as ``all``, ignores time windows...) and counts the requests whose
answer (accessgov's engine, fields included) flips.  A family with no flips is not tested by the
differential checks.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from app.authz import engine as engine_mod
from app.authz.conditions import ALWAYS, ConditionError
from app.authz.policy import Policy, parse_bundle
from bench import scenario
from bench.engines import accessgov

Mutation = Callable[[Policy, list[engine_mod.GrantEdge]], tuple[Policy, list[engine_mod.GrantEdge]]]


def _rules(pred: Callable[[Any], bool]) -> Mutation:
    return lambda p, g: (dataclasses.replace(p, rules=tuple(r for r in p.rules if pred(r))), g)


def _scope_as_all(name: str) -> Mutation:
    def mutate(p: Policy, g: list[engine_mod.GrantEdge]) -> tuple[Policy, list[engine_mod.GrantEdge]]:
        rules = tuple(dataclasses.replace(r, scope="all") if r.scope.startswith(name) else r for r in p.rules)
        return dataclasses.replace(p, rules=rules), g
    return mutate


MUTATIONS: dict[str, Mutation] = {
    "drop deny lines": _rules(lambda r: r.eft != "deny"),
    "drop division lines": _rules(lambda r: not (r.dom.endswith("/*") and r.dom != "*")),
    "drop company lines": _rules(lambda r: r.dom != "*"),
    "drop department lines": _rules(lambda r: not r.dom.endswith("/")),
    "drop conditions": lambda p, g: (dataclasses.replace(
        p, rules=tuple(dataclasses.replace(r, cond=ALWAYS) for r in p.rules)), g),
    "drop field rules": lambda p, g: (dataclasses.replace(p, field_rules=()), g),
    "drop role inheritance": lambda p, g: (dataclasses.replace(p, inherits=()), g),
    "ignore grant time windows": lambda p, g: (p, [dataclasses.replace(e, valid_from=None, valid_until=None)
                                                  for e in g]),
    **{f"scope {s} as all": _scope_as_all(s) for s in ("own", "dept", "tree", "listed")},
}


@contextmanager
def _doubt(answer: bool | None) -> Iterator[None]:
    """Patch the engine's condition evaluation so that doubt always (or never) matches."""
    real = engine_mod.cond_match

    def patched(rule: Any, attrs: Any) -> bool:
        try:
            return real(rule, attrs) if rule.cond.is_empty else rule.cond.evaluate(attrs)
        except ConditionError:
            return bool(answer)

    engine_mod.cond_match = patched
    try:
        yield
    finally:
        engine_mod.cond_match = real


def flips(sc: scenario.Scenario, n: int) -> dict[str, int]:
    """Requests (of the first ``n``) whose answer changes under each mutation."""
    probes = sc.probes[:n]
    policy = parse_bundle(sc.files)
    reference = engine_mod.Engine(policy, sc.grants)
    base = [accessgov.decide(reference, p) for p in probes]

    def count(p: Policy, g: list[engine_mod.GrantEdge]) -> int:
        engine = engine_mod.Engine(p, g)
        return sum(accessgov.decide(engine, probe) != b for probe, b in zip(probes, base, strict=True))

    out = {name: count(*mutate(policy, sc.grants)) for name, mutate in MUTATIONS.items()}
    for name, answer in (("doubt never matches", False), ("doubt always matches", True)):
        with _doubt(answer):
            out[name] = count(policy, sc.grants)
    return out


def main(argv: list[str] | None = None) -> None:
    """CLI: print the flips per mutation."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small")
    ap.add_argument("--n", type=int, default=scenario.N_REQUESTS)
    args = ap.parse_args(argv)
    for name, count in flips(scenario.load(args.size), args.n).items():
        print(f"{name:28} {count:6}")


if __name__ == "__main__":
    main()
