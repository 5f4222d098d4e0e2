"""The benchmark's synthetic company: reproducible, a valid bundle, and Casbin's meaning in our engine.

Stock pycasbin scans every line and builds each department's role manager in O(people²), so the
differential checks give it, per department of the sample, the lines whose domain covers that
department (decided with casbin's own ``keyMatch``: no other line can match there) and the grant
edges of the sample's subjects.  A few requests also go to an unsliced reference, to check the
slicing itself.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest
from casbin.util import key_match as casbin_key_match

from app.authz.engine import Engine, GrantEdge
from app.authz.policy import Policy, parse_bundle
from app.authz.reference import build_reference, reference_decide, reference_field_has
from bench import scenario
from bench.engines import accessgov

LEVELS = ("hidden", "masked", "visible")


@cache
def company(size: str, seed: int = scenario.DEFAULT_SEED) -> scenario.Scenario:
    return scenario.generate(size, seed)


@cache
def compiled(size: str) -> Engine:
    return accessgov.load(company(size))


def _edges(sc: scenario.Scenario, probes: Iterable[scenario.Probe]) -> list[GrantEdge]:
    subjects = {p.req.sub for p in probes}
    return [g for g in sc.grants if g.sub in subjects]


def _slice(policy: Policy, dom: str) -> Policy:
    """The lines that can match a record in ``dom`` (their domain covers it, by casbin's keyMatch)."""
    return dataclasses.replace(policy, rules=tuple(r for r in policy.rules if casbin_key_match(dom, r.dom)),
                               field_rules=tuple(f for f in policy.field_rules if casbin_key_match(dom, f.dom)))


def _check(engine: Engine, reference: object, probes: list[scenario.Probe], tally: Counter[str]) -> None:
    """Every record decision and every field-level question of the probes, engine vs reference."""
    for p in probes:
        ours = engine.decide(p.req)
        assert ours.allowed == reference_decide(reference, p.req), (p, ours)
        tally[ours.code] += 1
        fact = engine.field_act(p.req.obj, p.req.act)
        for name in engine.policy.classification.get(p.req.obj, {}):
            for level in LEVELS:
                has = engine.field_level_has(p.req, fact, name, level)
                assert has == reference_field_has(reference, p.req, fact, name, level), (p, name, level)
                tally[f"field:{level}"] += has


def differential(size: str, probes: list[scenario.Probe], unsliced: int) -> Counter[str]:
    """Check probes against department-sliced references, and the first ``unsliced`` against a full one."""
    sc, engine = company(size), compiled(size)
    tally: Counter[str] = Counter()
    by_dom: dict[str, list[scenario.Probe]] = defaultdict(list)
    for p in probes:
        by_dom[p.req.dom].append(p)
    for dom, group in sorted(by_dom.items()):
        _check(engine, build_reference(_slice(engine.policy, dom), _edges(sc, group), sc.at), group, tally)
    full = probes[:unsliced]
    _check(engine, build_reference(engine.policy, _edges(sc, full), sc.at), full, Counter())
    return tally


def test_same_seed_same_company_and_requests() -> None:
    a, b = company("small"), scenario.generate("small")
    assert a.files == b.files
    assert a.grants == b.grants and a.people == b.people and a.knobs == b.knobs
    assert a.probes == b.probes
    assert len(a.probes) == scenario.N_REQUESTS


def test_another_seed_another_company() -> None:
    a, c = company("small"), company("small", 7)
    assert a.files["rules.csv"] != c.files["rules.csv"]
    assert a.grants != c.grants
    assert a.probes != c.probes


def test_cache_round_trip(tmp_path: Path) -> None:
    sc = company("small")
    scenario.save(sc, tmp_path)
    back = scenario.read(tmp_path)
    assert back.files == sc.files and back.grants == sc.grants and back.people == sc.people
    assert back.knobs == sc.knobs and back.probes == sc.probes and back.at == sc.at


def test_bundle_is_a_valid_policy_with_per_department_copies() -> None:
    sc = company("small")
    policy = parse_bundle(sc.files)
    doms = Counter(r.dom for r in policy.rules)
    assert len(sc.knobs) == 50 and len(sc.people) == 1000
    assert sum(n for d, n in doms.items() if d.count("/") == 3) > 50 * 40  # every leaf department its copy
    assert any(d.endswith("/*") and d != "*" for d in doms) and doms["*"] > 40
    assert {f.dom for f in policy.field_rules} > {"*"}
    assert policy.inherits, "role inheritance comes from policies/rules.csv"
    windows = [g for g in sc.grants if g.valid_from or g.valid_until]
    assert 0.02 < len(windows) / len(sc.grants) < 0.06
    assert any(not g.active(sc.at) for g in windows) and any(g.active(sc.at) for g in windows)


def test_request_mix() -> None:
    sc, engine = company("small"), compiled("small")
    allowed = sum(accessgov.decide(engine, p) for p in sc.probes)
    assert 0.20 <= allowed / len(sc.probes) <= 0.32
    owners = sum(p.req.owner == p.req.sub for p in sc.probes)
    assert 0.45 < owners / len(sc.probes) < 0.60
    crm_reads = [p for p in sc.probes if p.req.obj.startswith("crm.") and p.req.act == "read"]
    assert 0.30 < sum(bool(p.field) for p in crm_reads) / len(crm_reads) < 0.40


def test_request_mix_exercises_every_rule_family() -> None:
    from bench.coverage import flips

    counts = flips(company("small"), 5000)
    assert all(n >= 2 for n in counts.values()), counts  # each family decides some of the requests


def test_engine_agrees_with_stock_casbin_on_small_requests() -> None:
    tally = differential("small", company("small").probes[:1000], unsliced=25)
    assert tally["allowed"] > 150 and tally["explicit_deny"] >= 20 and tally["no_matching_rule"] > 300, tally
    assert tally["field:hidden"] >= 1 and tally["field:masked"] >= 20 and tally["field:visible"] >= 20, tally


@pytest.mark.parametrize("peer", ["cedar", "rego"])
def test_translated_peers_agree_with_the_engine(peer: str) -> None:
    pytest.importorskip("cedarpy" if peer == "cedar" else "regopy")
    from bench import engines

    module, sc = engines.get(peer), company("small")
    handle = module.load(sc)
    n = 1500 if peer == "cedar" else 600  # regopy costs ~1.5 ms a query
    probes = sc.probes[:n] + [p for p in sc.probes if p.field][: n // 5]
    wrong = [p for p in probes if module.decide(handle, p) != accessgov.decide(compiled("small"), p)]
    assert not wrong, wrong[:3]


@pytest.mark.slow
def test_engine_agrees_with_stock_casbin_on_medium_requests() -> None:
    tally = differential("medium", company("medium").probes[:3000], unsliced=40)
    assert tally["allowed"] > 450 and tally["explicit_deny"] >= 50, tally
