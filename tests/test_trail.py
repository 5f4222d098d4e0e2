"""The tamper-evident audit trail: decisions and changes are sealed as they are written, ``verify``
names whatever was edited, deleted, inserted or reordered behind the service's back, the purge keeps
the chain verifiable, and PostgreSQL refuses edits to the trail's tables (until an owner disables the
triggers, as the tampering tests do)."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from app.cli import main
from app.db import Base, make_engine, make_sessionmaker, transaction
from app.decisions.models import DecisionRecord
from app.decisions.recorder import DecisionEntry, write_rows
from app.policy.models import Change
from audit import tables, trail
from tests.conftest import auth, make_settings, prepare_database

BATCH = "/access/v1/evaluations"
PROTECTED = ("decision_log", "changes", "audit_trail", "audit_trail_head", "audit_finding_events")


@dataclass
class Sealed:
    """A database with decisions and changes written through the service."""

    client: TestClient
    engine: Engine
    url: str

    def entries(self, kind: str | None = None) -> list[Any]:
        with self.engine.connect() as conn:
            stmt = select(tables.trail).order_by(tables.trail.c.seq)
            if kind:
                stmt = stmt.where(tables.trail.c.kind == kind)
            return list(conn.execute(stmt))

    def rows_of(self, seq: int) -> list[str]:
        """The ids of the decisions sealed by entry ``seq``, in the trail's (Python's) order."""
        with self.engine.connect() as conn:
            return sorted(conn.scalars(select(DecisionRecord.id).where(DecisionRecord.seal == seq)))


def _decide(client: TestClient, n: int, subject: str = "P003") -> None:
    body = {"subject": {"type": "user", "id": subject}, "action": {"name": "read"},
            "evaluations": [{"resource": {"type": "crm.customer", "id": f"CUS-{1 + i % 4}",
                                          "properties": {"fields": ["phone", "id_number", "name"]}}}
                            for i in range(n)]}
    r = client.post(BATCH, json=body, headers=auth())
    assert r.status_code == 200, r.text
    assert client.app.state.services.recorder.flush()  # type: ignore[attr-defined]


@pytest.fixture
def sealed(db_url: str, app_factory: Callable[..., TestClient]) -> Iterator[Sealed]:
    """Three decision batches (12 decisions each) and two grant changes, through the API."""
    client = app_factory(db_url)
    _decide(client, 12)
    r = client.post("/v1/grants", headers=auth(), json={
        "person_id": "P004", "role": "sales_manager", "department_id": "D-EAST", "reason": "代理华东经理"})
    assert r.status_code == 201, r.text
    _decide(client, 12, "P001")
    revoked = client.post(f"/v1/grants/{r.json()['id']}/revoke", json={"reason": "结束代理"}, headers=auth())
    assert revoked.status_code == 200, revoked.text
    _decide(client, 12, "crm:zhangwei01")
    engine = make_engine(db_url)
    yield Sealed(client, engine, db_url)
    engine.dispose()


def _verify(engine: Engine, **kw: Any) -> trail.VerifyReport:
    with engine.connect() as conn:
        return trail.verify(conn, **kw)


def _tamper(engine: Engine, *statements: tuple[str, dict[str, Any]]) -> None:
    """Edit the database directly, as its owner would: on PostgreSQL, the append-only triggers off first."""
    with engine.begin() as conn:
        pg = conn.dialect.name == "postgresql"
        if pg:
            for t in PROTECTED:
                conn.exec_driver_sql(f"ALTER TABLE {t} DISABLE TRIGGER USER")
        for sql, params in statements:
            conn.execute(text(sql), params)
        if pg:
            for t in PROTECTED:
                conn.exec_driver_sql(f"ALTER TABLE {t} ENABLE TRIGGER USER")


def _problem(report: trail.VerifyReport, table: str, ref: Any, words: str) -> trail.Problem:
    for p in report.problems:
        if p.table == table and (ref is None or p.ref == str(ref)) and words in p.what:
            return p
    raise AssertionError(f"no problem ({table}, {ref}, {words!r}) in {[p.as_dict() for p in report.problems]}")


def _cli(args: list[str], url: str) -> Any:
    return CliRunner().invoke(main, args, env={"ACCESSGOV_DATABASE_URL": url}, catch_exceptions=False)


# -- sealing -----------------------------------------------------------------------------------

def test_decisions_and_changes_are_sealed_as_written_and_verify_passes(sealed: Sealed) -> None:
    with sealed.engine.connect() as conn:
        unsealed = conn.scalar(select(func.count()).select_from(DecisionRecord).where(DecisionRecord.seal.is_(None)))
        decisions = conn.scalar(select(func.count()).select_from(DecisionRecord))
        change_ids = sorted(conn.scalars(select(Change.id)))
    assert decisions == 36 and unsealed == 0
    batches = sealed.entries(trail.DECISIONS)
    assert [e.count for e in batches] == [12, 12, 12]
    for e in batches:
        ids = sealed.rows_of(e.seq)
        assert (e.ref_first, e.ref_last) == (ids[0], ids[-1]) and len(e.row_digests) == 8 * 12
    changes = sealed.entries(trail.CHANGE)
    assert sorted(int(e.ref_first) for e in changes) == change_ids and len(change_ids) >= 3  # import, grant, revoke
    assert all(e.count == 1 and e.source_table == "changes" for e in changes)
    entries = sealed.entries()
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == trail.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))

    report = _verify(sealed.engine)
    assert report.ok, report.as_dict()
    assert report.entries == len(entries) and report.records == 36 + len(change_ids)
    assert (report.head_seq, report.head_hash) == (entries[-1].seq, entries[-1].hash)


def test_visible_and_masked_fields_are_folded_into_field_usage(sealed: Sealed) -> None:
    with sealed.engine.connect() as conn:
        usage = {(r.person_id, r.field): r.count for r in conn.execute(select(tables.field_usage))}
    # P003 (sales manager of D-EAST) sees phone, masked id_number, and name on the 3 of 4 customers in D-EAST
    assert usage[("P003", "phone")] == usage[("P003", "id_number")] == usage[("P003", "name")] == 9
    assert ("P001", "id_number") not in usage  # a plain salesman: hidden, not counted
    assert usage[("P001", "phone")] > 0


def test_the_canonical_form_reads_the_same_on_both_databases() -> None:
    at = datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC)
    stored = ("d-1", "2026-11-25 01:02:03.000000", "c", "user:P1", None, "read", "crm.customer", None, 1, "7",
              '{"b": 1, "a": [1, 2]}', "{}")
    written = ("d-1", at, "c", "user:P1", None, "read", "crm.customer", None, True, "7", '{"a":[1,2],"b":1}', "{}")
    assert trail.decision_hashes([stored]) == trail.decision_hashes([written])
    spec = trail.SPECS["changes"]
    assert trail.canonical(spec, (1, at, "a", "k", "t", "r", {"y": 2, "x": None}, None)) == \
        trail.canonical(spec, ("1", "2026-11-25 01:02:03.000000", "a", "k", "t", "r", '{"x":null,"y":2}', None))


# Columns a sealed row may still change: a review item's apply result (a rollback) only.
UNSEALED = {"audit_campaign_items": {"apply_status", "apply_result"}}


def test_the_sealed_columns_are_the_tables_columns() -> None:
    for spec in trail.SPECS.values():
        table = Base.metadata.tables.get(spec.name)
        if table is None:
            table = tables.metadata.tables[spec.name]
        expected = {c.name for c in table.columns if c.name != "seal"} - UNSEALED.get(spec.name, set())
        assert sorted(spec.columns) == sorted(expected), spec.name


# -- tampering ---------------------------------------------------------------------------------

def test_an_edited_decision_is_named(sealed: Sealed) -> None:
    seq = sealed.entries(trail.DECISIONS)[1].seq
    victim = sealed.rows_of(seq)[5]
    _tamper(sealed.engine, ("UPDATE decision_log SET caller = 'forged' WHERE id = :id", {"id": victim}))
    report = _verify(sealed.engine)
    assert not report.ok
    p = _problem(report, "decision_log", victim, "edited after it was sealed")
    assert p.seq == seq and len(report.problems) == 1


def test_a_deleted_decision_is_located_between_its_neighbours(sealed: Sealed) -> None:
    seq = sealed.entries(trail.DECISIONS)[0].seq
    ids = sealed.rows_of(seq)
    _tamper(sealed.engine, ("DELETE FROM decision_log WHERE id = :id", {"id": ids[5]}),
            ("DELETE FROM decision_log WHERE id = :id", {"id": ids[0]}))
    report = _verify(sealed.engine)
    middle = _problem(report, "decision_log", None, "record 6 of 12 sealed by entry")
    assert f"between {ids[4]} and {ids[6]}" in middle.what and middle.seq == seq
    _problem(report, "decision_log", ids[0], "record 1 of 12")  # the first: its id is the entry's ref_first


def test_an_edited_change_is_named(sealed: Sealed) -> None:
    change = sealed.entries(trail.CHANGE)[-1]
    _tamper(sealed.engine, ("UPDATE changes SET reason = 'nothing to see' WHERE id = :id",
                            {"id": int(change.ref_first)}))
    report = _verify(sealed.engine)
    assert _problem(report, "changes", change.ref_first, "edited").seq == change.seq
    assert len(report.problems) == 1


def test_a_deleted_change_is_named(sealed: Sealed) -> None:
    change = sealed.entries(trail.CHANGE)[-1]
    _tamper(sealed.engine, ("DELETE FROM changes WHERE id = :id", {"id": int(change.ref_first)}))
    _problem(_verify(sealed.engine), "changes", change.ref_first, "missing: deleted")


def test_a_deleted_trail_entry_breaks_the_chain_there(sealed: Sealed) -> None:
    change = sealed.entries(trail.CHANGE)[1]
    _tamper(sealed.engine, ("DELETE FROM audit_trail WHERE seq = :s", {"s": change.seq}))
    report = _verify(sealed.engine)
    _problem(report, "audit_trail", change.seq, "missing (deleted)")
    _problem(report, "changes", change.ref_first, "not sealed")  # its record is now covered by nothing


def test_an_edited_trail_entry_is_named(sealed: Sealed) -> None:
    entry = sealed.entries(trail.DECISIONS)[1]
    _tamper(sealed.engine, ("UPDATE audit_trail SET ref_last = :r WHERE seq = :s", {"r": "zzz", "s": entry.seq}))
    _problem(_verify(sealed.engine), "audit_trail", entry.seq, "does not match its own hash")


def test_an_entry_rewritten_with_a_fresh_hash_breaks_the_next_link(sealed: Sealed) -> None:
    entries = sealed.entries()
    e = next(x for x in entries[:-1] if x.kind == trail.CHANGE)
    forged = trail.entry_hash(e.prev_hash, e.seq, e.kind, e.source_table, "999", "999", 1, e.digest)
    _tamper(sealed.engine, ("UPDATE audit_trail SET ref_first = '999', ref_last = '999', hash = :h WHERE seq = :s",
                            {"h": forged, "s": e.seq}))
    report = _verify(sealed.engine)
    _problem(report, "audit_trail", e.seq + 1, f"does not link to entry {e.seq}")
    _problem(report, "changes", "999", "missing")


def test_swapped_trail_entries_are_named(sealed: Sealed) -> None:
    a = sealed.entries(trail.DECISIONS)[0].seq
    b = a + 1
    _tamper(sealed.engine, ("UPDATE audit_trail SET seq = -1 WHERE seq = :a", {"a": a}),
            ("UPDATE audit_trail SET seq = :a WHERE seq = :b", {"a": a, "b": b}),
            ("UPDATE audit_trail SET seq = :b WHERE seq = -1", {"b": b}))
    report = _verify(sealed.engine)
    _problem(report, "audit_trail", a, "does not match its own hash")
    _problem(report, "audit_trail", b, "does not match its own hash")
    _problem(report, "audit_trail", a, f"does not link to entry {a - 1}")


def test_a_decision_inserted_behind_the_writers_back_is_unsealed(sealed: Sealed) -> None:
    row = DecisionEntry(id="forged-0001", at=datetime.now(UTC) - timedelta(hours=1), caller="crm-backend",
                        subject="user:P001", person_id="P001", action="read", resource_type="crm.customer",
                        resource_id="CUS-3", allowed=True, policy_version="1")
    with sealed.engine.begin() as conn:  # an INSERT passes the triggers: only UPDATE and DELETE are refused
        conn.execute(insert(DecisionRecord.__table__).values(
            id=row.id, at=row.at, caller=row.caller, subject=row.subject, person_id=row.person_id, action=row.action,
            resource_type=row.resource_type, resource_id=row.resource_id, allowed=True, policy_version="1",
            reason={}, fields={}))
    report = _verify(sealed.engine)
    assert _problem(report, "decision_log", "forged-0001", "not sealed").seq is None
    # one that claims a seal is an extra record of that entry
    seq = sealed.entries(trail.DECISIONS)[2].seq
    with sealed.engine.begin() as conn:
        conn.execute(insert(DecisionRecord.__table__).values(
            id="forged-0002", at=row.at, caller="c", subject="user:P001", person_id="P001", action="read",
            resource_type="crm.customer", resource_id=None, allowed=True, policy_version="1", reason={}, fields={},
            seal=seq))
    _problem(_verify(sealed.engine), "decision_log", "forged-0002", f"entry {seq} does not account for it")


def test_a_decision_moments_old_without_a_seal_is_only_a_note(sealed: Sealed) -> None:
    with sealed.engine.begin() as conn:
        conn.execute(insert(DecisionRecord.__table__).values(
            id="fresh-0001", at=datetime.now(UTC), caller="c", subject="user:P001", person_id="P001", action="read",
            resource_type="crm.customer", resource_id=None, allowed=True, policy_version="1", reason={}, fields={}))
    report = _verify(sealed.engine)
    assert report.ok and report.notes
    assert not _verify(sealed.engine, now=datetime.now(UTC) + timedelta(minutes=10)).ok


def test_a_moved_head_is_named(sealed: Sealed) -> None:
    last = sealed.entries()[-1]
    _tamper(sealed.engine, ("DELETE FROM audit_trail WHERE seq = :s", {"s": last.seq}))
    _problem(_verify(sealed.engine), "audit_trail_head", 1, "the last entries were deleted")


# -- the database refuses edits ----------------------------------------------------------------

@pytest.mark.postgres
def test_postgres_refuses_updates_and_deletes_of_the_trail(postgres_url: str,
                                                           app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(postgres_url)
    _decide(client, 3)
    engine = make_engine(postgres_url)
    try:
        for sql in ("UPDATE decision_log SET caller = 'x'", "DELETE FROM decision_log",
                    "UPDATE audit_trail SET kind = 'x'", "DELETE FROM audit_trail", "DELETE FROM changes",
                    "UPDATE changes SET reason = 'x'", "DELETE FROM audit_trail_head", "TRUNCATE audit_trail"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(sql))
        with engine.begin() as conn:  # idempotent
            assert trail.ensure_protection(conn) and trail.ensure_protection(conn)
        assert _verify(engine).ok
    finally:
        engine.dispose()


# -- concurrency -------------------------------------------------------------------------------

def _rows(prefix: str, k: int, n: int = 40) -> list[Any]:
    at = datetime.now(UTC)
    return [DecisionEntry(id=f"{prefix}-{k:03d}-{i:03d}", at=at, caller="c", subject="user:P001", person_id="P001",
                          action="read", resource_type="crm.customer", resource_id=f"CUS-{i}", allowed=bool(i % 2),
                          policy_version="1", fields={"phone": "visible"}).row() for i in range(n)]


def test_concurrent_writers_build_one_chain(db_url: str) -> None:
    prepare_database(make_settings(db_url))
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    errors: list[BaseException] = []

    def run(work: Callable[[int], None]) -> Callable[[], None]:
        def go() -> None:
            try:
                for k in range(15):
                    work(k)
            except BaseException as exc:  # reported below
                errors.append(exc)
        return go

    def change(k: int) -> None:
        with transaction(factory) as session:
            session.add(Change(actor="test", kind="test.concurrent", target=f"t{k}", reason="r", details={"k": k}))

    workers = [threading.Thread(target=run(lambda k, p=p: write_rows(engine, _rows(p, k)))) for p in ("a", "b", "c")]
    workers.append(threading.Thread(target=run(change)))
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    try:
        assert not errors, errors
        report = _verify(engine)
        assert report.ok, report.as_dict()
        with engine.connect() as conn:
            seqs = list(conn.scalars(select(tables.trail.c.seq).order_by(tables.trail.c.seq)))
            kinds = [r.kind for r in conn.execute(select(tables.trail.c.kind))]
        assert seqs == list(range(1, len(seqs) + 1))
        assert kinds.count(trail.DECISIONS) == 45 and kinds.count(trail.CHANGE) >= 15
        assert report.records == 45 * 40 + kinds.count(trail.CHANGE)
    finally:
        engine.dispose()


def test_a_rolled_back_change_leaves_no_entry(db_url: str) -> None:
    prepare_database(make_settings(db_url))
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    try:
        before = len(list(_entries(engine)))
        with factory() as session, session.begin():
            session.add(Change(actor="t", kind="test.kept", target="a", reason="r"))
            nested = session.begin_nested()
            session.add(Change(actor="t", kind="test.dropped", target="b", reason="r"))
            session.flush()
            nested.rollback()
        with pytest.raises(RuntimeError):
            _fail_after_a_change(factory)
        assert len(list(_entries(engine))) == before + 1
        assert _verify(engine).ok
    finally:
        engine.dispose()


def _fail_after_a_change(factory: Any) -> None:
    with factory() as session, session.begin():
        session.add(Change(actor="t", kind="test.failed", target="c", reason="r"))
        session.flush()
        raise RuntimeError("rolled back")


def _entries(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(tables.trail)))


# -- retention ---------------------------------------------------------------------------------

def test_purge_keeps_the_chain_verifiable_and_is_itself_in_the_trail(sealed: Sealed) -> None:
    old_changes = [int(e.ref_first) for e in sealed.entries(trail.CHANGE)]
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    while datetime.now(UTC) <= cutoff:
        pass
    _decide(sealed.client, 5)  # sealed after the cutoff: kept
    future = cutoff + timedelta(days=181)  # as if half a year had passed
    with pytest.raises(ValueError, match="under 180"), sealed.engine.begin() as conn:
        trail.purge(conn, before=cutoff, retention_days=179, now=future)
    with pytest.raises(ValueError, match="within the 365-day retention"), sealed.engine.begin() as conn:
        trail.purge(conn, before=cutoff, retention_days=365, now=future)
    with sealed.engine.begin() as conn:
        result = trail.purge(conn, before=cutoff, retention_days=180, now=future)
    assert result.decisions == 36 and result.first_seq == 1
    entries = sealed.entries()
    assert entries[0].seq == result.last_seq + 1 and entries[-1].kind == trail.RETENTION
    with sealed.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(DecisionRecord)) == 5
        assert conn.scalar(select(tables.trail_head.c.retained_from)) == result.retained_from
    report = _verify(sealed.engine)
    assert report.ok, report.as_dict()  # the old changes stay, their entries purged: not reported
    assert report.retained_from == result.retained_from
    with sealed.engine.connect() as conn:
        assert set(old_changes) <= set(conn.scalars(select(Change.id)))

    # a second purge starts where the first ended (and carries over what it remembered)
    cutoff2 = datetime.now(UTC) + timedelta(seconds=1)
    while datetime.now(UTC) <= cutoff2:
        pass
    _decide(sealed.client, 4)
    with sealed.engine.begin() as conn:
        again = trail.purge(conn, before=cutoff2, retention_days=180, now=cutoff2 + timedelta(days=181))
    assert again.first_seq == result.retained_from and again.decisions == 5
    assert _verify(sealed.engine).ok

    # deleting the oldest entries and moving the start by hand, without a retention entry, is caught
    first = sealed.entries()[0].seq
    _tamper(sealed.engine, ("DELETE FROM audit_trail WHERE seq = :s", {"s": first}),
            ("UPDATE audit_trail_head SET retained_from = :r", {"r": first + 1}))
    _problem(_verify(sealed.engine), "audit_trail", first + 1, "no retention entry records a purge")


def test_the_purge_never_cuts_an_entry_with_newer_records(db_url: str) -> None:
    prepare_database(make_settings(db_url))
    engine = make_engine(db_url)
    try:
        now = datetime.now(UTC)
        write_rows(engine, _rows("old", 0))
        newer = [(*r[:1], now + timedelta(days=10), *r[2:]) for r in _rows("new", 0)]
        write_rows(engine, newer)  # sealed now, but its records claim a later time
        with engine.begin() as conn:
            result = trail.purge(conn, before=now + timedelta(days=1), retention_days=180,
                                 now=now + timedelta(days=200))
        with engine.connect() as conn:
            left = set(conn.scalars(select(DecisionRecord.id)))
        assert result.decisions == 40 and left == {r[0] for r in newer}
        assert _verify(engine).ok
    finally:
        engine.dispose()


# -- adopting a database that predates the trail -----------------------------------------------

def test_records_older_than_the_trail_are_adopted_once(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        from app.migrate import upgrade

        upgrade(engine)
        write_rows(engine, _rows("pre", 0), seal=False)
        with engine.begin() as conn:
            conn.execute(insert(Change.__table__).values(at=datetime.now(UTC) - timedelta(days=3), actor="old",
                                                         kind="grant.create", target="grant:1", reason="r",
                                                         details={"a": 1}))
        assert not _verify(engine).ok
        with engine.begin() as conn:
            assert trail.adopt_existing(conn, batch=15) == 1 + 3  # the change, then 40 decisions by 15
        assert _verify(engine).ok
        write_rows(engine, _rows("late", 0), seal=False)  # once the trail has begun, nothing is adopted
        with engine.begin() as conn:
            assert trail.adopt_existing(conn) == 0
        _problem(_verify(engine, now=datetime.now(UTC) + timedelta(hours=1)), "decision_log", "late-000-000",
                 "not sealed")
    finally:
        engine.dispose()


def test_an_emptied_trail_is_not_adopted_again(sealed: Sealed) -> None:
    _tamper(sealed.engine, ("DELETE FROM audit_trail", {}), ("DELETE FROM audit_trail_head", {}))
    with sealed.engine.begin() as conn:
        assert trail.adopt_existing(conn) == 0
    report = _verify(sealed.engine)
    _problem(report, "decision_log", None, "no decisions entry of the retained chain")
    _problem(report, "changes", None, "not sealed")


# -- the command line --------------------------------------------------------------------------

def test_the_cli_verifies_and_purges_with_exit_codes(sealed: Sealed) -> None:
    ok = _cli(["audit", "verify"], sealed.url)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("audit trail: OK") and "head: seq" in ok.output
    seq = sealed.entries(trail.DECISIONS)[0].seq
    victim = sealed.rows_of(seq)[3]
    _tamper(sealed.engine, ("UPDATE decision_log SET allowed = NOT allowed WHERE id = :id"
                            if sealed.engine.dialect.name == "postgresql" else
                            "UPDATE decision_log SET allowed = 1 - allowed WHERE id = :id", {"id": victim}))
    bad = _cli(["audit", "verify"], sealed.url)
    assert bad.exit_code == 1 and f"decision_log id={victim} (entry {seq}): edited" in bad.output
    as_json = _cli(["audit", "verify", "--json"], sealed.url)
    report = json.loads(as_json.output)
    assert as_json.exit_code == 1 and report["ok"] is False
    assert report["problems"][0] | {"what": ""} == {"table": "decision_log", "ref": victim, "seq": seq, "what": ""}

    purged = _cli(["audit", "purge"], sealed.url)  # nothing is a year old
    assert purged.exit_code == 0 and json.loads(purged.output)["entries"] == 0
    refused = _cli(["audit", "purge", "--before", datetime.now(UTC).isoformat()], sealed.url)
    assert refused.exit_code == 1 and "within the 365-day retention" in refused.output


def test_the_cli_says_when_it_cannot_verify(tmp_path: Any) -> None:
    result = _cli(["audit", "verify"], f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.exit_code == 2 and "could not be verified" in result.output


def test_the_trail_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.trail import bench_verify, bench_write

    bench_write("sqlite", 6000, 3000, 1, [False, True])
    bench_verify("sqlite", 6000, 3000)
    out = capsys.readouterr().out
    assert "seal=off" in out and "seal=on" in out and "6,000 rows in 2 entries: ok" in out
