"""Same meaning as Casbin: the engine and a stock casbin.Enforcer agree on the demo organisation.

Thousands of seeded random requests over the demo company (every resource type and action, owners
and departments drawn from the directory, properties from the records, sensitive fields asked)
are decided by the service's decision path and by a stock ``casbin.Enforcer`` loaded with the same
model.conf, policy lines and grant edges.  Every allow/deny and every field-visibility question
must agree.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from app.authz.engine import GrantEdge, Request
from app.authz.reference import build_reference, reference_decide, reference_field_has
from app.demo.load import load_demo
from app.directory.models import Record
from app.main import build_services
from app.migrate import upgrade
from tests.conftest import make_settings

N_REQUESTS = 3000


@pytest.fixture(scope="module")
def demo_state(tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = make_settings(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}")
    services = build_services(settings)
    upgrade(services.factory.kw["bind"])
    services.policy.import_baseline(actor="test", reason="baseline")
    load_demo(services, history=False)
    state = services.holder.current
    with services.factory() as session:
        records = [(r.type, r.id, r.owner_id, r.department_id, dict(r.properties)) for r in session.query(Record)]
    yield state, records
    services.factory.kw["bind"].dispose()


def _edges(state: Any) -> list[GrantEdge]:
    return [g for sub in state.engine.subjects() for g in state.engine.grants_of(sub)]


def _requests(state: Any, records: list[tuple], n: int, seed: int) -> list[Request]:
    rng = random.Random(seed)
    directory = state.directory
    people = sorted((p for p in directory.people.values() if p.status == "active"), key=lambda p: p.id)
    paths = sorted(directory.departments.values())
    resources = state.engine.policy.resources
    now = datetime.now(UTC)
    out = []
    for _ in range(n):
        person = rng.choice(people)
        rtype, _rid, owner, dep, props = rng.choice(records)
        owner_view = directory.people.get(owner)
        if rng.random() < 0.3 and owner_view is not None and owner_view.status == "active":
            person = owner_view  # the owner asks about their own record
        # 15 %: the record sits in another department
        dep_path = rng.choice(paths) if rng.random() < 0.15 else directory.departments[dep]
        action = rng.choice(resources[rtype].actions)
        attrs = {"record": dict(props), "action": {"rows": rng.choice([50, 800, 5000])}, "context": {}}
        if rng.random() < 0.05:
            attrs["record"].pop(rng.choice(sorted(props) or ["x"]), None)  # doubt: a property missing
        owner_sub = f"user:{owner}" if rng.random() < 0.9 else ""
        out.append(Request(person.sub, dep_path, rtype, action, owner_sub, person.home, attrs, now))
    return out


def test_every_decision_agrees_with_stock_casbin(demo_state: Any) -> None:
    state, records = demo_state
    requests = _requests(state, records, N_REQUESTS, seed=20261125)
    now = requests[0].at
    reference = build_reference(state.engine.policy, _edges(state), now)
    outcomes: Counter[str] = Counter()
    mismatches = []
    for req in requests:
        ours = state.engine.decide(req)
        theirs = reference_decide(reference, req)
        outcomes[ours.code] += 1
        if ours.allowed != theirs:
            mismatches.append((req, ours.code, theirs))
    assert not mismatches, mismatches[:5]
    # The sample must exercise allows, ordinary denials and explicit denies, or agreement means little.
    assert outcomes["allowed"] > N_REQUESTS * 0.15, outcomes
    assert outcomes["no_matching_rule"] > 50, outcomes
    assert outcomes["explicit_deny"] >= 5, outcomes


def test_a_batch_memo_of_held_roles_changes_no_decision(demo_state: Any) -> None:
    """The decision service shares one memo of held roles per (subject, department) across a request's
    decisions (one clock reading); every decision and field level is the same as without it."""
    state, records = demo_state
    requests = _requests(state, records, 2000, seed=11)
    memo: dict[Any, Any] = {}
    classified = state.engine.policy.classification
    for req in requests:
        alone, shared = state.engine.decide(req), state.engine.decide(req, memo)
        assert (alone.allowed, alone.code, alone.rule, alone.hold) == (
            shared.allowed, shared.code, shared.rule, shared.hold), req
        fields = [*classified.get(req.obj, {}), "no_such_field"]
        assert state.engine.field_levels(req, fields, alone.allowed) == state.engine.field_levels(
            req, fields, alone.allowed, memo), req
    assert len(memo) < len(requests)  # subjects did ask about several records of one department


def test_every_field_visibility_question_agrees_with_stock_casbin(demo_state: Any) -> None:
    state, records = demo_state
    requests = _requests(state, records, 1500, seed=7)
    reference = build_reference(state.engine.policy, _edges(state), requests[0].at)
    classified = state.engine.policy.classification
    levels: Counter[str] = Counter()
    checked = 0
    for req in requests:
        fact = state.engine.field_act(req.obj, req.act)
        for name in classified.get(req.obj, {}):
            for level in ("hidden", "masked", "visible"):
                ours = state.engine.field_level_has(req, fact, name, level)
                assert ours == reference_field_has(reference, req, fact, name, level), (req, name, level)
                levels[level] += ours
                checked += 1
    assert checked > 2000
    assert levels["visible"] > 20 and levels["masked"] > 20, levels
