"""One store contract suite, run on SQLite and on PostgreSQL (real server, fresh schema per test)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from app.authz.directory import StateHolder
from app.authz.engine import Request
from app.db import make_engine, make_sessionmaker
from app.decisions.models import DecisionRecord, Usage
from app.decisions.recorder import DbDecisionRecorder, DecisionEntry, write_batch
from app.directory.models import Grant
from app.directory.service import GrantService
from app.errors import Conflict, InvalidPolicy, InvalidRequest, NotFound
from app.metrics import Metrics
from app.policy.models import Change, PolicyVersion
from app.policy.service import PolicyService
from tests.conftest import ROOT

NOW = datetime.now(UTC)


@pytest.fixture
def services(session_factory):  # type: ignore[no-untyped-def]
    holder = StateHolder()
    policy = PolicyService(factory=session_factory, holder=holder, policies_dir=ROOT / "policies", metrics=Metrics())
    policy.reload()
    return session_factory, holder, policy, GrantService(factory=session_factory, policy=policy)


def read_req(sub: str, dom: str, owner: str) -> Request:
    return Request(sub, dom, "crm.customer", "read", owner, "", {"record": {}, "action": {}, "context": {}}, NOW)


def count(factory, model) -> int:  # type: ignore[no-untyped-def]
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_state_loads_directory_grants_and_delegations(services) -> None:  # type: ignore[no-untyped-def]
    _, holder, _, _ = services
    state = holder.current
    assert state.directory.people["P001"].home == "hq/sales/east/"
    assert state.directory.accounts[("crm", "test01")].person_id is None
    assert state.engine.decide(read_req("user:P001", "hq/sales/east/", "user:P001")).allowed
    # P002 deputises P003's dept_manager role (delegation): approves P001's small expense.
    approve = Request("user:P002", "hq/sales/east/", "oa.expense", "approve", "user:P001", "hq/sales/east/",
                      {"record": {"amount": 100, "status": "submitted"}, "action": {}, "context": {}}, NOW)
    decision = state.engine.decide(approve)
    assert decision.allowed and decision.hold.grant.delegated_from == "P003"


def test_grant_is_recorded_with_its_change_and_takes_effect(services) -> None:  # type: ignore[no-untyped-def]
    factory, holder, _, grants = services
    before = holder.current.version
    assert not holder.current.engine.decide(read_req("user:P004", "hq/sales/east/", "user:P001")).allowed
    grant = grants.create_grant(actor="admin", person_id="P004", role="sales_manager", department_id="D-EAST",
                                include_subtree=False, reason="cover", valid_from=None, valid_until=None)
    assert holder.current.version != before
    assert holder.current.engine.decide(read_req("user:P004", "hq/sales/east/", "user:P001")).allowed
    with factory() as session:
        change = session.scalars(select(Change).order_by(Change.id.desc())).first()
        assert (change.kind, change.target, change.actor) == ("grant.create", f"grant:{grant.id}", "admin")
    grants.revoke_grant(actor="admin", grant_id=grant.id, reason="done")
    assert not holder.current.engine.decide(read_req("user:P004", "hq/sales/east/", "user:P001")).allowed
    with pytest.raises(Conflict):
        grants.revoke_grant(actor="admin", grant_id=grant.id, reason="again")


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"person_id": "nobody"}, NotFound),
    ({"person_id": "P006"}, Conflict),
    ({"role": "ghost"}, InvalidRequest),
    ({"department_id": "D-NOPE"}, InvalidRequest),
    ({"reason": "  "}, InvalidRequest),
    ({"valid_from": NOW, "valid_until": NOW - timedelta(days=1)}, InvalidRequest),
    ({"valid_until": NOW - timedelta(minutes=1)}, InvalidRequest),
])
def test_bad_grants_change_nothing(services, kwargs, error) -> None:  # type: ignore[no-untyped-def]
    factory, holder, _, grants = services
    args = {"actor": "admin", "person_id": "P004", "role": "sales", "department_id": "D-EAST",
            "include_subtree": False, "reason": "x", "valid_from": None, "valid_until": None} | kwargs
    before = (count(factory, Grant), count(factory, Change), holder.current.version)
    with pytest.raises(error):
        grants.create_grant(**args)
    assert (count(factory, Grant), count(factory, Change), holder.current.version) == before


def test_policy_change_makes_a_version_and_a_failing_one_changes_nothing(services) -> None:  # type: ignore[no-untyped-def]
    factory, holder, policy, _ = services
    line = "p, marketing, *, crm.customer, read, all, record.level in [A, B], allow"
    version = policy.change_rules(actor="sec", reason="C 级客户也可查看",
                                  add=[line.replace("[A, B]", "[A, B, C]")], remove=[line])
    assert holder.current.policy_version_id == version.id
    before = (count(factory, PolicyVersion), count(factory, Change), holder.current.version)
    with pytest.raises(InvalidPolicy) as info:  # breaks a policy test table
        policy.change_rules(actor="sec", reason="oops", add=[],
                            remove=["p, sales, *, crm.customer, read, own, -, allow"])
    assert any("销售可以看自己的客户" in d for d in info.value.details)
    with pytest.raises(InvalidPolicy):
        policy.change_rules(actor="sec", reason="bad", add=["p, sales, *, crm.customer"], remove=[])
    with pytest.raises(InvalidPolicy):  # one line per entry: no smuggled second rule
        policy.change_rules(actor="sec", reason="two", remove=[],
                            add=["p, sales, *, crm.customer, delete, own, -, allow\np, sales, *, oa.leave, "
                                 "approve, all, -, allow"])
    assert (count(factory, PolicyVersion), count(factory, Change), holder.current.version) == before
    rolled = policy.rollback(actor="sec", reason="undo", to_version=1)
    with factory() as session:
        assert rolled.digest == policy.get_version_or_raise(session, 1).digest


def test_decision_log_batches_and_usage_aggregate(services) -> None:  # type: ignore[no-untyped-def]
    factory, _, _, _ = services
    entries = [DecisionEntry(id=f"d-{i}", at=NOW + timedelta(seconds=i), caller="crm", subject="user:P001",
                             person_id="P001", action="read", resource_type="crm.customer", resource_id="CUS-1",
                             allowed=i % 3 != 0, policy_version="1") for i in range(9)]
    write_batch(factory, entries[:5])
    write_batch(factory, entries[5:])
    with factory() as session:
        usage = session.get(Usage, ("P001", "crm.customer", "read"))
        assert (usage.count, usage.allows, usage.denies) == (9, 6, 3)
        assert usage.first_used == entries[0].at and usage.last_used == entries[-1].at
        assert session.scalar(select(func.count()).select_from(DecisionRecord)) == 9


def test_recorder_survives_a_database_outage_and_flushes_on_stop(db_url) -> None:  # type: ignore[no-untyped-def]
    from app.migrate import upgrade

    engine = make_engine(db_url)
    upgrade(engine)
    broken = make_sessionmaker(make_engine("sqlite:////nonexistent-dir/x.db"))
    metrics = Metrics()
    recorder = DbDecisionRecorder(broken, metrics, queue_size=100, batch_size=10, flush_seconds=0.05)
    recorder.start()
    entry = DecisionEntry(id="keep-me", at=NOW, caller="c", subject="s", person_id=None, action="read",
                          resource_type="crm.customer", resource_id=None, allowed=False, policy_version="1")
    recorder.record(entry)
    assert not recorder.flush(timeout=0.5)  # cannot write: kept, not lost
    recorder._factory = make_sessionmaker(engine)  # the database comes back
    assert recorder.flush(timeout=10)
    recorder.stop()
    assert metrics.log_write_failures._value.get() >= 1
    with make_sessionmaker(engine)() as session:
        assert session.get(DecisionRecord, "keep-me") is not None
    engine.dispose()


def test_a_full_buffer_drops_and_counts_instead_of_blocking(db_url) -> None:  # type: ignore[no-untyped-def]
    metrics = Metrics()
    recorder = DbDecisionRecorder(make_sessionmaker(make_engine("sqlite://")), metrics, queue_size=100)
    entry = DecisionEntry(id="x", at=NOW, caller="c", subject="s", person_id=None, action="read",
                          resource_type="crm.customer", resource_id=None, allowed=False, policy_version="1")
    for _ in range(150):  # writer not started: the buffer fills
        recorder.record(entry)
    assert metrics.log_dropped._value.get() == 50


def test_another_process_sees_a_revocation_within_its_refresh(services, session_factory) -> None:  # type: ignore[no-untyped-def]
    from app.policy.refresher import StateRefresher

    factory, _, _, grants = services
    # A second "process": its own holder and policy service over the same database.
    other_holder = StateHolder()
    other_policy = PolicyService(factory=session_factory, holder=other_holder, policies_dir=ROOT / "policies",
                                 metrics=Metrics())
    other_policy.reload()
    refresher = StateRefresher(factory=session_factory, holder=other_holder, policy=other_policy, interval=60)
    assert other_holder.current.engine.decide(read_req("user:P003", "hq/sales/east/", "user:P001")).allowed
    assert refresher.check_once() is False
    with factory() as session:
        grant_id = session.scalar(select(Grant.id).where(Grant.person_id == "P003", Grant.role == "sales_manager"))
    grants.revoke_grant(actor="sec", grant_id=grant_id, reason="left the team")
    assert refresher.check_once() is True
    assert not other_holder.current.engine.decide(read_req("user:P003", "hq/sales/east/", "user:P001")).allowed


def test_the_other_processes_catch_up_by_themselves(services, session_factory, db_url) -> None:  # type: ignore[no-untyped-def]
    """The refresher's thread, as each worker runs it: on PostgreSQL the change's announcement wakes it at
    once (its poll interval is 30 s here, so nothing else could); on SQLite it polls (every 0.2 s here)."""
    factory, _, _, grants = services
    postgres = db_url.startswith("postgresql")
    other_holder, _, refresher = _other_process(session_factory, interval=30 if postgres else 0.2)
    refresher.start()
    try:
        deadline = time.monotonic() + 10
        while postgres and not refresher.listening and time.monotonic() < deadline:
            time.sleep(0.01)
        assert refresher.listening is postgres
        time.sleep(0.3)  # the refresher's first check (right after LISTEN) is behind it
        assert other_holder.current.engine.decide(read_req("user:P003", "hq/sales/east/", "user:P001")).allowed
        with factory() as session:
            grant_id = session.scalar(select(Grant.id).where(Grant.person_id == "P003",
                                                             Grant.role == "sales_manager"))
        grants.revoke_grant(actor="sec", grant_id=grant_id, reason="left the team")
        revoked = time.monotonic()
        while time.monotonic() - revoked < 10:
            if not other_holder.current.engine.decide(read_req("user:P003", "hq/sales/east/", "user:P001")).allowed:
                break
            time.sleep(0.005)
        took = time.monotonic() - revoked
        assert not other_holder.current.engine.decide(read_req("user:P003", "hq/sales/east/", "user:P001")).allowed
        assert took < 5, took  # far below the 30 s poll on PostgreSQL: the announcement did it
    finally:
        refresher.stop()
    assert not refresher.listening  # its connection is closed with it


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # listening is PostgreSQL's
def test_a_lost_listening_connection_is_reopened(services, session_factory) -> None:  # type: ignore[no-untyped-def]
    """The server ends the refresher's listening connection (a restart, a failover, an idle timeout): the
    refresher listens again on a new one, and announcements wake it as before (its poll is 30 s)."""

    factory, _, _, grants = services
    other_holder, _, refresher = _other_process(session_factory, interval=30)
    refresher.start()
    try:
        again = _end_listening_connection(session_factory, refresher)
        assert again is not None
        with factory() as session:
            grant_id = session.scalar(select(Grant.id).where(Grant.person_id == "P003",
                                                             Grant.role == "sales_manager"))
        grants.revoke_grant(actor="sec", grant_id=grant_id, reason="left the team")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and other_holder.current.engine.decide(
                read_req("user:P003", "hq/sales/east/", "user:P001")).allowed:
            time.sleep(0.005)
        assert not other_holder.current.engine.decide(read_req("user:P003", "hq/sales/east/", "user:P001")).allowed
    finally:
        refresher.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_listening_connection_lost_twice_in_a_round_is_not_reopened_in_a_loop(session_factory) -> None:  # type: ignore[no-untyped-def]
    """Lost, it is reopened at once; lost again within the poll interval, that round polls instead (a
    connection that keeps dying does not become a reconnect loop against the database)."""
    _, _, refresher = _other_process(session_factory, interval=30)
    refresher.start()
    try:
        _end_listening_connection(session_factory, refresher)  # reopened at once
        _end_listening_connection(session_factory, refresher, wait_for_new=False)  # lost again in the same round
        deadline = time.monotonic() + 5
        while refresher.listening and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(1.0)
        assert not refresher.listening  # polling for the rest of this 30 s round
    finally:
        started = time.monotonic()
        refresher.stop()
    assert time.monotonic() - started < 2  # stop() does not wait for the round to end


def _end_listening_connection(factory, refresher, *, wait_for_new: bool = True):  # type: ignore[no-untyped-def]
    """End the refresher's listening connection from the server side; the backend pid it listens on next."""
    pid = _listening_backend(refresher, None)
    with factory() as session:
        session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    return _listening_backend(refresher, pid) if wait_for_new else None


def _listening_backend(refresher, other_than):  # type: ignore[no-untyped-def]
    """The backend pid of the refresher's listening connection, once it listens on one other than ``other_than``."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        conn = refresher._listener
        if conn is not None and not conn.closed and conn.info.backend_pid != other_than:
            return conn.info.backend_pid
        time.sleep(0.01)
    raise AssertionError("the refresher is not listening")


def test_a_row_the_database_refuses_is_dropped_not_retried_forever(db_url) -> None:  # type: ignore[no-untyped-def]
    from app.migrate import upgrade

    engine = make_engine(db_url)
    upgrade(engine)
    metrics = Metrics()
    recorder = DbDecisionRecorder(make_sessionmaker(engine), metrics, batch_size=10, flush_seconds=0.05)
    good = DecisionEntry(id="good", at=NOW, caller="c", subject="s", person_id=None, action="read",
                         resource_type="crm.customer", resource_id=None, allowed=True, policy_version="1")
    poison = DecisionEntry(id="good", at=NOW, caller="c", subject="s", person_id=None, action="read",  # same id
                           resource_type="crm.customer", resource_id=None, allowed=True, policy_version="1")
    later = DecisionEntry(id="later", at=NOW, caller="c", subject="s", person_id=None, action="read",
                          resource_type="crm.customer", resource_id=None, allowed=True, policy_version="1")
    recorder.record(good)
    recorder.record(poison)
    recorder.start()
    assert recorder.flush(timeout=10)
    recorder.record(later)  # the writer is not stuck on the poison row
    assert recorder.flush(timeout=10)
    recorder.stop()
    assert metrics.log_dropped._value.get() == 1
    with make_sessionmaker(engine)() as session:
        assert session.get(DecisionRecord, "later") is not None
    engine.dispose()


def test_grant_changes_are_applied_without_rebuilding_the_engine(services) -> None:  # type: ignore[no-untyped-def]
    _, holder, _, grants = services
    engine = holder.current.engine
    grant = grants.create_grant(actor="admin", person_id="P004", role="sales_manager", department_id="D-EAST",
                                include_subtree=False, reason="cover", valid_from=None, valid_until=None)
    assert holder.current.engine is engine  # applied in place, not rebuilt
    assert engine.decide(read_req("user:P004", "hq/sales/east/", "user:P001")).allowed
    grants.revoke_grant(actor="admin", grant_id=grant.id, reason="done")
    assert holder.current.engine is engine
    assert not engine.decide(read_req("user:P004", "hq/sales/east/", "user:P001")).allowed


def test_a_delegation_and_its_revoked_source_grant_reach_the_deputy(services) -> None:  # type: ignore[no-untyped-def]
    factory, holder, _, grants = services
    approve = Request("user:P001", "hq/sales/east/", "oa.expense", "approve", "user:P002", "hq/sales/east/",
                      {"record": {"amount": 100, "status": "submitted"}, "action": {}, "context": {}}, NOW)
    assert not holder.current.engine.decide(approve).allowed
    grants.create_delegation(actor="P003", from_person_id="P003", to_person_id="P001", role="dept_manager",
                             valid_from=NOW - timedelta(minutes=1), valid_until=NOW + timedelta(days=1), reason="休假")
    assert holder.current.engine.decide(approve).allowed
    with factory() as session:
        source = session.scalar(select(Grant.id).where(Grant.person_id == "P003", Grant.role == "dept_manager"))
    grants.revoke_grant(actor="sec", grant_id=source, reason="manager's grant revoked")
    assert not holder.current.engine.decide(approve).allowed  # the deputy's copy went with it


EXPORT_OWN = "p, sales, *, crm.customer, export, own, action.rows <= 100, allow"


def _other_process(session_factory, interval: float = 60):  # type: ignore[no-untyped-def]
    """A second "process": its own holder, policy service and refresher over the same database."""
    from app.policy.refresher import StateRefresher

    holder = StateHolder()
    policy = PolicyService(factory=session_factory, holder=holder, policies_dir=ROOT / "policies", metrics=Metrics())
    policy.reload()
    return holder, policy, StateRefresher(factory=session_factory, holder=holder, policy=policy, interval=interval)


def test_a_rule_change_is_applied_line_by_line_here_and_in_another_process(services, session_factory) -> None:  # type: ignore[no-untyped-def]
    _, holder, policy, _ = services
    other_holder, _, refresher = _other_process(session_factory)
    export = Request("user:P001", "hq/sales/east/", "crm.customer", "export", "user:P001", "hq/sales/east/",
                     {"record": {}, "action": {"rows": 10}, "context": {}}, NOW)
    engine, other_engine = holder.current.engine, other_holder.current.engine
    assert not engine.decide(export).allowed and not other_engine.decide(export).allowed
    version = policy.change_rules(actor="sec", reason="导出自己的客户", add=[EXPORT_OWN], remove=[])
    assert holder.current.engine is engine and engine.decide(export).allowed  # in place, not rebuilt
    assert holder.current.policy_version_id == version.id and engine.policy.digest == version.digest
    assert refresher.check_once() is True
    assert other_holder.current.engine is other_engine and other_engine.decide(export).allowed
    assert other_engine.policy.digest == version.digest
    policy.change_rules(actor="sec", reason="撤回", add=[], remove=[EXPORT_OWN])
    assert refresher.check_once() is True
    assert not engine.decide(export).allowed and not other_engine.decide(export).allowed


def test_two_edits_of_the_same_version_cannot_both_land(services, session_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, holder, policy, _ = services
    _, other_policy, _ = _other_process(session_factory)
    versions_before = count(session_factory, PolicyVersion)
    real = PolicyService.validate_edit

    def slow_validate(self, engine, add, remove):  # type: ignore[no-untyped-def]
        out = real(self, engine, add, remove)
        if self is policy:  # the other process lands its edit while this one validates
            other_policy.change_rules(actor="b", reason="second", add=["p, finance, *, oa.leave, read, all, -, allow"],
                                      remove=[])
        return out

    monkeypatch.setattr(PolicyService, "validate_edit", slow_validate)
    with pytest.raises(Conflict):
        policy.change_rules(actor="a", reason="first", add=[EXPORT_OWN], remove=[])
    assert count(session_factory, PolicyVersion) == versions_before + 1  # only the other edit landed
    assert EXPORT_OWN not in holder.current.engine.policy.lines


def test_a_policy_that_diverged_from_the_database_is_reloaded_in_full(services, session_factory) -> None:  # type: ignore[no-untyped-def]
    _, _, policy, _ = services
    other_holder, _, refresher = _other_process(session_factory)
    engine = other_holder.current.engine
    # Corrupt the other process's in-memory policy: its edit of the next change gives another digest.
    from app.authz.policy import edit_policy

    engine.apply_delta(*reversed(edit_policy(engine.policy, ["p, finance, *, oa.leave, read, all, -, allow"], [])))
    version = policy.change_rules(actor="sec", reason="导出", add=[EXPORT_OWN], remove=[])
    assert refresher.check_once() is True
    assert other_holder.current.engine is not engine  # rebuilt from the database
    assert other_holder.current.engine.policy.digest == version.digest
