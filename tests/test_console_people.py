"""The console's person pages on the mini organisation after an audit run: search, one person's accounts,
grants, effective permissions, an explanation, usage, findings and least privilege, each compared with the
service's own answer; a grant revoked from the console, an auditor refused (and the refusal logged), CSRF."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.directory.models import Grant, Person
from tests.conftest import auth, services_of
from tests.test_console_auth import sign_in
from tests.test_console_pages import console_decisions, csrf_of, inline_script

pytestmark = pytest.mark.idp


@pytest.fixture
def console(audited_console: TestClient) -> TestClient:
    return audited_console



def grants_of(console: TestClient, person_id: str) -> dict[int, Grant]:
    with services_of(console).factory() as s:
        return {g.id: g for g in s.scalars(select(Grant).where(Grant.person_id == person_id))}


def grant_of(console: TestClient, person_id: str, role: str) -> Grant:
    return next(g for g in grants_of(console, person_id).values() if g.role == role)


def section(page: str, element_id: str) -> str:
    """The text of the element with ``element_id`` up to the next section (enough to look inside)."""
    start = page.index(f'id="{element_id}"')
    end = page.find("<section", start)
    return page[start:end if end > 0 else None]


def evaluate(console: TestClient, person_id: str, rtype: str, action: str, record: str) -> dict[str, Any]:
    body = {"subject": {"type": "user", "id": person_id}, "action": {"name": action},
            "resource": {"type": rtype, "id": record}}
    answer = console.post("/access/v1/evaluation", json=body, headers=auth())
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def explain_api(console: TestClient, person_id: str, rtype: str, action: str, record: str) -> dict[str, Any]:
    body = {"subject": {"type": "user", "id": person_id}, "action": {"name": action},
            "resource": {"type": rtype, "id": record}}
    answer = console.post("/v1/explain", json=body, headers=auth())
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def assert_no_script(page: str) -> None:
    assert not inline_script(page) and " style=" not in page and not re.search(r"\son[a-z]+=", page)


def test_the_search_finds_people_by_name_account_and_department(console: TestClient) -> None:
    assert sign_in(console, "zhouqiang").status_code == 303
    by_name = console.get("/console/people", params={"q": "张伟"})
    assert by_name.status_code == 200 and 'id="people"' in by_name.text
    assert re.findall(r'class="person-link" href="/console/people/([^"]+)"', by_name.text) == ["P001"]
    assert 'id="people-total">共 1 人<' in by_name.text
    by_account = console.get("/console/people", params={"q": "lina01"})
    assert re.findall(r'class="person-link" href="/console/people/([^"]+)"', by_account.text) == ["P003"]
    by_department = console.get("/console/people", params={"q": "华南"})
    assert re.findall(r'class="person-link" href="/console/people/([^"]+)"', by_department.text) == ["P004"]
    everyone = console.get("/console/people")
    with services_of(console).factory() as s:
        people = sorted(s.scalars(select(Person.id)))
    assert re.findall(r'class="person-link" href="/console/people/([^"]+)"', everyone.text) == people
    left = console.get("/console/people", params={"status": "left"})
    assert re.findall(r'class="person-link" href="/console/people/([^"]+)"', left.text) == ["P006"]
    nobody = console.get("/console/people", params={"q": "没有这个人%_"})
    assert nobody.status_code == 200 and 'id="people"' not in nobody.text
    for bad in ({"page": "abc"}, {"page": "-3"}, {"status": "nonsense"}, {"q": "x" * 5000}):
        assert console.get("/console/people", params=bad).status_code == 200
    assert_no_script(everyone.text)


def test_the_person_page_shows_the_services_accounts_grants_findings_and_proposal(console: TestClient) -> None:
    manual = services_of(console).grants.create_grant(
        actor="P901", person_id="P003", role="sales", department_id="D-SOUTH", include_subtree=False,
        reason="临时支援华南大区", valid_from=None, valid_until=datetime.now(UTC) + timedelta(days=30))
    assert sign_in(console, "zhouqiang").status_code == 303
    plain = console.get("/console/people/P003")  # the proposal reads everyone's usage: only on request
    assert 'id="lp-load"' in plain.text and '<tr id="lp-' not in plain.text
    page = console.get("/console/people/P003?proposal=1")
    assert page.status_code == 200, page.text
    text = page.text
    assert "李娜" in text and "华东大区" in text and 'id="person-status"' in text and "在职" in text
    grants = console.get("/v1/grants", params={"person_id": "P003"}, headers=auth()).json()
    shown = {int(i) for i in re.findall(r'<tr id="grant-(\d+)"', text)}
    assert shown == {g["id"] for g in grants} and shown
    for g in grants:
        row = section(text, f"grant-{g['id']}").split("</tr>")[0]
        assert f"<code>{g['role']}</code>" in row
        origin = {"crm": "源系统同步：CRM", "oa": "源系统同步：OA", "manual": "手工授予"}[g["source_system"]]
        assert origin in row and g["reason"] in row
    manual_row = section(text, f"grant-{manual.id}").split("</tr>")[0]
    assert "华南大区" in manual_row and "操作人 P901" in manual_row
    accounts = console.get("/v1/accounts", params={"person_id": "P003"}, headers=auth()).json()
    assert [a["local_id"] for a in accounts] == ["lina01"]
    assert f'id="account-{accounts[0]["id"]}"' in section(text, "accounts") and "lina01" in section(text, "accounts")
    services = services_of(console)
    effective = services.insight.effective(person_id="P003")["permissions"]
    assert f'id="effective-total">共 {len(effective)} 条' in text
    assert len(re.findall(r'<tr class="perm ', section(text, "effective"))) == len(effective)
    findings = services.audit.list_findings(person_id="P003", limit=1000)["items"]
    assert findings, "the audit found nothing about P003"
    linked = {int(i) for i in re.findall(r'href="/console/findings/(\d+)"', section(text, "person-findings"))}
    assert linked == {f["id"] for f in findings}
    proposal = console.get("/v1/audit/people/P003/least-privilege", headers=auth()).json()
    lp = section(text, "least-privilege")
    assert {int(i) for i in re.findall(r'<tr id="lp-(\d+)"', lp)} == {g["grant_id"] for g in proposal["grants"]}
    # An auditor reads the proposal but is offered neither revocation nor the apply form.
    assert "/revoke" not in text and 'id="lp-form"' not in text and 'name="grant"' not in text
    deputy = console.get("/console/people/P002")  # P003's dept_manager delegated to P002
    assert 'id="delegations"' in deputy.text and 'href="/console/people/P003"' in section(deputy.text, "delegations")
    assert_no_script(text)


def test_the_explanation_matches_the_decision_api(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    for person, record, expected in (("P001", "CUS-1", True), ("P001", "CUS-3", False)):
        page = console.get(f"/console/people/{person}",
                           params={"type": "crm.customer", "action": "read", "id": record})
        assert page.status_code == 200, page.text
        result = section(page.text, "explain-result")
        api = explain_api(console, person, "crm.customer", "read", record)
        decision = evaluate(console, person, "crm.customer", "read", record)
        assert api["decision"] is decision["decision"] is expected
        shown = re.search(r'id="explain-decision"[^>]*>([^<]+)<', result)
        assert shown and shown.group(1) == ("允许" if expected else "拒绝")
        assert f'id="explain-code">{api["code"]}<' in result
        if api["decided_by"]:
            assert f'id="explain-rule">{html.escape(api["decided_by"])}<' in result
        for rule in api["rules"]:
            assert html.escape(rule["text"]) in result and html.escape(rule["outcome"]) in result
    fields = console.get("/console/people/P001", params={"type": "crm.customer", "action": "read", "id": "CUS-1",
                                                          "fields": "name, phone"})
    assert "<dt>name</dt>" in section(fields.text, "explain-result")
    unknown = console.get("/console/people/P001", params={"type": "crm.customer", "action": "read",
                                                           "department": "NO-SUCH-DEPT"})
    assert 'id="explain-code">unknown_department<' in unknown.text
    bad = console.get("/console/people/P001", params={"type": "crm.customer", "action": "read", "id": "x" * 400})
    assert bad.status_code == 422 and 'id="error"' in bad.text


def test_the_usage_chart_counts_the_persons_decisions_by_week(console: TestClient) -> None:
    for record in ("CUS-1", "CUS-2", "CUS-3"):
        evaluate(console, "P001", "crm.customer", "read", record)
    services_of(console).recorder.flush()
    assert sign_in(console, "zhouqiang").status_code == 303
    page = console.get("/console/people/P001")
    usage = section(page.text, "usage")
    assert "<svg" in usage and 'class="bar"' in usage
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    week = today - timedelta(days=today.weekday())
    row = re.search(rf'<tr id="week-{week.isoformat()}">(.*?)</tr>', usage, re.S)
    assert row, usage
    assert re.findall(r'<td class="num[^"]*">([\d,]+)</td>', row.group(1)) == ["1", "2", "3"]  # P001 owns CUS-1 only
    assert len(re.findall(r'<tr id="week-', usage)) in (13, 14)
    assert "crm.customer" in section(page.text, "usage-totals")


def test_a_security_admin_revokes_a_grant_and_it_is_revoked(console: TestClient) -> None:
    assert evaluate(console, "P001", "crm.customer", "read", "CUS-1")["decision"] is True
    assert sign_in(console, "sunli").status_code == 303
    sales = grant_of(console, "P001", "sales")
    page = console.get("/console/people/P001?proposal=1")
    assert f'action="/console/people/P001/grants/{sales.id}/revoke"' in page.text and 'id="lp-form"' in page.text
    empty = console.post(f"/console/people/P001/grants/{sales.id}/revoke", data={"csrf": csrf_of(page.text),
                                                                                "reason": "  "})
    assert empty.status_code == 422 and 'id="error"' in empty.text
    done = console.post(f"/console/people/P001/grants/{sales.id}/revoke", follow_redirects=False,
                        data={"csrf": csrf_of(page.text), "reason": "已调岗，不再负责华东客户"})
    assert done.status_code == 303, done.text
    after = console.get(done.headers["location"])
    assert 'id="saved"' in after.text and f'<tr id="grant-{sales.id}"' not in after.text
    assert f'id="revoked-{sales.id}"' in after.text and "已调岗，不再负责华东客户" in after.text
    revoked = grants_of(console, "P001")[sales.id]
    assert revoked.revoked_at is not None and revoked.revoked_by == "P901"
    assert revoked.revoke_reason == "已调岗，不再负责华东客户"
    assert evaluate(console, "P001", "crm.customer", "read", "CUS-1")["decision"] is False
    again = console.post(f"/console/people/P001/grants/{sales.id}/revoke",
                         data={"csrf": csrf_of(after.text), "reason": "再次撤销"})
    assert again.status_code == 409 and 'id="error"' in again.text


def test_a_security_admin_applies_the_least_privilege_proposal(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    proposal = services_of(console).audit.least_privilege("P003")
    picked = [g["grant_id"] for g in proposal["grants"] if g["proposal"] != "keep"]
    kept = [g["grant_id"] for g in proposal["grants"] if g["proposal"] == "keep"]
    assert picked, proposal
    page = console.get("/console/people/P003?proposal=1")
    assert 'id="lp-form"' in page.text
    none = console.post("/console/people/P003/least-privilege", data={"csrf": csrf_of(page.text), "reason": "x"})
    assert none.status_code == 422 and 'id="error"' in none.text
    if kept:  # a grant proposed to keep is refused by the service, and nothing changes
        refused = console.post("/console/people/P003/least-privilege",
                               data={"csrf": csrf_of(page.text), "reason": "x", "grant": [str(kept[0])]})
        assert refused.status_code == 422 and 'id="error"' in refused.text
    done = console.post("/console/people/P003/least-privilege", follow_redirects=False,
                        data={"csrf": csrf_of(page.text), "reason": "近 90 天未使用", "grant": [str(picked[0])]})
    assert done.status_code == 303, done.text
    assert 'id="saved"' in console.get(done.headers["location"]).text
    grants = grants_of(console, "P003")
    assert grants[picked[0]].revoked_at is not None and grants[picked[0]].revoked_by == "P901"
    assert all(grants[g].revoked_at is None for g in picked[1:])


def test_an_auditor_who_posts_a_revocation_is_refused_and_the_refusal_is_logged(console: TestClient) -> None:
    assert sign_in(console, "zhouqiang").status_code == 303
    sales = grant_of(console, "P001", "sales")
    page = console.get("/console/people/P001")
    assert page.status_code == 200 and "/revoke" not in page.text
    refused = console.post(f"/console/people/P001/grants/{sales.id}/revoke",
                           data={"csrf": csrf_of(page.text), "reason": "审计员试图撤销"})
    assert refused.status_code == 403 and 'id="message-403"' in refused.text
    decision_id = re.search(r'id="decision-id">([^<]+)<', refused.text)
    assert decision_id
    record = {r.id: r for r in console_decisions(console, "P902")}[decision_id.group(1)]
    assert record.action == "manage_grants" and record.allowed is False
    assert record.resource_id == "person:P001" and record.caller == "accessgov-console"
    assert grants_of(console, "P001")[sales.id].revoked_at is None
    assert evaluate(console, "P001", "crm.customer", "read", "CUS-1")["decision"] is True
    applied = console.post("/console/people/P001/least-privilege",
                           data={"csrf": csrf_of(page.text), "reason": "x", "grant": [str(sales.id)]})
    assert applied.status_code == 403 and grants_of(console, "P001")[sales.id].revoked_at is None


def test_a_revocation_without_the_right_csrf_token_is_refused(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    sales = grant_of(console, "P001", "sales")
    for csrf in (None, "", "wrong-token"):
        data: dict[str, Any] = {"reason": "已调岗"}
        if csrf is not None:
            data["csrf"] = csrf
        refused = console.post(f"/console/people/P001/grants/{sales.id}/revoke", data=data)
        assert refused.status_code == 403 and 'id="message-csrf"' in refused.text
        lp = console.post("/console/people/P001/least-privilege", data={**data, "grant": [str(sales.id)]})
        assert lp.status_code == 403 and 'id="message-csrf"' in lp.text
    assert all(g.revoked_at is None for g in grants_of(console, "P001").values())


def test_unknown_people_and_grants_are_404_pages(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    for path in ("/console/people/P999", "/console/people/%3Cb%3E", "/console/people/" + "P" * 300):
        missing = console.get(path)
        assert missing.status_code == 404 and 'id="message-404"' in missing.text, path
    csrf = csrf_of(console.get("/console/people/P001").text)
    other = grant_of(console, "P002", "sales")  # P002's grant through P001's page
    for gid in (str(other.id), "999999", "abc", "0", str(2**40)):
        wrong = console.post(f"/console/people/P001/grants/{gid}/revoke", data={"csrf": csrf, "reason": "x"})
        assert wrong.status_code == 404, gid
    assert console.post(f"/console/people/P999/grants/{other.id}/revoke",
                        data={"csrf": csrf, "reason": "x"}).status_code == 404
    assert console.post("/console/people/P999/least-privilege",
                        data={"csrf": csrf, "reason": "x", "grant": [str(other.id)]}).status_code == 404
    assert grants_of(console, "P002")[other.id].revoked_at is None


def test_the_pages_render_in_english(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    switched = console.get("/console/lang/en?next=/console/people/P003", follow_redirects=False)
    assert switched.status_code == 303
    page = console.get(switched.headers["location"])
    assert page.status_code == 200 and '<html lang="en">' in page.text
    for words in ("Accounts in each system", "Grants", "Effective permissions", "Explain a decision",
                  "Least-privilege proposal", "Synced from CRM", "Revoke"):
        assert words in page.text, words
    search = console.get("/console/people?q=P00")
    assert "people" in search.text.lower() and 'id="people-total">7 people<' in search.text
    assert_no_script(page.text)
