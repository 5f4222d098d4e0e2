"""The console's identity sync pages: sources and runs as the sync service has them, a pull run by the system
administrator (and refused, and logged, for the others), a held run confirmed or discarded, conflicts, orphans."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import SyncSettings
from app.directory.models import Account
from tests.conftest import ROOT, auth, console_env, services_of
from tests.support.idp import TestIdP
from tests.test_console_auth import seed, sign_in
from tests.test_console_pages import console_decisions, csrf_of

pytestmark = pytest.mark.idp
CSV_EXPORT = Path(__file__).parent / "fixtures" / "sync" / "file" / "csv"

# The seeded CRM accounts as the CRM itself lists them: P001 moved to 华南 there (a conflict with the
# directory), P006 left but the CRM has him active (a conflict), and an account nobody owns (an orphan).
CRM_ACCOUNTS: list[dict[str, Any]] = [
    {"key": "zhangwei01", "name": "张伟", "employee_no": "EP001", "department_keys": ["4"]},
    {"key": "ghost01", "name": "无名", "employee_no": "E999"},
    *({"key": k, "name": n} for k, n in (("wangfang01", "王芳"), ("lina01", "李娜"), ("liuyang01", "刘洋"),
                                         ("yanglei01", "杨磊"), ("test01", "测试")))]


@pytest.fixture
def console(app_factory: Callable[..., TestClient], sqlite_url: str, console_idp: TestIdP,
            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TestClient:
    """The shipped sources plus a file export the file connector can pull (`hrfile`)."""
    console_env(monkeypatch, console_idp.issuer)
    sources = tmp_path / "sources.yaml"
    shipped = (ROOT / "policies" / "sync" / "sources.yaml").read_text(encoding="utf-8")
    hrfile = f"  hrfile: {{connector: file, kind: other, interval_minutes: 0, path: '{CSV_EXPORT}'}}\n"
    sources.write_text(shipped + hrfile, encoding="utf-8")
    client = app_factory(sqlite_url, seed=seed, sync=SyncSettings(sources_file=sources))
    services_of(client).audit.run(trigger="manual", actor="test")
    return client


def push_crm(console: TestClient, accounts: list[dict[str, Any]]) -> dict[str, Any]:
    """The CRM pushes its accounts (the API a system uses)."""
    out = console.put("/v1/sync/sources/crm/snapshot", json={"accounts": accounts, "complete": ["accounts"]},
                      headers=auth())
    assert out.status_code == 200, out.text
    return dict(out.json())



def sync_of(console: TestClient) -> Any:
    return services_of(console).sync


def test_the_system_admin_sees_sources_and_runs_and_pulls_a_source(console: TestClient) -> None:
    pushed = push_crm(console, CRM_ACCOUNTS)
    assert sign_in(console, "wugang").status_code == 303
    page = console.get("/console/sync")
    assert page.status_code == 200
    sources = page.text.split('id="sync-sources"')[1].split("</table>")[0]
    for name in sync_of(console).config.sources:
        assert f'id="source-{name}"' in sources
    assert re.search(rf'id="source-crm">.*?/console/sync/runs/{pushed["id"]}"', sources, re.S)
    assert 'id="source-wecom"' in sources and "从未运行" in sources
    runs = page.text.split('id="sync-runs"')[1]
    listed = [int(i) for i in re.findall(r'href="/console/sync/runs/(\d+)"', runs)]
    assert listed == [r["id"] for r in sync_of(console).list_runs(None, 50)] and pushed["id"] in listed
    assert 'id="run-hrfile"' in page.text and 'id="run-wecom"' not in page.text  # wecom has no credentials here

    done = console.post("/console/sync/sources/hrfile/run", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert done.status_code == 303, done.text
    run_id = int(re.search(r"/console/sync/runs/(\d+)\?saved=1$", done.headers["location"]).group(1))  # type: ignore[union-attr]
    run = sync_of(console).get_run(run_id)
    assert run["source"] == "hrfile" and run["trigger"] == "manual" and run["actor"] == "P903"
    assert run["status"] == "applied" and run["counts"]["created"] >= 2, run
    after = console.get(done.headers["location"])
    assert 'id="saved"' in after.text and 'id="run-status"' in after.text and "已应用" in after.text
    assert f"created</td><td class=\"num\">{run['counts']['created']}<" in after.text


def test_a_source_that_cannot_be_pulled_says_why_and_nothing_runs(console: TestClient) -> None:
    assert sign_in(console, "wugang").status_code == 303
    csrf = csrf_of(console.get("/console/sync").text)
    before = sync_of(console).list_runs(None, 50)
    refused = console.post("/console/sync/sources/wecom/run", data={"csrf": csrf})
    assert refused.status_code == 422 and 'id="error"' in refused.text and "push a snapshot" in refused.text
    assert console.post("/console/sync/sources/nosuch/run", data={"csrf": csrf}).status_code == 404
    assert console.post("/console/sync/sources/Bad%20Name/run", data={"csrf": csrf}).status_code == 404
    forged = console.post("/console/sync/sources/hrfile/run", data={"csrf": "wrong"})
    assert forged.status_code == 403 and 'id="message-csrf"' in forged.text
    assert sync_of(console).list_runs(None, 50) == before


def test_the_security_admin_sees_sync_but_a_run_is_refused_and_logged(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    page = console.get("/console/sync")
    assert page.status_code == 200 and 'id="sync-sources"' in page.text
    assert 'action="/console/sync/sources/' not in page.text  # no button for a reader
    refused = console.post("/console/sync/sources/hrfile/run", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 403 and 'id="message-403"' in refused.text
    assert sync_of(console).list_runs("hrfile", 50) == []
    decision_id = re.search(r'id="decision-id">([^<]+)<', refused.text).group(1)  # type: ignore[union-attr]
    record = {r.id: r for r in console_decisions(console, "P901")}[decision_id]
    assert record.action == "manage_sync" and record.resource_id == "sync:hrfile" and record.allowed is False


def test_the_auditor_is_refused_every_sync_page(console: TestClient) -> None:
    run = push_crm(console, CRM_ACCOUNTS)
    assert sign_in(console, "zhouqiang").status_code == 303
    for path in ("/console/sync", f"/console/sync/runs/{run['id']}", "/console/sync/conflicts",
                 "/console/sync/orphans"):
        refused = console.get(path)
        assert refused.status_code == 403 and 'id="message-403"' in refused.text, path
        assert 'id="nav-sync"' not in refused.text
    denied = [r for r in console_decisions(console, "P902") if r.action == "view_sync"]
    assert len(denied) == 4 and not any(r.allowed for r in denied)


def test_a_held_run_is_confirmed_only_by_the_system_admin(console: TestClient) -> None:
    push_crm(console, CRM_ACCOUNTS)
    held = push_crm(console, CRM_ACCOUNTS[:1])  # would disable six of seven CRM accounts
    assert held["status"] == "held"
    assert sign_in(console, "sunli").status_code == 303
    seen = console.get(f"/console/sync/runs/{held['id']}")
    assert seen.status_code == 200 and 'id="held"' in seen.text and 'id="confirm-apply"' not in seen.text
    refused = console.post(f"/console/sync/runs/{held['id']}/confirm",
                           data={"csrf": csrf_of(seen.text), "apply": "1", "reason": "x"})
    assert refused.status_code == 403
    assert sync_of(console).get_run(held["id"])["status"] == "held"

    assert sign_in(console, "wugang").status_code == 303
    page = console.get(f"/console/sync/runs/{held['id']}")
    assert 'id="confirm-apply"' in page.text and 'id="confirm-discard"' in page.text
    assert "would_disable</td><td class=\"num\">6<" in page.text
    forged = console.post(f"/console/sync/runs/{held['id']}/confirm",
                          data={"csrf": "wrong", "apply": "1", "reason": "x"})
    assert forged.status_code == 403 and sync_of(console).get_run(held["id"])["status"] == "held"
    bad = console.post(f"/console/sync/runs/{held['id']}/confirm", data={"csrf": csrf_of(page.text), "apply": "yes"})
    assert bad.status_code == 422 and 'id="error"' in bad.text
    unexplained = console.post(f"/console/sync/runs/{held['id']}/confirm",
                               data={"csrf": csrf_of(page.text), "apply": "0", "reason": " "})
    assert unexplained.status_code == 422 and sync_of(console).get_run(held["id"])["status"] == "held"
    discarded = console.post(f"/console/sync/runs/{held['id']}/confirm", follow_redirects=False,
                             data={"csrf": csrf_of(page.text), "apply": "0", "reason": "组织调整未完成"})
    assert discarded.status_code == 303 and discarded.headers["location"].endswith(f"/runs/{held['id']}?saved=1")
    gone = sync_of(console).get_run(held["id"])
    assert gone["status"] == "discarded" and gone["message"] == "discarded by P903: 组织调整未完成"
    again = console.post(f"/console/sync/runs/{held['id']}/confirm",
                         data={"csrf": csrf_of(page.text), "apply": "1", "reason": "确认"})
    assert again.status_code == 409 and 'id="error"' in again.text

    second = push_crm(console, CRM_ACCOUNTS[:1])
    applied = console.post(f"/console/sync/runs/{second['id']}/confirm",
                           data={"csrf": csrf_of(page.text), "apply": "1", "reason": "确认"}, follow_redirects=False)
    assert applied.status_code == 303
    new_id = int(applied.headers["location"].split("/runs/")[1].split("?")[0])
    new = sync_of(console).get_run(new_id)
    assert new_id != second["id"] and new["status"] == "applied" and new["trigger"] == "confirm"
    assert new["actor"] == "P903" and sync_of(console).get_run(second["id"])["status"] == "confirmed"
    with services_of(console).factory() as s:
        assert s.scalars(select(Account.status).where(Account.system == "crm",
                                                      Account.local_id == "lina01")).one() != "active"
    for missing in ("999999", "abc", "0", "9" * 30):
        assert console.get(f"/console/sync/runs/{missing}").status_code == 404
    assert console.post("/console/sync/runs/999999/confirm",
                        data={"csrf": csrf_of(page.text), "apply": "1", "reason": "确认"}).status_code == 404


def test_conflicts_and_orphans_show_what_the_services_say(console: TestClient) -> None:
    push_crm(console, CRM_ACCOUNTS)
    services = services_of(console)
    services.audit.run(trigger="manual", actor="test")
    assert sign_in(console, "sunli").status_code == 303
    page = console.get("/console/sync/conflicts")
    assert page.status_code == 200 and 'id="conflicts"' in page.text
    conflicts = services.sync.list_conflicts(open_only=True, person_id=None, limit=100)
    assert {(c["person_id"], c["attribute"]) for c in conflicts} == {("P001", "department"), ("P006", "status")}
    for c in conflicts:
        row = page.text.split(f'id="conflict-{c["id"]}"')[1].split("</tr>")[0]
        assert c["person_id"] in row and c["master"]["value"] in row and c["other"]["value"] in row
    assert "D-SOUTH" in page.text and "在职状态" in page.text

    orphans = console.get("/console/sync/orphans")
    assert orphans.status_code == 200 and 'id="orphans"' in orphans.text
    found_rows = re.finditer(r'<td class="account">([^<]+)</td>.*?</tr>', orphans.text, re.S)
    rows = {m.group(1): m.group(0) for m in found_rows}
    assert {"test01", "ghost01", "yanglei01"} <= set(rows)
    assert "zhangwei01" not in rows and "1001" not in rows  # owned, and a disabled account
    assert "人员已离职" in rows["yanglei01"] and "未关联人员" in rows["ghost01"]
    found = services.audit.list_findings(kind=["orphan_account"], status=["open"], limit=100)["items"]
    assert found
    for f in found:
        assert f'href="/console/findings/{f["id"]}"' in rows[f["account"]]

    assert console.get("/console/lang/en?next=/console/sync/orphans", follow_redirects=False).status_code == 303
    english = console.get("/console/sync/orphans")
    assert "Orphan accounts" in english.text and "Person left" in english.text
    assert "Attribute conflicts" in console.get("/console/sync/conflicts").text
    assert "Identity sync" in console.get("/console/sync").text

    assert sign_in(console, "wugang").status_code == 303  # may see sync, not the findings: no link to them
    theirs = console.get("/console/sync/orphans")
    assert theirs.status_code == 200 and "test01" in theirs.text and 'href="/console/findings/' not in theirs.text
