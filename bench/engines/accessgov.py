"""accessgov's compiled engine (``app.authz.engine.Engine``) on the scenario's bundle and grant edges."""

from __future__ import annotations

from app.authz.engine import Engine
from app.authz.policy import parse_bundle
from bench.engines import RANK
from bench.scenario import Probe, Scenario


def load(scenario: Scenario) -> Engine:
    """Parse the bundle and compile the engine, as the service does on (re)load."""
    return Engine(parse_bundle(scenario.files), scenario.grants, "bench")


def decide(engine: Engine, probe: Probe) -> bool:
    """The record decision, and for a field probe the field's level against the wanted one."""
    decision = engine.decide(probe.req)
    if not probe.field or not decision.allowed:
        return decision.allowed
    level = engine.field_levels(probe.req, (probe.field,), True)[probe.field]
    return RANK[level] >= RANK[probe.want]
