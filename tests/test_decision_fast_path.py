"""The decision endpoints' fast paths keep their meaning.

* Log rows written through the driver (multi-row INSERT on SQLite, COPY on PostgreSQL) read back
  through the ORM exactly as written: timestamps, JSON columns, booleans, and the usage aggregate.
* The fast body checks accept only what the pydantic models accept, with the same values; anything
  else goes to the models (and gets their 400).
* The batched latency histogram is exposed like prometheus_client's.
* Backpressure: requests wait for a backlogged decision log, together, and for a bounded time.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from pydantic import ValidationError
from sqlalchemy import select

from app.db import make_engine, make_sessionmaker
from app.decisions import router
from app.decisions.models import DecisionRecord, Usage
from app.decisions.recorder import DbDecisionRecorder, DecisionEntry, write_rows
from app.decisions.router import decide
from app.decisions.schemas import EvaluationRequest, EvaluationsRequest, ItemIn, fast_evaluation, fast_evaluations
from app.decisions.service import DecisionIds
from app.metrics import BatchHistogram, Metrics

NOW = datetime(2026, 11, 25, 9, 30, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Any]:
    from app.migrate import upgrade

    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def test_log_rows_read_back_through_the_orm_as_written(engine: Any) -> None:
    reason = {"code": "allowed", "rule": {"id": "r1", "text": "p, sales, *, crm.customer, read, own, -, allow"},
              "role": "销售", "via": ["sales"], "grant": {"id": 7, "valid_until": None}}
    entries = [DecisionEntry(id=f"d-{i}", at=NOW + timedelta(microseconds=i * 250_000), caller="crm-backend",
                             subject="user:P001", person_id="P001" if i % 4 else None, action="read",
                             resource_type="crm.customer", resource_id=f"CUS-{i}" if i % 3 else None,
                             allowed=bool(i % 2), policy_version="3", reason=reason if i % 2 else {},
                             fields={"phone": "masked"} if i == 5 else {}) for i in range(250)]
    write_rows(engine, [e.row() for e in entries])
    with make_sessionmaker(engine)() as session:
        stored = {r.id: r for r in session.scalars(select(DecisionRecord))}
        usage = session.get(Usage, ("P001", "crm.customer", "read"))
    assert len(stored) == 250
    for e in entries:
        r = stored[e.id]
        assert (r.at, r.caller, r.subject, r.person_id, r.action, r.resource_type, r.resource_id, r.allowed,
                r.policy_version, r.reason, r.fields) == (
            e.at, e.caller, e.subject, e.person_id, e.action, e.resource_type, e.resource_id, e.allowed,
            e.policy_version, e.reason, e.fields)
    counted = [e for e in entries if e.person_id]
    assert usage is not None
    assert (usage.count, usage.allows, usage.denies) == (
        len(counted), sum(e.allowed for e in counted), sum(not e.allowed for e in counted))
    assert usage.first_used == counted[0].at and usage.last_used == counted[-1].at


def test_a_backlog_is_flagged_and_written(engine: Any) -> None:
    metrics = Metrics()
    recorder = DbDecisionRecorder(make_sessionmaker(engine), metrics, queue_size=1000, batch_size=50,
                                  flush_seconds=0.05)
    rows = [DecisionEntry(id=f"b-{i}", at=NOW, caller="c", subject="user:P001", person_id="P001", action="read",
                          resource_type="crm.customer", resource_id=None, allowed=True, policy_version="1").row()
            for i in range(600)]
    recorder.record_rows(rows)
    assert recorder.backlogged()  # more than half of the buffer: the endpoints wait for the writer
    recorder.start()
    assert recorder.flush(timeout=20)
    recorder.stop()
    assert not recorder.backlogged()
    assert metrics.log_dropped._value.get() == 0
    with make_sessionmaker(engine)() as session:
        assert len(session.scalars(select(DecisionRecord.id)).all()) == 600


def _backlogged_recorder(engine: Any) -> DbDecisionRecorder:
    recorder = DbDecisionRecorder(make_sessionmaker(engine), Metrics(), queue_size=1000, batch_size=50,
                                  flush_seconds=0.05)
    recorder.record_rows([DecisionEntry(id=f"w-{i}", at=NOW, caller="c", subject="user:P001", person_id="P001",
                                        action="read", resource_type="crm.customer", resource_id=None, allowed=True,
                                        policy_version="1").row() for i in range(600)])
    assert recorder.backlogged()
    return recorder


def test_requests_wait_for_a_backlogged_log_and_go_on_when_the_writer_catches_up(
        engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Backpressure: 30 requests wait while the buffer is over half full (one shared poll, not one each), a
    waiter that goes away does not disturb the others, and all are decided once the writer has caught up."""
    recorder = _backlogged_recorder(engine)
    decided: list[int] = []
    polls = 0
    poll = router._poll_room

    def counted(*args: Any) -> None:
        nonlocal polls
        polls += 1
        poll(*args)

    monkeypatch.setattr(router, "_poll_room", counted)

    async def scenario() -> None:
        tasks = [asyncio.ensure_future(decide(recorder, lambda i=i: decided.append(i) or {}, ())) for i in range(30)]
        await asyncio.sleep(0.2)
        assert decided == []  # all still waiting for the writer
        assert 10 <= polls <= 150  # every 2 ms for all of them (30 waiters polling alone: ~3,000)
        tasks[0].cancel()  # a caller hung up
        await asyncio.sleep(0.02)
        assert all(not t.done() for t in tasks[1:])
        recorder.start()
        await asyncio.wait_for(asyncio.gather(*tasks[1:]), timeout=10)
        assert sorted(decided) == list(range(1, 30))
        assert tasks[0].cancelled()

    try:
        asyncio.run(scenario())
    finally:
        recorder.stop()


def test_a_request_waits_for_the_log_no_longer_than_the_backpressure_bound(engine: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that never catches up (here: never started) delays answers by BACKPRESSURE_SECONDS, no more."""
    monkeypatch.setattr(router, "BACKPRESSURE_SECONDS", 0.3)
    recorder = _backlogged_recorder(engine)

    async def scenario() -> float:
        started = time.monotonic()
        await asyncio.gather(*(decide(recorder, lambda: {}, ()) for _ in range(5)))
        return time.monotonic() - started

    waited = asyncio.run(scenario())
    assert 0.3 <= waited < 2.0
    assert recorder.backlogged()


def test_decision_ids_taken_for_a_batch_are_unique_uuids_and_reseed_before_the_counter_wraps() -> None:
    ids = DecisionIds()
    first, second = ids.take(100), ids.take(3)
    taken = [*first, *second, ids.next()]
    assert len(set(taken)) == 104
    assert all(str(uuid.UUID(i)) == i for i in taken)
    assert first[1][-8:] == "00000001" and second[0][-8:] == "00000064"  # one counter, ranges in order
    ids._next = 0xFFFFFFFF - 2  # three ids left under this head: a batch of five takes a new head
    head = first[0][:28]
    wrapped = ids.take(5)
    assert all(i[:28] != head for i in wrapped) and wrapped[0][-8:] == "00000000"


def test_rows_beyond_the_buffer_are_counted_as_dropped() -> None:
    metrics = Metrics()
    recorder = DbDecisionRecorder(make_sessionmaker(make_engine("sqlite://")), metrics, queue_size=100)
    row = DecisionEntry(id="x", at=NOW, caller="c", subject="s", person_id=None, action="read",
                        resource_type="crm.customer", resource_id=None, allowed=False, policy_version="1").row()
    recorder.record_rows([row] * 70)
    recorder.record_rows([row] * 70)
    assert metrics.log_dropped._value.get() == 40


# -- the fast body checks --------------------------------------------------------------------------

_STRINGS: list[Any] = ["", "a", "user", "P001", "x" * 64, "x" * 65, "y" * 300, "y" * 301, None, 5, 1.5, True,
                       ["read"], {"a": 1}]
_PROPS: list[Any] = [None, {}, {"owner": "P001", "fields": ["phone"]}, "owner=P001", ["a"], 3]


def _part(rng: random.Random, names: tuple[str, ...]) -> Any:
    if rng.random() < 0.05:
        return rng.choice([None, "alice", 4, [], {}])
    out: dict[str, Any] = {}
    for name in names:
        if rng.random() < 0.85:
            if name == "properties":
                out[name] = rng.choice(_PROPS) if rng.random() < 0.5 else None
            else:  # mostly a usual value, so that many bodies are valid
                out[name] = rng.choice(_STRINGS) if rng.random() < 0.25 else rng.choice(["P001", "read", "crm.x"])
    if rng.random() < 0.2:
        out["x_unknown"] = {"nested": [1]}
    return out


def _item(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, names in (("subject", ("type", "id", "properties")), ("action", ("name", "properties")),
                       ("resource", ("type", "id", "properties"))):
        if rng.random() < 0.93:
            out[key] = _part(rng, names)
    if rng.random() < 0.3:
        out["context"] = rng.choice(_PROPS)
    return out


def _same(fast: Any, model: Any) -> bool:
    """A fast-path value means the same as the model's (None and missing parts alike)."""
    if model is None or fast is None:
        return model is None and fast is None
    for name in fast._fields:
        if name == "semantic":
            continue
        f, m = getattr(fast, name), getattr(model, name, None)
        if name == "evaluations":
            if (f is None) != (m is None) or (f is not None and len(f) != len(m)):
                return False
            if f is not None and not all(_same(a, b) for a, b in zip(f, m, strict=True)):
                return False
        elif isinstance(m, dict | str) or m is None:
            if f != m:
                return False
        elif not _same(f, m):
            return False
    return True


@pytest.mark.parametrize("seed", range(4))
def test_fast_single_check_accepts_only_what_the_model_accepts(seed: int) -> None:
    rng = random.Random(seed)
    accepted = 0
    for _ in range(3000):
        body = _item(rng)
        fast = fast_evaluation(body)
        try:
            model: Any = EvaluationRequest.model_validate(body)
        except ValidationError:
            assert fast is None, body
            continue
        if fast is not None:
            accepted += 1
            assert _same(fast, model), body
    assert accepted > 20


@pytest.mark.parametrize("seed", range(4))
def test_fast_batch_check_accepts_only_what_the_model_accepts(seed: int) -> None:
    rng = random.Random(1000 + seed)
    accepted = 0
    for _ in range(2000):
        body: Any = _item(rng)
        if rng.random() < 0.9:
            body["evaluations"] = [_item(rng) if rng.random() < 0.5 else {"resource": _part(rng, ("type", "id"))}
                                   for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.3:
            body["options"] = rng.choice([None, {}, {"evaluations_semantic": "deny_on_first_deny"},
                                          {"evaluations_semantic": "majority"}, {"evaluations_semantic": None}, 7])
        if rng.random() < 0.05:
            body = rng.choice([[], "x", None, 3])
        fast = fast_evaluations(body)
        try:
            model: Any = EvaluationsRequest.model_validate(body)
        except ValidationError:
            assert fast is None, body
            continue
        if fast is not None:
            accepted += 1
            assert _same(fast, model), body
            expected = model.options.evaluations_semantic if model.options else "execute_all"
            assert fast.semantic == expected
            # merge=True: each item comes with the defaults filled in, as DecisionService.batch_items fills them.
            merged = fast_evaluations(body, merge=True)
            assert merged is not None and merged.semantic == fast.semantic
            assert (merged.evaluations is None) == (model.evaluations is None)
            for got, e in zip(merged.evaluations or (), model.evaluations or (), strict=True):
                want = ItemIn(e.subject or model.subject, e.action or model.action, e.resource or model.resource,
                              e.context if e.context is not None else model.context)
                assert _same(got, want), body
    assert accepted > 20


# -- metrics ---------------------------------------------------------------------------------------

def test_batch_histogram_exposes_what_prometheus_client_would() -> None:
    values = [0.00001, 0.00002, 0.00003, 0.0004, 0.003, 0.2, 2.0]
    buckets = (0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0)
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    mine = BatchHistogram("h_seconds", "doc", buckets, ours)
    ref = Histogram("h_seconds", "doc", buckets=buckets, registry=theirs)
    mine.observe_many(values[:3])
    for v in values[3:]:
        mine.observe(v)
    for v in values:
        ref.observe(v)

    def samples(registry: CollectorRegistry) -> list[str]:
        return [line for line in generate_latest(registry).decode().splitlines()
                if line.startswith("h_seconds") and "_created" not in line]

    assert samples(ours) == samples(theirs)
