"""Incremental change and effective permissions at a scenario size (default: large).

Prints, for the engine already loaded with the scenario:
- adding one grant and revoking it again, applied to the live engine (``add_grant`` / ``remove_grant``);
- adding one rule line as a new policy version, split into validation (``parse_bundle`` of the whole
  bundle, done before the change is committed) and application (``Engine.apply_policy``);
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
from app.authz.policy import parse_bundle
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
    files = dict(scenario.files) | {"rules.csv": scenario.files["rules.csv"] + line + "\n"}
    validate_ms, new_policy = _ms(lambda: parse_bundle(files), 1)
    apply_ms, counts = _ms(lambda: engine.apply_policy(new_policy), 1)
    assert counts["rules_added"] == 1
    eff_ms, perms = _ms(lambda: effective_permissions(engine, sub, scenario.at), opts.repeat)
    rows = [
        ("full engine build (parse + compile)", load_ms),
        ("add one grant, live", add_ms),
        ("revoke one grant, live", remove_ms),
        ("one rule: validate whole bundle (before commit)", validate_ms),
        ("one rule: apply to live engine", apply_ms),
        (f"effective permissions of one person ({len(perms)} entries)", eff_ms),
    ]
    print(f"size {opts.size}: {len(scenario.people):,} people, {len(scenario.grants):,} grant edges")
    for name, ms in rows:
        print(f"  {name:<60} {ms:10.3f} ms")


if __name__ == "__main__":
    main()
