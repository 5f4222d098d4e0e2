"""Incremental change and effective permissions at a scenario size (default: large).

Prints, for the engine already loaded with the scenario:
- adding one grant and revoking it again, applied to the live engine (``add_grant`` / ``remove_grant``);
- adding one rule line as a new policy version, split into validation (``edit_policy``: the changed
  line checked against the policy, the new bundle text and its digest; done before the change is
  committed) and application to the live engine (``Engine.apply_delta``), then removing it again;
- for comparison, the whole-bundle paths: ``parse_bundle`` (a cold load, an import or a rollback) and
  ``apply_policy`` (the diff an import or rollback applies);
- the effective permissions of one person (every permission with its grant and role path).
Each figure is the median of several repetitions, with the change checked to take effect.

    python -m bench.changes [--size large] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from app.authz.engine import Engine, GrantEdge, Request
from app.authz.insight import effective_permissions
from app.authz.policy import edit_policy, parse_bundle
from bench import scenario as sc


def _ms(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def _grant_cycle(engine: Engine, req: Request, repeat: int) -> tuple[float, float]:
    edge = GrantEdge(req.sub, "crm_admin", "*", grant_id=-1)
    adds, removes = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        engine.add_grant(edge)
        adds.append((time.perf_counter() - t) * 1000)
        assert engine.decide(req).allowed, "the new grant did not take effect"
        t = time.perf_counter()
        engine.remove_grant(-1)
        removes.append((time.perf_counter() - t) * 1000)
        assert not engine.decide(req).allowed, "the revocation did not take effect"
    return statistics.median(adds), statistics.median(removes)


def _rule_cycle(engine: Engine, line: str, req: Request, repeat: int) -> tuple[float, float, float, float]:
    """Add one rule line and remove it again, ``repeat`` times: (validate, apply) of each, medians."""
    before = engine.decide(req).allowed
    times: list[list[float]] = [[], [], [], []]
    for _ in range(repeat):
        for step, (add, remove) in enumerate((([line], []), ([], [line]))):
            t = time.perf_counter()
            policy, delta = edit_policy(engine.policy, add, remove)
            times[2 * step].append((time.perf_counter() - t) * 1000)
            retired = engine.policy  # freed after the timing, as the service frees it after its swap
            t = time.perf_counter()
            engine.apply_delta(delta, policy)
            times[2 * step + 1].append((time.perf_counter() - t) * 1000)
            del retired
            assert engine.decide(req).allowed == (not before if add else before), "the change did not take effect"
    a, b, c, d = (statistics.median(x) for x in times)
    return a, b, c, d


def _heaviest(scenario: sc.Scenario) -> str:
    """The subject with the most grant edges (the widest effective-permission report)."""
    counts: dict[str, int] = {}
    for g in scenario.grants:
        counts[g.sub] = counts.get(g.sub, 0) + 1
    return max(sorted(counts), key=lambda s: counts[s])


def main(argv: list[str] | None = None) -> None:
    """Run and print."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--size", default="large")
    args.add_argument("--repeat", type=int, default=5)
    opts = args.parse_args(argv)
    scenario = sc.load(opts.size)
    load_ms, engine = _ms(lambda: Engine(parse_bundle(scenario.files), scenario.grants, "bench"), 1)
    sub = next(iter(scenario.people))  # people are keyed by their Casbin subject
    home = scenario.people[sub]
    elsewhere = next(p for p in sorted(set(scenario.people.values())) if p != home)
    # A request only crm_admin may make, on a department the person does not belong to.
    req = Request(sub, elsewhere, "crm.customer", "delete", "", home,
                  {"record": {}, "action": {}, "context": {}}, scenario.at)
    assert not engine.decide(req).allowed
    add_ms, remove_ms = _grant_cycle(engine, req, opts.repeat)
    line = f"p, employee, {home}, crm.customer, delete, own, -, allow"
    own = Request(sub, home, "crm.customer", "delete", sub, home, req.attrs, scenario.at)
    validate_ms, apply_ms, undo_ms, unapply_ms = _rule_cycle(engine, line, own, opts.repeat)
    files = dict(scenario.files) | {"rules.csv": scenario.files["rules.csv"] + line + "\n"}
    parse_ms, bundle = _ms(lambda: parse_bundle(files), 1)
    diff_ms, _ = _ms(lambda: engine.apply_policy(bundle), 1)
    assert engine.decide(own).allowed
    eff_ms, perms = _ms(lambda: effective_permissions(engine, sub, home, scenario.at), opts.repeat)
    heavy = _heaviest(scenario)
    heavy_ms, heavy_perms = _ms(lambda: effective_permissions(engine, heavy, scenario.people[heavy], scenario.at),
                                opts.repeat)
    rows = [
        ("full engine build (parse + compile)", load_ms),
        ("add one grant, live", add_ms),
        ("revoke one grant, live", remove_ms),
        ("one rule added: validate the edit (before commit)", validate_ms),
        ("one rule added: apply to live engine", apply_ms),
        ("one rule removed: validate the edit (before commit)", undo_ms),
        ("one rule removed: apply to live engine", unapply_ms),
        ("whole bundle: parse (cold load, import, rollback)", parse_ms),
        ("whole bundle: apply_policy diff (import, rollback)", diff_ms),
        (f"effective permissions of one person ({len(perms)} entries, "
         f"{sum(len(p['rules']) for p in perms)} rules)", eff_ms),
        (f"  ... of the person with most grants ({len(heavy_perms)} entries, "
         f"{sum(len(p['rules']) for p in heavy_perms)} rules)", heavy_ms),
    ]
    print(f"size {opts.size}: {len(scenario.people):,} people, {len(scenario.grants):,} grant edges")
    for name, ms in rows:
        print(f"  {name:<60} {ms:10.3f} ms")


if __name__ == "__main__":
    main()
