"""Reproductions of what the benchmark found about pycasbin and the engine's process.

``python -m bench.findings [--size small] [--gc-size large]`` prints:

1. ``app.authz.reference.build_reference`` is O(lines²): pycasbin's ``add_named_policies`` looks
   every rule up in the list before appending it; an adapter load of the same lines is linear;
2. stock pycasbin builds a department's role manager on first use in O(people²) when everyone
   holds ``employee`` at ``*`` (every ``*`` link is merged into it with an O(roles) scan per link);
3. pycasbin's ``FastModel`` drops every second-and-later assertion of a section (``r2``, ``p2``...);
4. a full garbage collection with the engine loaded, and after ``gc.freeze()``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import time

import casbin
from casbin.model import FastModel, Model

from app.authz.policy import parse_bundle
from app.authz.reference import build_reference
from bench import scenario
from bench.engines import accessgov
from bench.engines import casbin_common as common


def _timed(fn: object, *args: object) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)  # type: ignore[operator]
    return time.perf_counter() - t0, out


def reference_build(size: str) -> None:
    """build_reference vs an adapter load of the same lines (grants of 50 requests' subjects)."""
    sc = scenario.load(size)
    sample = dataclasses.replace(sc, probes=sc.probes[:50])
    policy = parse_bundle(sc.files)
    grants = [g for g in sc.grants if g.sub in {p.req.sub for p in sample.probes}]
    slow, _ = _timed(build_reference, policy, grants, sc.at)
    model = Model()
    model.load_model_from_text(policy.files["model.conf"])
    fast, _ = _timed(common.build, casbin.Enforcer, model, common.sample_lines(policy, sample))
    print(f"1. {size}: {len(policy.rules):,} p + {len(policy.field_rules):,} p2 lines: build_reference {slow:.2f} s, "
          f"adapter load {fast:.2f} s")


def first_touch(size: str) -> None:
    """Seconds to build one department's role manager with the grants of the first n people."""
    sc = scenario.load(size)
    policy = parse_bundle(sc.files)
    for n in (250, 500, 1000, 2000):
        subjects = set(sorted(sc.people)[:n])
        grants = [g for g in sc.grants if g.sub in subjects]
        model = Model()
        model.load_model_from_text(policy.files["model.conf"])
        enforcer = common.build(casbin.Enforcer, model, common.policy_lines(policy, grants, sc.at, subjects))
        took, _ = _timed(enforcer.get_role_manager().has_link, "x", "y", "hq/v0/d1/")
        print(f"2. {size}: first use of one department's role manager, {n:,} people ({len(grants):,} links): "
              f"{took:.2f} s")
        if took > 5:
            break


def fast_model(size: str) -> None:
    """What stock FastModel keeps of policies/model.conf, and what a field question does."""
    policy = parse_bundle(scenario.load(size).files)
    model = FastModel([2, 3])
    model.load_model_from_text(policy.files["model.conf"])
    print(f"3. FastModel sections: p={sorted(model.model['p'])} r={sorted(model.model['r'])} "
          f"m={sorted(model.model['m'])} (Model has p, p2 / r, r2 / m, m2)")
    enforcer = casbin.FastEnforcer(model, cache_key_order=[2, 3])
    try:
        ctx = enforcer.new_enforce_context("2")
        enforcer.enforce(ctx, "u", "hq/", "crm.customer", "read", "phone", "", "", "visible")
    except Exception as exc:  # whatever pycasbin raises is the finding
        print(f"   field question on a stock FastEnforcer: {type(exc).__name__}: {exc}")


def gc_pause(size: str) -> None:
    """A full collection with the engine loaded, then after gc.freeze()."""
    engine = accessgov.load(scenario.load(size))
    gc.collect()
    took, _ = _timed(gc.collect)
    tracked = len(gc.get_objects())
    gc.freeze()
    frozen, _ = _timed(gc.collect)
    print(f"4. {size}: gc.collect() with the engine loaded: {took * 1e3:.0f} ms ({tracked:,} tracked objects); "
          f"after gc.freeze(): {frozen * 1e3:.1f} ms")
    del engine


def main(argv: list[str] | None = None) -> None:
    """CLI."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", help="size for findings 1 and 3 (1 also runs medium; 2 runs medium)")
    ap.add_argument("--gc-size", default="large")
    args = ap.parse_args(argv)
    for size in dict.fromkeys([args.size, "medium"]):
        reference_build(size)
    first_touch("medium")
    fast_model(args.size)
    gc_pause(args.gc_size)


if __name__ == "__main__":
    main()
