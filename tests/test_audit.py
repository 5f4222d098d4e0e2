"""The quarterly access audit: planted problems found, a clean company left alone, the lifecycle,
exactly-once scheduling across processes, the API's refusals.

Everything runs against the real database (SQLite, and PostgreSQL where marked) and the real
decision history the demo loader records through the engine.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from app.demo.load import load_demo
from app.demo.orgdata import build_demo_org
from app.directory.models import Account, Department, Grant, Person
from app.main import build_services
from app.migrate import upgrade
from audit import tables as at
from audit.config import KINDS, load_config
from audit.reports import verify_evidence_pack
from audit.schedule import latest_due, schedule_key
from tests.conftest import ROOT, auth, make_settings

# The demo's planted problems (DemoOrg.anomalies) and the finding kind each must be reported under.
PLANTED_AS = {"leaver_still_active": "leaver_active", "mover_kept_grants": "stale_grant_after_move",
              "sod_conflict": "sod_conflict", "unused_admin": "unused_permission", "orphan_account": "orphan_account",
              "peer_outlier": "peer_outlier", "expired_temporary_grant": "expired_access",
              "expiring_grant": "expiring_access", "dormant_account": "dormant_account"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo company with its 90 days of decisions, audited once."""
    settings = make_settings(f"sqlite:///{tmp_path_factory.mktemp('audit') / 'demo.db'}")
    services = build_services(settings)
    upgrade(services.factory.kw["bind"])
    services.policy.import_baseline(actor="test", reason="baseline")
    load_demo(services)
    run = services.audit.run(trigger="manual", actor="test")
    yield services, run
    services.factory.kw["bind"].dispose()


def _subject(f: dict[str, Any]) -> str:
    return f["person_id"] or f"{f['system']}:{f['account']}"


def test_every_planted_problem_is_found_under_its_kind(demo: Any) -> None:
    services, run = demo
    assert run["status"] == "done"
    org = build_demo_org(today=datetime.now(UTC).date())
    found = {(f["kind"], _subject(f)) for f in services.audit.list_findings(limit=1000, status=["open"])["items"]}
    missing = [(a.kind, a.subject) for a in org.anomalies if (PLANTED_AS[a.kind], a.subject) not in found]
    assert not missing, missing
    assert {PLANTED_AS[a.kind] for a in org.anomalies} <= set(run["counts"]["by_kind"])


def test_findings_carry_evidence_and_a_fix(demo: Any) -> None:
    services, _ = demo
    items = services.audit.list_findings(limit=1000)["items"]
    for f in items:
        assert f["kind"] in KINDS and f["severity"] in ("low", "medium", "high", "critical")
        assert f["evidence"], f
        assert f["recommendation"]["zh"] and f["recommendation"]["en"], f
        assert f["evidence_quality"] in ("usage", "no_usage_data", "directory")
        assert f["quarters"] and f["status"] == "open"
    org = build_demo_org(today=datetime.now(UTC).date())
    leaver = next(a.subject for a in org.anomalies
                  if a.kind == "leaver_still_active" and "离职后仍有登录" in a.summary_zh)
    crm = [f for f in items if f["kind"] == "leaver_active" and f["person_id"] == leaver]
    # the leaver who kept using the CRM: the evidence shows the use after the exit date
    assert crm and crm[0]["evidence"]["used_after_leaving"], crm
    assert crm[0]["recommendation"]["action"] == "disable_account"
    sod = [f for f in items if f["kind"] == "sod_conflict"]
    assert any(f["evidence"]["rule"] == "SOD-CONTRACT-PAYMENT" for f in sod)  # CRM and OA together
    unused = [f for f in items if f["kind"] == "unused_permission" and f["evidence"].get("privileged")]
    assert unused and all(f["grant_id"] for f in unused)


def test_the_run_report_says_what_was_found(demo: Any) -> None:
    """The report lists every planted problem under its kind's label, in Chinese and in English."""
    services, run = demo
    org = build_demo_org(today=datetime.now(UTC).date())
    from audit.i18n import t

    zh = services.audit.report("run", run["id"], fmt="html", lang="zh-CN")[0].decode()
    en = services.audit.report("run", run["id"], fmt="html", lang="en")[0].decode()
    for a in org.anomalies:
        kind = PLANTED_AS[a.kind]
        assert t(f"kind.{kind}", "zh-CN") in zh and t(f"kind.{kind}", "en") in en
        subject = a.subject.split(":")[-1]
        assert subject in zh, (a.kind, a.subject)
    xlsx = services.audit.report("run", run["id"], fmt="xlsx", lang="zh-CN")[0]
    assert xlsx[:2] == b"PK"


def test_the_same_problems_next_run_are_the_same_findings(demo: Any) -> None:
    services, _ = demo
    before = {f["key"]: f["id"] for f in services.audit.list_findings(limit=1000, status=["open"])["items"]}
    again = services.audit.run(trigger="manual", actor="test")
    assert again["counts"]["new"] == 0 and again["counts"]["seen_again"] == len(before)
    after = {f["key"]: f["id"] for f in services.audit.list_findings(limit=1000, status=["open"])["items"]}
    assert after == before


# --------------------------------------------------------------------------- a clean company

CLEAN_DEPTS = [("D-HQ", "hq/", None), ("D-S1", "hq/s1/", "D-HQ"), ("D-S2", "hq/s2/", "D-HQ"),
               ("D-FIN", "hq/fin/", "D-HQ")]


def seed_clean(session: Session) -> None:
    """A company with nothing wrong: everyone active, linked, recently active, roles from the sources
    in their own department, every permission and field they hold used within the window."""
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=400)
    for did, path, parent in CLEAN_DEPTS:
        session.add(Department(id=did, code=did, name=did, parent_id=parent, path=path))
        session.flush()
    people: list[tuple[str, str, str, list[tuple[str, str | None, str, str]]]] = []
    n = 0
    for dept in ("D-S1", "D-S2"):
        for _ in range(6):
            n += 1
            people.append((f"C{n:03d}", dept, "销售代表",
                           [("employee", None, "oa", "普通员工"), ("sales", dept, "crm", "销售代表")]))
    for _ in range(3):
        n += 1
        people.append((f"C{n:03d}", "D-FIN", "会计",
                       [("employee", None, "oa", "普通员工"), ("finance", None, "oa", "会计")]))
    services_policy = load_config(ROOT / "policies")
    assert services_policy.sod  # the real sod.yaml is what is checked
    for pid, dept, position, grants in people:
        session.add(Person(id=pid, name=f"员工{pid}", department_id=dept, position=position, status="active",
                           hired_on=date(2020, 1, 1), employee_no=pid, email=f"{pid.lower()}@example.com"))
        session.flush()
        for system in ("crm", "oa", "idp"):
            session.add(Account(system=system, local_id=f"{system}-{pid}", person_id=pid, status="active",
                                department_id=dept if system != "idp" else None, last_login_at=now - timedelta(days=2),
                                link_method="employee_no", link_state="confirmed", employee_no=pid))
        for role, gdept, source, source_role in grants:
            session.add(Grant(person_id=pid, role=role, department_id=gdept, include_subtree=False,
                              source_system=source, source_role=source_role, granted_by=f"{source}-sync",
                              reason="from the source", valid_from=long_ago, created_at=long_ago))
    session.flush()


def _use_everything(services: Any) -> None:
    """Usage and field usage for every permission and classified field each person holds (as the
    decision-log writer would have folded it in within the window)."""
    from app.audits.population import role_infos

    roles = role_infos(services.holder.current.engine.policy)
    now = datetime.now(UTC) - timedelta(days=1)
    with services.factory() as session, session.begin():
        grants = session.execute(select(Grant.person_id, Grant.role)).all()
        usage, fields = {}, {}
        for pid, role in grants:
            for p in roles[role].perms:
                usage[(pid, p.resource_type, p.action)] = {
                    "person_id": pid, "resource_type": p.resource_type, "action": p.action, "count": 3, "allows": 3,
                    "denies": 0, "first_used": now - timedelta(days=60), "last_used": now}
            for f in roles[role].fields:
                fields[(pid, f.resource_type, f.field)] = {
                    "person_id": pid, "resource_type": f.resource_type, "field": f.field, "count": 2,
                    "first_used": now - timedelta(days=60), "last_used": now}
        from app.decisions.models import Usage

        session.execute(insert(Usage), list(usage.values()))
        session.execute(insert(at.field_usage), list(fields.values()))


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_clean_company_has_no_findings(db: str, request: pytest.FixtureRequest,
                                         app_factory: Callable[..., TestClient]) -> None:
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url")
    client = app_factory(url, seed=seed_clean)
    services = client.app.state.services  # type: ignore[attr-defined]
    _use_everything(services)
    r = client.post("/v1/audit/runs", headers=auth())
    assert r.status_code == 201, r.text
    assert r.json()["counts"]["total"] == 0, client.get("/v1/audit/findings", headers=auth()).json()


# --------------------------------------------------------------------------- lifecycle through the API

@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_lifecycle_resolve_accept_suppress_reopen(db: str, request: pytest.FixtureRequest,
                                                   app_factory: Callable[..., TestClient]) -> None:
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url")
    client = app_factory(url, seed=seed_clean)
    services = client.app.state.services  # type: ignore[attr-defined]
    _use_everything(services)
    h = auth()
    # plant two problems: an orphan CRM account and a CRM account of someone who left
    with services.factory() as session, session.begin():
        session.add(Account(system="crm", local_id="ghost", person_id=None, status="active"))
        session.get(Person, "C001").status = "left"
        session.get(Person, "C001").left_on = date.today() - timedelta(days=3)
    run1 = client.post("/v1/audit/runs", headers=h).json()
    assert run1["counts"]["by_kind"] == {"orphan_account": 1, "leaver_active": 3}, run1["counts"]
    items = client.get("/v1/audit/findings", params={"kind": "orphan_account"}, headers=h).json()["items"]
    orphan = items[0]
    assert orphan["account"] == "ghost" and orphan["severity"] == "high"

    # accept the orphan's risk until next month (needs owner and a future date)
    bad = client.post(f"/v1/audit/findings/{orphan['id']}/status", headers=h,
                      json={"status": "accepted", "reason": "共享账号"})
    assert bad.status_code == 409 and bad.json()["error"]["code"] == "conflict"
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    ok = client.post(f"/v1/audit/findings/{orphan['id']}/status", headers=h,
                     json={"status": "accepted", "reason": "共享坐席账号", "until": until, "owner": "C002"})
    assert ok.status_code == 200 and ok.json()["status"] == "accepted"
    assert [e["to_status"] for e in ok.json()["history"]] == ["open", "accepted"]

    # suppress the leaver's IdP findings (not CRM) until next quarter
    sup = client.post("/v1/audit/suppressions", headers=h, json={
        "kind": "leaver_active", "match": {"person_id": "C001", "system": "idp"}, "owner": "C002",
        "reason": "IdP 账号由集团统一回收", "expires_at": until})
    assert sup.status_code == 201, sup.text

    run2 = client.post("/v1/audit/runs", headers=h).json()
    assert run2["counts"]["new"] == 0 and run2["counts"]["seen_again"] == 4
    statuses = {f["key"]: f["status"] for f in client.get("/v1/audit/findings", headers=h).json()["items"]}
    assert statuses["orphan_account:crm:ghost"] == "accepted"
    assert statuses["leaver_active:C001:idp:idp-C001"] == "suppressed"
    assert statuses["leaver_active:C001:crm:crm-C001"] == "open"

    # the CRM disables the leaver's account: that finding resolves itself on the next run
    with services.factory() as session, session.begin():
        session.execute(text("UPDATE accounts SET status = 'disabled' WHERE local_id = 'crm-C001'"))
    client.post("/v1/audit/runs", headers=h)
    resolved = client.get("/v1/audit/findings", params={"status": "resolved"}, headers=h).json()["items"]
    assert [f["key"] for f in resolved] == ["leaver_active:C001:crm:crm-C001"]
    # and it comes back open if the account is enabled again
    with services.factory() as session, session.begin():
        session.execute(text("UPDATE accounts SET status = 'active' WHERE local_id = 'crm-C001'"))
    client.post("/v1/audit/runs", headers=h)
    back = client.get(f"/v1/audit/findings/{resolved[0]['id']}", headers=h).json()
    assert back["status"] == "open" and [e["to_status"] for e in back["history"]] == ["open", "resolved", "open"]

    # an acceptance past its date reopens the finding at the next run
    future = datetime.now(UTC) + timedelta(days=31)
    services.audit.run(trigger="manual", actor="test", now=future)
    assert client.get(f"/v1/audit/findings/{orphan['id']}", headers=h).json()["status"] == "open"
    # each finding remembers the quarters it was seen in
    quarters = client.get(f"/v1/audit/findings/{orphan['id']}", headers=h).json()["quarters"]
    assert len(quarters) == len(set(quarters)) >= 1

    summary = client.get("/v1/audit/summary", headers=h).json()
    assert summary["open_by_kind"]["orphan_account"] == 1 and summary["last_run"]["status"] == "done"


def test_refusals_are_clear_and_change_nothing(client: TestClient) -> None:
    h = auth()
    assert client.get("/v1/audit/findings/999", headers=h).status_code == 404
    r = client.post("/v1/audit/findings/1/status", headers=h, json={"status": "resolved", "reason": "x"})
    assert r.status_code == 400 and r.json()["error"]["details"], r.text  # not a status one may set
    r = client.post("/v1/audit/suppressions", headers=h, json={
        "kind": "orphan_account", "owner": "x", "reason": "y", "expires_at": "2020-01-01T00:00:00Z"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    r = client.post("/v1/audit/suppressions", headers=h, json={
        "kind": "no_such_kind", "owner": "x", "reason": "y", "expires_at": "2099-01-01T00:00:00Z"})
    assert r.status_code == 400 and r.json()["error"]["details"]
    r = client.get("/v1/audit/findings", params={"severity": "huge"}, headers=h)
    assert r.status_code == 400
    assert client.get("/v1/audit/suppressions", headers=h).json() == []
    # the audit scope is required
    assert client.post("/v1/audit/runs", headers=auth(scopes=["accessgov.decide"])).status_code == 403


# --------------------------------------------------------------------------- the schedule

def test_latest_due_is_the_last_quarter_start_in_shanghai() -> None:
    now = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    due = latest_due("0 2 1 1,4,7,10 *", "Asia/Shanghai", now)
    assert due is not None and due.isoformat() == "2026-10-01T02:00:00+08:00"
    assert schedule_key(due) == "schedule:2026-10-01T02:00+08:00"
    # just before the next quarter starts in Shanghai (it is already 1 January there at 18:00 UTC)
    assert latest_due("0 2 1 1,4,7,10 *", "Asia/Shanghai", datetime(2026, 12, 31, 17, 59, tzinfo=UTC)) == due
    assert latest_due("0 2 1 1,4,7,10 *", "Asia/Shanghai", datetime(2026, 12, 31, 18, 0, tzinfo=UTC)).month == 1


_RACER = textwrap.dedent("""
    import json, sys
    from datetime import datetime
    from app.config import Settings, AuditSettings
    from app.main import build_services
    settings = Settings(environment="test", database_url=sys.argv[1], policies_dir=sys.argv[2],
                        audit=AuditSettings(schedule=False))
    services = build_services(settings)
    services.policy.reload()
    now = datetime.fromisoformat(sys.argv[3])
    sys.stdin.readline()  # start together
    run = services.audit.run_if_due(now)
    print(json.dumps({"ran": run is not None, "trigger": run and run["trigger"]}))
""")


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_two_processes_due_at_once_run_the_audit_once(db: str, request: pytest.FixtureRequest,
                                                      tmp_path: Path) -> None:
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url")
    from tests.conftest import prepare_database

    prepare_database(make_settings(url))
    now = datetime(2026, 10, 1, 18, 30, tzinfo=UTC)  # 02:30 on 2 October in Shanghai: caught up, not on time
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, url, str(ROOT / "policies"), now.isoformat()],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT) for _ in range(2)]
    outs = [p.communicate("go\n", timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    import json

    results = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert sorted(r["ran"] for r in results) == [False, True], results
    assert next(r for r in results if r["ran"])["trigger"] == "catchup"
    services = build_services(make_settings(url))
    with services.factory.kw["bind"].connect() as conn:
        rows = conn.execute(select(at.runs.c.run_key, at.runs.c.status)).all()
    services.factory.kw["bind"].dispose()
    assert rows == [("schedule:2026-10-01T02:00+08:00", "done")]


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_reminder_round_is_claimed_by_one_process(db: str, request: pytest.FixtureRequest) -> None:
    """Every process checks the reminders each minute. Two that both find a campaign due (as two processes
    can, in the same minute) race to claim its round: one wins and reminds, so each reviewer gets one
    reminder, not one per process."""
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url")
    from app.config import AuditSettings
    from tests.conftest import prepare_database

    settings = make_settings(url, audit=AuditSettings(schedule=False, reminder_hours=24))
    prepare_database(settings)
    first, second = build_services(settings), build_services(settings)  # two processes' services
    first.policy.reload()
    campaign = first.audit.launch_campaign(name="提醒竞争", scope={}, due_at=datetime.now(UTC) + timedelta(days=7),
                                           no_response="keep", auto_revoke_cap=0, actor="test")
    engine = first.factory.kw["bind"]
    with engine.begin() as conn:  # the mini organisation has no managers: give two items reviewers
        ids = [r.id for r in conn.execute(select(at.campaign_items.c.id).where(
            at.campaign_items.c.campaign_id == campaign["id"]).order_by(at.campaign_items.c.id).limit(2))]
        for item_id, reviewer in zip(ids, ("P002", "P003"), strict=True):
            conn.execute(at.campaign_items.update().where(at.campaign_items.c.id == item_id).values(
                reviewer_id=reviewer))
    now = datetime.now(UTC) + timedelta(hours=25)
    assert first.audit.reminders_due(now) == second.audit.reminders_due(now) == [campaign["id"]]  # both see it
    claims = [second.audit.claim_reminder_round(campaign["id"], now),
              first.audit.claim_reminder_round(campaign["id"], now + timedelta(seconds=1))]
    assert claims == [True, False]
    assert second.audit.remind(campaign["id"], now=now)  # the winner sends the round
    assert first.audit.remind_due(now + timedelta(seconds=2)) == 0  # the loser's next minute: nothing due
    with engine.connect() as conn:
        sent = conn.execute(select(at.campaign_reminders.c.reviewer_id)).scalars().all()
    assert sorted(sent) == ["P002", "P003"]  # one each
    assert first.audit.remind_due(now + timedelta(hours=23)) == 0  # the next round is 24 hours on
    assert first.audit.remind_due(now + timedelta(hours=25)) == 1
    for services in (first, second):
        services.factory.kw["bind"].dispose()


def test_schedule_endpoint_and_a_run_that_is_not_yet_due(client: TestClient) -> None:
    body = client.get("/v1/audit/schedule", headers=auth()).json()
    assert body["cron"] == "0 2 1 1,4,7,10 *" and body["timezone"] == "Asia/Shanghai"
    assert body["latest_due"] and body["next_due"] > body["latest_due"]
    services = client.app.state.services  # type: ignore[attr-defined]
    due = datetime.fromisoformat(body["latest_due"])
    first = services.audit.run_if_due(due + timedelta(minutes=1))
    assert first is not None and first["trigger"] == "schedule"
    assert services.audit.run_if_due(due + timedelta(minutes=2)) is None  # once per due time
    assert client.get("/v1/audit/schedule", headers=auth()).json()["latest_run"]["status"] == "done"


# --------------------------------------------------------------------------- a campaign end to end

@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def demo_client(request: pytest.FixtureRequest, app_factory: Callable[..., TestClient]) -> TestClient:
    """The service on the demo company (directory only: no decision history), on SQLite and PostgreSQL."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    client = app_factory(url, seed=None)
    load_demo(client.app.state.services, history=False)  # type: ignore[attr-defined]
    return client


def _reads_east_customer(client: TestClient, person: str) -> bool:
    body = {"subject": {"type": "user", "id": person}, "action": {"name": "read"},
            "resource": {"type": "crm.customer", "id": "CUS-AUDIT-1",
                         "properties": {"department": "D-SALES-EAST", "owner": "P00014"}}}
    r = client.post("/access/v1/evaluation", headers=auth(), json=body)
    assert r.status_code == 200, r.text
    return bool(r.json()["decision"])


def test_campaign_launch_review_revoke_deny_rollback(demo_client: TestClient) -> None:
    client, h = demo_client, auth()
    assert client.post("/v1/audit/runs", headers=h).status_code == 201
    stale = client.get("/v1/audit/findings", headers=h,
                       params={"kind": "stale_grant_after_move", "person_id": "P00013"}).json()["items"]
    assert len(stale) == 1
    grant_id = stale[0]["grant_id"]
    assert _reads_east_customer(client, "P00013")  # the mover still reads east customers

    due = (datetime.now(UTC) + timedelta(days=14)).isoformat()
    r = client.post("/v1/audit/campaigns", headers=h, json={
        "name": "2026Q4 复核", "scope": {"only_findings": True}, "due_at": due, "no_response": "recommendation",
        "auto_revoke_cap": 2})
    assert r.status_code == 201, r.text
    campaign = r.json()
    assert campaign["status"] == "active" and campaign["population"]["items"] >= 5
    items = client.get(f"/v1/audit/campaigns/{campaign['id']}/items", headers=h,
                       params={"limit": 1000}).json()["items"]
    item = next(i for i in items if i["grant_id"] == grant_id)
    assert item["recommendation"] == "revoke" and item["risk"] == "high" and stale[0]["id"] in item["finding_ids"]
    manager = item["reviewer_id"]
    assert item["reviewer_basis"] == "manager" and manager and manager != "P00013"
    assert all(i["reviewer_id"] != i["person_id"] for i in items)  # nobody reviews themselves
    theirs = client.get(f"/v1/audit/campaigns/{campaign['id']}/items", headers=h,
                        params={"person_id": "P00013"}).json()
    assert theirs["items"]
    assert {i["id"] for i in theirs["items"]} == {i["id"] for i in items if i["person_id"] == "P00013"}
    assert client.get(f"/v1/audit/campaigns/{campaign['id']}/items", headers=h,
                      params={"person_id": "x" * 65}).status_code in (400, 422)

    url = f"/v1/audit/campaigns/{campaign['id']}/items/{item['id']}"
    own = client.post(f"{url}/decision", headers=h, json={"decision": "keep", "reason": "我需要", "reviewer": "P00013"})
    assert own.status_code == 409
    done = client.post(f"{url}/decision", headers=h, json={
        "decision": "revoke", "reason": "已调至市场部，不再负责华东客户", "reviewer": manager})
    assert done.status_code == 200, done.text
    assert done.json()["apply_status"] == "applied" and done.json()["apply_result"]["change"] == "grant.revoke"
    assert not _reads_east_customer(client, "P00013")  # the very next decision is a deny
    changes = client.get("/v1/changes", headers=h).json()
    assert any(c["kind"] == "grant.revoke" and c["target"] == f"grant:{grant_id}" for c in changes["items"]) \
        if isinstance(changes, dict) else any(c["target"] == f"grant:{grant_id}" for c in changes)
    again = client.post(f"{url}/decision", headers=h, json={"decision": "keep", "reason": "x", "reviewer": manager})
    assert again.status_code == 409

    # the report and the evidence pack show the decision and its change
    html = client.get(f"/v1/audit/campaigns/{campaign['id']}/report", headers=h)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "已调至市场部，不再负责华东客户" in html.text and "P00013" in html.text
    pdf = client.get(f"/v1/audit/campaigns/{campaign['id']}/report", headers=h, params={"format": "pdf", "lang": "en"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    pack = client.get(f"/v1/audit/campaigns/{campaign['id']}/evidence-pack", headers=h)
    assert pack.status_code == 200
    assert verify_evidence_pack(pack.content, expected_digest=pack.headers["X-Evidence-Digest"]) == []
    with zipfile.ZipFile(io.BytesIO(pack.content)) as z:
        decisions = json.loads(z.read("data/decisions.json")) if "data/decisions.json" in z.namelist() else \
            json.loads(z.read(next(n for n in z.namelist() if n.endswith("decisions.json"))))
    mine = next(d for d in (decisions if isinstance(decisions, list) else decisions["decisions"])
                if d["item_id"] == item["id"])
    assert mine["decision"] == "revoke" and mine["apply_result"] == "applied"

    back = client.post(f"{url}/rollback", headers=h, json={"reason": "复核有误，恢复"})
    assert back.status_code == 200 and back.json()["apply_status"] == "rolled_back"
    assert _reads_east_customer(client, "P00013")

    # bulk decisions take low-risk items only, all or none
    pending = client.get(f"/v1/audit/campaigns/{campaign['id']}/items", headers=h,
                         params={"pending": True, "limit": 1000}).json()["items"]
    high = [i for i in pending if i["risk"] != "low"]
    assert high
    refused = client.post(f"/v1/audit/campaigns/{campaign['id']}/decisions", headers=h, json={
        "item_ids": [high[0]["id"]], "decision": "keep", "reason": "批量保留", "reviewer": "P00001"})
    assert refused.status_code == 409
    low = [i for i in pending if i["risk"] == "low" and i["person_id"] != "P00001"][:2]
    assert low
    kept = client.post(f"/v1/audit/campaigns/{campaign['id']}/decisions", headers=h, json={
        "item_ids": [i["id"] for i in low], "decision": "keep", "reason": "临时授权，到期自动失效",
        "reviewer": "P00001"})
    assert kept.status_code == 200 and [k["decision"] for k in kept.json()] == ["keep"] * len(low), kept.text
    pending = [i for i in pending if i["id"] not in {x["id"] for x in low}]
    accept = [i for i in pending if i["risk"] == "low" and i["person_id"] != "P00001"][:2]
    body = {"item_ids": [i["id"] for i in accept], "decision": "accept_risk", "reason": "业务需要，下季度复核",
            "reviewer": "P00001"}
    undated = client.post(f"/v1/audit/campaigns/{campaign['id']}/decisions", headers=h, json=body)
    assert undated.status_code in (400, 422), undated.text  # accept_risk needs an end date
    accepted = client.post(f"/v1/audit/campaigns/{campaign['id']}/decisions", headers=h,
                           json={**body, "until": "2099-03-31T23:59:59+08:00"})
    assert accepted.status_code == 200, accepted.text
    assert all(a["decision"] == "accept_risk" and a["accept_until"] for a in accepted.json())
    pending = [i for i in pending if i["id"] not in {x["id"] for x in accept}]

    reminders = client.post(f"/v1/audit/campaigns/{campaign['id']}/remind", headers=h).json()
    reviewers_pending = {i["reviewer_id"] for i in pending if i["reviewer_id"]}
    assert {r["reviewer_id"] for r in reminders} == reviewers_pending and all(r["pending"] > 0 for r in reminders)

    preview = client.get(f"/v1/audit/campaigns/{campaign['id']}/close-preview", headers=h).json()
    assert len(preview["revoke"]) <= 2 and preview["undecided"] == len(pending)
    closed = client.post(f"/v1/audit/campaigns/{campaign['id']}/close", headers=h).json()
    assert closed["status"] == "closed" and closed["result"]["revoke"] == preview["revoke"]
    assert closed["result"]["applied"] == len(preview["revoke"]) and closed["result"]["failed"] == 0
    assert closed["progress"]["by_decision"].get("pending") is None
    late = client.post(f"{url}/decision", headers=h, json={"decision": "keep", "reason": "x", "reviewer": manager})
    assert late.status_code == 409

    # runs, finding events and every review decision are in the trail: intact, and an edited decision is named
    from audit import trail

    engine = client.app.state.services.factory.kw["bind"]  # type: ignore[attr-defined]
    with engine.connect() as conn:
        report = trail.verify(conn)
    assert report.ok, [p.as_dict() for p in report.problems][:5]
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_campaign_items SET reason = '无异议' WHERE id = :id"), {"id": item["id"]})
    with engine.connect() as conn:
        report = trail.verify(conn)
    assert any(p.table == "audit_campaign_items" and p.ref == str(item["id"]) for p in report.problems), report


def test_least_privilege_proposal_and_apply(demo_client: TestClient) -> None:
    client, h = demo_client, auth()
    proposal = client.get("/v1/audit/people/P00149/least-privilege", headers=h).json()
    revoke = [g["grant_id"] for g in proposal["grants"] if g["proposal"] == "revoke"]
    assert revoke  # no history loaded: nothing of the outlier's extra roles was used
    keep = [g["grant_id"] for g in proposal["grants"] if g["proposal"] == "keep"]
    if keep:
        bad = client.post("/v1/audit/people/P00149/least-privilege/apply", headers=h,
                          json={"grant_ids": keep[:1], "reason": "x"})
        assert bad.status_code == 400
    r = client.post("/v1/audit/people/P00149/least-privilege/apply", headers=h,
                    json={"grant_ids": revoke, "reason": "按90天实际使用收敛"})
    assert r.status_code == 200, r.text
    grants = client.get("/v1/grants", headers=h, params={"person_id": "P00149"}).json()
    live = {g["id"] for g in (grants["items"] if isinstance(grants, dict) else grants) if not g.get("revoked_at")}
    assert not live & set(revoke)


# --------------------------------------------------------------------------- reminders

def test_reminders_reach_the_group_robot_and_are_scheduled(app_factory: Callable[..., TestClient],
                                                           sqlite_url: str) -> None:
    """The WeCom group robot is a local HTTP server here (the vendor's API cannot run in the tests):
    it records what it is sent and answers like WeCom (errcode 0, or an error for one reviewer)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from app.config import AuditSettings

    got: list[dict[str, Any]] = []

    class Robot(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            got.append(body)
            refuse = "P00001" in body["text"]["content"]
            answer = json.dumps({"errcode": 93000 if refuse else 0, "errmsg": "x" if refuse else "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Robot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/cgi-bin/webhook/send?key=test"
        client = app_factory(sqlite_url, seed=None, audit=AuditSettings(
            schedule=False, reminder_webhook_url=url, reminder_webhook_kind="wecom", reminder_hours=24))
        services = client.app.state.services  # type: ignore[attr-defined]
        load_demo(services, history=False)
        services.audit.run(trigger="manual", actor="test")
        campaign = services.audit.launch_campaign(
            name="提醒测试", scope={"only_findings": True}, due_at=datetime.now(UTC) + timedelta(days=7),
            no_response="keep", auto_revoke_cap=0, actor="test")
        with services.factory.kw["bind"].connect() as conn:
            from audit.campaigns import pending_by_reviewer

            pending = {r: n for r, n in pending_by_reviewer(conn, campaign["id"]).items() if r}
        # nothing is due right after launch; a day later every reviewer with pending items is reminded once
        assert services.audit.remind_due() == 0 and not got
        later = datetime.now(UTC) + timedelta(hours=25)
        assert services.audit.remind_due(later) == 1
        assert len(got) == len(pending)
        assert all(m["msgtype"] == "text" and "待复核" in m["text"]["content"] for m in got)
        assert any(m["text"]["mentioned_mobile_list"] for m in got)  # @ the reviewer by mobile
        sent = client.get(f"/v1/audit/campaigns/{campaign['id']}", headers=auth()).json()
        assert sent["status"] == "active"
        with services.factory.kw["bind"].connect() as conn:
            rows = conn.execute(select(at.campaign_reminders.c.reviewer_id, at.campaign_reminders.c.pending,
                                       at.campaign_reminders.c.channel)).all()
        assert {r for r, _, _ in rows} == set(pending) and all(n == pending[r] for r, n, _ in rows)
        assert {c for _, _, c in rows} <= {"wecom", "wecom:failed"}
        assert services.audit.remind_due(later + timedelta(hours=1)) == 0  # not again within 24 hours
    finally:
        server.shutdown()
        server.server_close()
