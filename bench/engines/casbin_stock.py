"""Stock ``casbin.Enforcer``: the reference's model, functions and lines (see ``casbin_common``)."""

from __future__ import annotations

from dataclasses import dataclass

import casbin
from casbin.model import Model

from app.authz.policy import Policy, parse_bundle
from bench.engines import casbin_common as common
from bench.scenario import Probe, Scenario


@dataclass
class Handle:
    """The enforcer and the parsed policy (resource types and classification for field probes)."""

    enforcer: casbin.Enforcer
    policy: Policy


def load(scenario: Scenario) -> Handle:
    """A stock Enforcer with every p/p2 line and the sampled subjects' grant edges; departments warmed."""
    policy = parse_bundle(scenario.files)
    model = Model()
    model.load_model_from_text(policy.files["model.conf"])
    enforcer = common.build(casbin.Enforcer, model, common.sample_lines(policy, scenario))
    common.warm(enforcer, scenario)
    return Handle(enforcer, policy)


def decide(handle: Handle, probe: Probe) -> bool:
    """Stock casbin's answer (scans every p line; p2 lines for field probes)."""
    return common.decide(handle.enforcer, handle.policy, probe)
