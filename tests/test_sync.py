"""Identity sync end to end through the API, on SQLite and PostgreSQL: an org directory (master of
people, status and departments) and a CRM push snapshots; decisions follow at once.

The org directory and the CRM are played by the test itself pushing snapshots (the push API is the
real entry point those systems use); pull connectors have their own recorded-fixture tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.config import SyncSettings
from app.directory.models import Account, Department, Grant, Person
from app.sync.models import SyncConflict
from tests.conftest import auth

SOURCES = """
masters: {people: hr, status: hr, name: hr, department: hr, departments: hr, employee_no: hr, mobile: hr,
          email: hr, manager: hr, position: oa}
mover_keeps: [employee]
defaults: {interval_minutes: 0, disable_threshold: 0.3}
sources:
  hr:  {connector: file, kind: directory}
  crm: {connector: file, kind: crm}
  oa:  {connector: file, kind: oa}
"""

HR_DEPTS = [{"key": "1", "name": "总公司"}, {"key": "2", "name": "销售中心", "parent_key": "1"},
            {"key": "3", "name": "华东大区", "parent_key": "2"}, {"key": "4", "name": "华南大区", "parent_key": "2"},
            {"key": "5", "name": "财务中心", "parent_key": "1"}]


def hr_account(pid: str, name: str, dept: str, status: str = "active") -> dict[str, Any]:
    return {"key": f"hr-{pid}", "name": name, "employee_no": f"E{pid}", "department_keys": [dept],
            "status": status, "mobile": f"1380000{pid[1:]:0>4}"}


HR_PEOPLE = [("P001", "张伟", "3"), ("P002", "王芳", "3"), ("P003", "李娜", "3"), ("P004", "刘洋", "4"),
             ("P005", "陈静", "5"), ("P007", "赵敏", "2")]


def hr_snapshot(version: str, changes: dict[str, dict[str, Any]] | None = None, drop: tuple[str, ...] = ()) -> dict:
    accounts = []
    for pid, name, dept in HR_PEOPLE:
        if pid in drop:
            continue
        accounts.append(hr_account(pid, name, dept) | (changes or {}).get(pid, {}))
    return {"version": version, "departments": HR_DEPTS, "accounts": accounts, "complete": ["departments", "accounts"]}


@pytest.fixture
def api(db_url: str, app_factory: Callable[..., TestClient], tmp_path: Path) -> TestClient:
    # db_url first: torn down last, after the app has flushed its decision log into it
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES, encoding="utf-8")
    return app_factory(db_url, sync=SyncSettings(sources_file=sources))


def push(api: TestClient, source: str, body: dict[str, Any], **params: Any) -> Any:
    return api.put(f"/v1/sync/sources/{source}/snapshot", json=body, headers=auth(), params=params)


def decide(api: TestClient, subject: str, action: str, rtype: str, rid: str) -> bool:
    body = {"subject": {"type": "user", "id": subject}, "action": {"name": action},
            "resource": {"type": rtype, "id": rid}}
    return bool(api.post("/access/v1/evaluation", json=body, headers=auth()).json()["decision"])


def db(api: TestClient) -> Any:
    return api.app.state.services.factory


def directory_digest(api: TestClient) -> tuple[Any, ...]:
    with db(api)() as s:
        return (
            tuple(s.execute(select(Person.id, Person.status, Person.department_id, Person.name)
                            .order_by(Person.id)).all()),
            tuple(s.execute(select(Account.system, Account.local_id, Account.person_id, Account.status)
                            .order_by(Account.system, Account.local_id)).all()),
            tuple(s.execute(select(Grant.id, Grant.revoked_at, Grant.suspended_at).order_by(Grant.id)).all()),
            s.scalar(select(func.count()).select_from(Department)),
            s.scalar(select(func.count()).select_from(SyncConflict)),
        )


def test_the_master_links_people_and_leavers_and_movers_follow_at_once(api: TestClient) -> None:
    first = push(api, "hr", hr_snapshot("v1"))
    assert first.status_code == 200, first.text
    run = first.json()
    assert run["status"] == "applied" and run["counts"]["linked"] == 6, run
    assert run["counts"].get("people_created", 0) == 0  # everyone matched by employee number
    with db(api)() as s:
        linked = s.scalars(select(Account).where(Account.system == "hr", Account.local_id == "hr-P001")).one()
        assert linked.person_id == "P001" and linked.link_method == "employee_no"
        assert linked.link_evidence["value"] == "EP001" and linked.mobile == "+8613800000001"
    again = push(api, "hr", hr_snapshot("v1")).json()
    assert again["status"] == "unchanged"

    # A leaver: denied right after the push.
    assert decide(api, "P002", "read", "crm.customer", "CUS-2")
    left = push(api, "hr", hr_snapshot("v2", {"P002": {"status": "left"}})).json()
    assert left["status"] == "applied" and left["counts"]["leavers"] == 1
    assert not decide(api, "P002", "read", "crm.customer", "CUS-2")

    # A mover: grants scoped to the old department are suspended, company-wide ones kept.
    assert decide(api, "P003", "read", "crm.customer", "CUS-1")
    moved = push(api, "hr", hr_snapshot("v3", {"P002": {"status": "left"}, "P003": {"department_keys": ["4"]}}))
    assert moved.json()["counts"]["grants_suspended"] == 2, moved.json()
    assert not decide(api, "P003", "read", "crm.customer", "CUS-1")
    with db(api)() as s:
        suspended = s.scalars(select(Grant).where(Grant.person_id == "P003", Grant.suspended_at.is_not(None))).all()
        assert {g.role for g in suspended} == {"sales_manager", "dept_manager"}
        assert all("moved from hq/sales/east/ to hq/sales/south/" in (g.suspend_reason or "") for g in suspended)
        assert s.get(Person, "P003").department_id == "D-SOUTH"
        kept = s.scalars(select(Grant).where(Grant.person_id == "P003", Grant.role == "employee")).one()
        assert kept.suspended_at is None


def test_a_conflict_is_recorded_with_both_values_and_the_master_wins(api: TestClient) -> None:
    assert push(api, "hr", hr_snapshot("v1")).json()["status"] == "applied"
    crm = {"departments": [{"key": "3", "name": "华东大区"}, {"key": "4", "name": "华南大区"}],
           "accounts": [{"key": "zhangwei01", "name": "张伟", "employee_no": "EP001", "department_keys": ["4"]},
                        {"key": "ghost01", "name": "无名", "employee_no": "E999"},
                        *({"key": k, "name": n} for k, n in (("wangfang01", "王芳"), ("lina01", "李娜"),
                                                             ("liuyang01", "刘洋"), ("yanglei01", "杨磊"),
                                                             ("test01", "测试"))),
                        ],
           "roles": [{"key": "r1", "name": "销售代表"}, {"key": "r9", "name": "神秘角色"}],
           "assignments": [{"account_key": "zhangwei01", "role_key": "r1"},
                           {"account_key": "zhangwei01", "role_key": "r9"}],
           "complete": ["accounts", "roles", "assignments"]}
    out = push(api, "crm", crm).json()
    assert out["status"] == "applied", out
    # P001's department differs; P006 left (the master says so) but the CRM still has him active.
    assert out["counts"]["conflicted"] == 2, api.get("/v1/sync/conflicts", headers=auth()).json()
    leaver = api.get("/v1/sync/conflicts", params={"person_id": "P006"}, headers=auth()).json()
    assert [(c["attribute"], c["master"]["value"], c["other"]["value"]) for c in leaver] == [
        ("status", "left", "active")]
    assert out["counts"]["orphans"] >= 1 and out["counts"]["failed"] == 1
    conflicts = api.get("/v1/sync/conflicts", params={"person_id": "P001"}, headers=auth()).json()
    assert conflicts == [c for c in conflicts if c["attribute"] == "department"] and len(conflicts) == 1
    assert conflicts[0]["master"] == {"source": "hr", "value": "D-EAST"}
    assert conflicts[0]["other"] == {"source": "crm", "value": "D-SOUTH"}
    with db(api)() as s:
        assert s.get(Person, "P001").department_id == "D-EAST"  # not overwritten
        ghost = s.scalars(select(Account).where(Account.local_id == "ghost01")).one()
        assert ghost.person_id is None  # an orphan
    errors = api.get(f"/v1/sync/runs/{out['id']}", headers=auth()).json()["errors"]
    assert any("神秘角色 has no mapping" in e["message"] for e in errors)
    # The CRM moves him back: the conflict closes.
    crm["accounts"][0]["department_keys"] = ["3"]
    push(api, "crm", crm)
    assert api.get("/v1/sync/conflicts", params={"person_id": "P001"}, headers=auth()).json() == []


def test_a_snapshot_that_would_disable_too_many_is_held_until_confirmed(api: TestClient) -> None:
    assert push(api, "hr", hr_snapshot("v1")).json()["status"] == "applied"
    before = directory_digest(api)
    held = push(api, "hr", hr_snapshot("v2", drop=("P001", "P002", "P003"))).json()
    assert held["status"] == "held" and held["counts"] == {"would_disable": 3, "active": 6}
    assert directory_digest(api) == before
    assert decide(api, "P001", "read", "crm.customer", "CUS-1")
    confirmed = api.post(f"/v1/sync/runs/{held['id']}/confirm", json={"apply": True, "reason": "重组确认"},
                         headers=auth()).json()
    assert confirmed["status"] == "applied" and confirmed["trigger"] == "confirm"
    assert not decide(api, "P001", "read", "crm.customer", "CUS-1")  # disabled in the master: a leaver
    held_after = api.get(f"/v1/sync/runs/{held['id']}", headers=auth()).json()
    assert held_after["status"] == "confirmed" and held_after["message"].endswith(": 重组确认")  # who and why
    assert api.post(f"/v1/sync/runs/{held['id']}/confirm", json={"apply": True, "reason": "again"},
                    headers=auth()).status_code == 409


@pytest.mark.parametrize(("body", "status", "code", "needle"), [
    ({"accounts": [{"key": "a", "name": 5}]}, 400, "invalid_request", "name"),
    ({"accounts": [{"name": "无键"}]}, 400, "invalid_request", "key"),
    ({"accounts": [{"key": "a", "name": "甲"}, {"key": "a", "name": "乙"}]}, 422, "invalid_snapshot", "appears twice"),
    ({"departments": [{"key": "9", "name": "孤儿部门", "parent_key": "404"}]}, 422, "invalid_snapshot", "parent"),
    ({"departments": [{"key": "x", "name": "甲", "parent_key": "y"}, {"key": "y", "name": "乙", "parent_key": "x"}]},
     422, "invalid_snapshot", "loops"),
    ({"accounts": [{"key": "a", "name": "甲\u0000"}]}, 400, None, ""),
    ({"accounts": [{"key": "a", "name": "甲"}], "assignments": [{"account_key": "zzz", "role_key": "r"}]},
     422, "invalid_snapshot", "not in the snapshot"),
    ({"accounts": [{"key": "a", "name": "甲", "status": "gone"}]}, 400, "invalid_request", "status"),
    ({"acounts": []}, 400, "invalid_request", "acounts"),
])
def test_a_bad_snapshot_is_refused_whole_and_changes_nothing(api: TestClient, body: dict[str, Any], status: int,
                                                             code: str | None, needle: str) -> None:
    assert push(api, "hr", hr_snapshot("v1")).json()["status"] == "applied"
    before = directory_digest(api)
    out = push(api, "hr", body)
    assert out.status_code == status, out.text
    if code:
        assert out.json()["error"]["code"] == code and needle in out.text
    assert directory_digest(api) == before


def test_an_unknown_source_and_a_version_reused_with_other_content_are_refused(api: TestClient) -> None:
    assert push(api, "nosuch", hr_snapshot("v1")).status_code == 404
    assert push(api, "hr", hr_snapshot("v1")).json()["status"] == "applied"
    reused = push(api, "hr", hr_snapshot("v1", {"P001": {"name": "张伟伟"}}))
    assert reused.status_code == 409


def test_an_admin_breaks_and_confirms_links_and_later_syncs_keep_them(api: TestClient) -> None:
    push(api, "hr", hr_snapshot("v1"))
    broken = api.put("/v1/sync/accounts/hr/hr-P004/link", json={"person_id": None, "reason": "工号录错"},
                     headers=auth())
    assert broken.status_code == 200 and broken.json()["link"]["state"] == "broken"
    live = api.app.state.services.holder.current.directory.accounts[("hr", "hr-P004")]
    assert live.person_id is None  # the live directory view follows at once (no full reload)
    body = {"subject": {"type": "user", "id": "hr:hr-P004"}, "action": {"name": "read"},
            "resource": {"type": "crm.customer", "id": "CUS-3"}}
    answer = api.post("/access/v1/evaluation", json=body, headers=auth()).json()
    assert answer["decision"] is False and answer["context"]["reason"]["code"] == "orphan_account"
    push(api, "hr", hr_snapshot("v2", {"P004": {"name": "刘洋 "}}))
    with db(api)() as s:
        assert s.scalars(select(Account.person_id).where(Account.local_id == "hr-P004")).one() is None
    confirmed = api.put("/v1/sync/accounts/crm/test01/link", json={"person_id": "P007", "reason": "核实为赵敏"},
                        headers=auth()).json()
    assert confirmed["person_id"] == "P007" and confirmed["link"]["state"] == "confirmed"
    assert api.put("/v1/sync/accounts/crm/nope/link", json={"person_id": "P007", "reason": "x"},
                   headers=auth()).status_code == 404


def test_a_fifty_thousand_row_snapshot_applies_and_an_oversized_body_is_413(
        app_factory: Callable[..., TestClient], sqlite_url: str, tmp_path: Path) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES, encoding="utf-8")
    api = app_factory(sqlite_url, sync=SyncSettings(sources_file=sources, max_body_mb=16))
    accounts = [{"key": f"u{i:05d}", "name": f"员工{i}", "employee_no": f"N{i:05d}", "department_keys": ["3"]}
                for i in range(50_000)]
    body = {"version": "big", "departments": HR_DEPTS, "accounts": accounts, "complete": ["departments", "accounts"]}
    out = push(api, "hr", body)
    assert out.status_code == 200 and out.json()["status"] == "applied", out.text[:500]
    assert out.json()["counts"]["people_created"] == 50_000
    with db(api)() as s:
        assert s.scalar(select(func.count()).select_from(Person).where(Person.id.like("hr-%"))) == 50_000
    before = directory_digest(api)
    huge = body | {"version": "huge", "accounts": accounts * 4}  # ~17 MB: over this service's 16 MiB limit
    refused = push(api, "hr", huge)
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "too_large"
    assert directory_digest(api) == before


def test_a_source_is_pulled_through_its_connector_on_demand(
        app_factory: Callable[..., TestClient], sqlite_url: str, tmp_path: Path) -> None:
    """The CSV export of a system with no API (tests/fixtures/sync/file/csv), pulled by the file connector."""
    fixtures = Path(__file__).parent / "fixtures" / "sync" / "file" / "csv"
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES.replace("hr:  {connector: file, kind: directory}",
                                       f"hr:  {{connector: file, kind: directory, path: '{fixtures}'}}"),
                       encoding="utf-8")
    api = app_factory(sqlite_url, sync=SyncSettings(sources_file=sources))
    run = api.post("/v1/sync/sources/hr/runs", headers=auth())
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "applied" and run.json()["trigger"] == "manual"
    assert run.json()["counts"]["created"] >= 2
    assert api.get("/v1/sync/runs", params={"source": "hr"}, headers=auth()).json()[0]["id"] == run.json()["id"]
    no_puller = api.post("/v1/sync/sources/crm/runs", headers=auth())
    assert no_puller.status_code == 400 and "push a snapshot" in no_puller.json()["error"]["message"]


def test_a_partial_snapshot_replaces_only_the_members_of_its_roles(api: TestClient) -> None:
    push(api, "hr", hr_snapshot("v1"))
    accounts = [{"key": "liuyang01", "name": "刘洋", "employee_no": "EP004"},
                {"key": "lina01", "name": "李娜", "employee_no": "EP003"}]
    roles = [{"key": "r1", "name": "销售代表"}, {"key": "r2", "name": "大客户经理"}]
    full = {"accounts": accounts, "roles": roles, "complete": ["roles", "assignments"],
            "assignments": [{"account_key": "liuyang01", "role_key": "r1"},
                            {"account_key": "lina01", "role_key": "r2"}]}
    first = push(api, "crm", full).json()
    assert first["counts"].get("grants_created") == 2, first
    # One role's member list (a SCIM group PATCH, say): r1 now has lina01 only; r2 is not spoken of.
    partial = {"accounts": [], "roles": [roles[0]], "complete": ["assignments:r1"],
               "assignments": [{"account_key": "lina01", "role_key": "r1"}]}
    out = push(api, "crm", partial).json()
    assert (out["counts"]["grants_created"], out["counts"]["grants_revoked"]) == (1, 1), out
    with db(api)() as s:
        held = {(g.person_id, g.source_role) for g in s.scalars(select(Grant).where(
            Grant.source_system == "crm", Grant.revoked_at.is_(None)))}
    assert held == {("P003", "销售代表"), ("P003", "大客户经理")}


def test_the_command_line_pulls_and_pushes_and_lists_runs(tmp_path: Path) -> None:
    """`accessgov sync run / push / runs` against a SQLite file, with the CSV fixture as the pulled source."""
    import json

    from click.testing import CliRunner

    from app.cli import main
    from tests.conftest import ROOT

    fixtures = Path(__file__).parent / "fixtures" / "sync" / "file" / "csv"
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES.replace("hr:  {connector: file, kind: directory}",
                                       f"hr:  {{connector: file, kind: directory, path: '{fixtures}'}}"),
                       encoding="utf-8")
    env = {"ACCESSGOV_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", "ACCESSGOV_POLICIES_DIR": str(ROOT / "policies"),
           "ACCESSGOV_SYNC__SOURCES_FILE": str(sources)}
    runner = CliRunner()
    pulled = runner.invoke(main, ["sync", "run", "hr"], env=env, catch_exceptions=False)
    assert pulled.exit_code == 0, pulled.output
    assert json.loads(pulled.output)["status"] == "applied"
    snapshot = tmp_path / "crm.json"
    snapshot.write_text(json.dumps({"version": "1", "accounts": [{"key": "a1", "name": "甲"}],
                                    "complete": ["accounts"]}, ensure_ascii=False), encoding="utf-8")
    pushed = runner.invoke(main, ["sync", "push", "crm", str(snapshot)], env=env, catch_exceptions=False)
    assert pushed.exit_code == 0 and json.loads(pushed.output)["counts"]["created"] == 1, pushed.output
    snapshot.write_text('{"accounts": [{"key": "a1"}]}', encoding="utf-8")
    bad = runner.invoke(main, ["sync", "push", "crm", str(snapshot)], env=env)
    assert bad.exit_code == 1 and "not a valid snapshot" in bad.output
    listed = runner.invoke(main, ["sync", "runs"], env=env, catch_exceptions=False).output.splitlines()
    assert [line.split("\t")[2:5] for line in listed] == [["crm", "push", "applied"], ["hr", "cli", "applied"]]
    unknown = runner.invoke(main, ["sync", "run", "nosuch"], env=env)
    assert unknown.exit_code == 1 and "no sync source" in unknown.output


def test_scheduled_ticks_in_two_processes_run_a_source_once(
        app_factory: Callable[..., TestClient], sqlite_url: str, tmp_path: Path) -> None:
    """Two schedulers (two processes' worth of services on one database) tick at the same time."""
    from app.main import build_sync
    from app.sync.scheduler import SyncScheduler

    fixtures = Path(__file__).parent / "fixtures" / "sync" / "file" / "csv"
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES.replace("hr:  {connector: file, kind: directory}",
                                       f"hr:  {{connector: file, kind: directory, path: '{fixtures}', "
                                       "interval_minutes: 60}"), encoding="utf-8")
    api = app_factory(sqlite_url, sync=SyncSettings(sources_file=sources, schedule=False))
    services = api.app.state.services
    other = build_sync(services.settings, services.factory, services.holder, services.policy)
    first, second = SyncScheduler(services.sync), SyncScheduler(other)
    assert first.jobs() == {"hr": 60}
    assert first.tick("hr")["status"] == "applied"
    assert second.tick("hr") is None  # ran less than an interval ago, in another process
    runs = api.get("/v1/sync/runs", params={"source": "hr"}, headers=auth()).json()
    assert [(r["trigger"], r["status"]) for r in runs] == [("schedule", "applied")]
    with other._lease("hr"):  # a run in progress elsewhere: the tick is skipped, not queued
        assert first.tick("hr") is None


def test_people_changes_reach_this_and_other_processes_without_a_rebuild(api: TestClient) -> None:
    from app.authz.directory import StateHolder
    from app.metrics import Metrics
    from app.policy.refresher import StateRefresher
    from app.policy.service import PolicyService
    from tests.conftest import ROOT

    push(api, "hr", hr_snapshot("v1"))
    services = api.app.state.services
    other_holder = StateHolder()
    other = PolicyService(factory=services.factory, holder=other_holder, policies_dir=ROOT / "policies",
                          metrics=Metrics())
    other.reload()
    refresher = StateRefresher(factory=services.factory, holder=other_holder, policy=other, interval=60)
    engine, other_engine = services.holder.current.engine, other_holder.current.engine
    out = push(api, "hr", hr_snapshot("v2", {"P004": {"status": "left"}})).json()
    assert out["counts"]["leavers"] == 1
    assert services.holder.current.engine is engine  # the directory was patched, not rebuilt
    assert services.holder.current.directory.people["P004"].status == "left"
    assert refresher.check_once() is True
    assert other_holder.current.engine is other_engine
    assert other_holder.current.directory.people["P004"].status == "left"
    assert not decide(api, "P004", "read", "crm.customer", "CUS-3")


def test_incremental_events_apply_together_or_not_at_all(api: TestClient) -> None:
    push(api, "hr", hr_snapshot("v1"))
    events = {"events": [
        {"type": "account.upsert", "account": {"key": "newbie", "name": "新人", "employee_no": "N1",
                                               "department_keys": ["3"]}},
        {"type": "account.delete", "key": "hr-P005"},
    ]}
    out = api.post("/v1/sync/sources/hr/events", json=events, headers=auth())
    assert out.status_code == 200, out.text
    run = out.json()
    assert run["trigger"] == "events" and run["status"] == "applied"
    assert run["counts"]["people_created"] == 1 and run["counts"]["leavers"] == 1, run["counts"]
    with db(api)() as s:
        assert s.get(Person, "P005").status == "left"
    # The CRM says who holds one role now (the seed's crm accounts are linked already).
    members = {"events": [{"type": "role.members", "role": {"key": "r1", "name": "销售代表"},
                           "members": ["liuyang01", "liuyang01"]}]}
    crm = api.post("/v1/sync/sources/crm/events", json=members, headers=auth()).json()
    assert crm["counts"]["grants_created"] == 1, crm
    with db(api)() as s:
        assert s.scalars(select(Grant).where(Grant.source_role == "销售代表", Grant.revoked_at.is_(None))
                         ).one().person_id == "P004"
    before = directory_digest(api)
    bad = {"events": [{"type": "account.upsert", "account": {"key": "x", "name": "甲"}},
                      {"type": "account.delete", "key": "nobody"}]}
    refused = api.post("/v1/sync/sources/hr/events", json=bad, headers=auth())
    assert refused.status_code == 404 and directory_digest(api) == before
    wrong = api.post("/v1/sync/sources/hr/events", json={"events": [{"type": "account.rename"}]}, headers=auth())
    assert wrong.status_code == 400 and directory_digest(api) == before


def test_pullers_give_connectors_their_credentials_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wiring from sources.yaml to a connector (a stub connector records what it was given)."""
    from app.sync import pullers
    from app.sync.canonical import Snapshot
    from app.sync.config import SourceConfig, SyncConfig

    seen: dict[str, Any] = {}

    class Stub:
        def __init__(self, **kw: Any) -> None:
            seen.update(kw)

        def pull(self) -> Snapshot:
            return Snapshot(source="oa")

    monkeypatch.setitem(pullers.CONNECTORS, "ecology", Stub)
    source = SourceConfig("oa", "ecology", "oa", 0, 0.2, 900, {
        "base_url": "https://oa.example.cn", "credentials_env": {"secret_key": "T_ECOLOGY_KEY"},
        "options": {"auth": "md5", "role_members_path": "data.roles"}})
    pull = pullers.build_pullers(SyncConfig({"oa": source}, {}), Path("policies/sync"))["oa"]
    with pytest.raises(RuntimeError, match="T_ECOLOGY_KEY"):
        pull()  # the credential is not set: the run fails and says which variable
    monkeypatch.setenv("T_ECOLOGY_KEY", "k-123")
    assert pull() == Snapshot(source="oa")
    assert seen["credentials"] == {"secret_key": "k-123"} and seen["base_url"] == "https://oa.example.cn"
    assert (seen["auth"], seen["role_members_path"], seen["source"]) == ("md5", "data.roles", "oa")


def test_a_leaving_delegator_takes_the_deputys_delegated_role_with_them(api: TestClient) -> None:
    """A changed person who delegates a role: the state is rebuilt, so the deputy's copy lapses."""
    push(api, "hr", hr_snapshot("v1"))
    assert decide(api, "P002", "approve", "oa.expense", "EXP-1")  # P002 deputises P003's dept_manager role
    engine = api.app.state.services.holder.current.engine
    push(api, "hr", hr_snapshot("v2", {"P003": {"status": "left"}}))
    assert api.app.state.services.holder.current.engine is not engine  # reloaded in full, not patched
    assert not decide(api, "P002", "approve", "oa.expense", "EXP-1")
