"""pycasbin ``FastEnforcer(cache_key_order=[2, 3])``: ``p`` lines bucketed by (type, action).

pycasbin 2.8.0's ``FastModel.add_def`` drops the return value of ``Model.add_def``, so
``load_model_from_text`` stops after the first assertion of each section: ``r2``, ``p2``, ``e2``
and ``m2`` silently vanish and every field question fails (``KeyError``).  ``_FastModel`` below
returns the value and changes nothing else.

Positions 2 and 3 are ``obj`` and ``act`` in both ``r`` and ``p`` of ``policies/model.conf`` and the
matcher compares them with ``==``, so the bucket holds every line that can match.  Only ptype ``p``
is indexed: ``FastModel`` makes ``p`` alone a ``FastPolicy``, so field questions (``m2`` over ``p2``)
still scan every ``p2`` line.  With an ``EnforceContext`` (the ``r2``/``p2`` call) ``FastEnforcer``
takes the key positions from the argument list *including* the context, so it filters ``p`` with
(dom, obj) of the field request; harmless, because ``m2`` reads ``p2``, never ``p``.  Keying on
``dom`` (position 1) would be wrong: the filter is exact equality and would drop every
``hq/v<j>/*`` and ``*`` line, deny lines included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from casbin import FastEnforcer
from casbin.model import FastModel, FastPolicy, Model

from app.authz.policy import Policy, parse_bundle
from bench.engines import casbin_common as common
from bench.scenario import Probe, Scenario

CACHE_KEY_ORDER = (2, 3)  # r.obj / p.obj, r.act / p.act


class _FastModel(FastModel):  # type: ignore[misc]
    """``FastModel`` whose ``add_def`` returns what ``Model.add_def`` returns (so p2/r2/e2/m2 load)."""

    def add_def(self, sec: str, key: str, value: Any) -> Any:
        """Add the assertion; make ``p`` a FastPolicy, as FastModel does."""
        added = Model.add_def(self, sec, key, value)
        if sec == "p" and key == "p":
            self.model[sec][key].policy = FastPolicy(self._cache_key_order)
        return added


@dataclass
class Handle:
    """The enforcer and the parsed policy."""

    enforcer: FastEnforcer
    policy: Policy


def load(scenario: Scenario) -> Handle:
    """A FastEnforcer with the same lines as the stock peer; departments warmed."""
    policy = parse_bundle(scenario.files)
    model = _FastModel(list(CACHE_KEY_ORDER))
    model.load_model_from_text(policy.files["model.conf"])
    lines = common.sample_lines(policy, scenario)
    enforcer = common.build(FastEnforcer, model, lines, cache_key_order=list(CACHE_KEY_ORDER))
    common.warm(enforcer, scenario)
    return Handle(enforcer, policy)


def decide(handle: Handle, probe: Probe) -> bool:
    """FastEnforcer's answer: the (type, action) bucket for the record, every p2 line for a field."""
    return common.decide(handle.enforcer, handle.policy, probe)
