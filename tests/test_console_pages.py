"""The console's pages on the mini organisation after an audit run: what each duty sees and may do, every
page and action decided by accessgov's engine and logged, CSRF, security headers, no secret in a page."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.decisions.models import DecisionRecord
from tests.support.idp import TestIdP
from tests.test_console_auth import sign_in

pytestmark = pytest.mark.idp


@pytest.fixture
def console(audited_console: TestClient) -> TestClient:
    return audited_console


def inline_script(page: str) -> bool:
    """Whether the page has a script other than the vendored htmx file (the CSP would refuse it anyway)."""
    return bool(re.search(r'<script(?! src="/console/static/vendor/htmx\.min\.js" defer></script>)', page))


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def open_finding(console: TestClient) -> int:
    found = console.app.state.services.audit.list_findings(status=["open"], limit=1)
    assert found["items"], "the audit of the mini organisation found nothing"
    return int(found["items"][0]["id"])


def console_decisions(console: TestClient, person_id: str) -> list[DecisionRecord]:
    services = console.app.state.services
    deadline = time.monotonic() + 5
    while True:
        services.recorder.flush()
        with services.factory() as s:
            rows = list(s.scalars(select(DecisionRecord).where(DecisionRecord.person_id == person_id,
                                                               DecisionRecord.resource_type == "accessgov.console")))
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_the_dashboard_shows_open_findings_trend_campaigns_and_sync(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    page = console.get("/console/")
    assert page.status_code == 200
    summary = console.app.state.services.audit.summary()
    assert f'id="open-total">{summary["by_status"]["open"]:,}<' in page.text
    assert "职责分离冲突" in page.text  # the two-duty person's SoD finding, labelled from audit.i18n
    assert "<svg" in page.text and 'class="bar"' in page.text and not inline_script(page.text)
    assert re.search(r"\d{4}Q[1-4]", page.text)
    assert 'id="sync-health"' in page.text and "wecom" in page.text
    assert 'id="campaigns"' in page.text


def test_the_two_duty_person_is_reported_by_the_audit(console: TestClient) -> None:
    found = console.app.state.services.audit.list_findings(kind=["sod_conflict"], person_id="P905")
    assert found["total"] >= 1
    assert any("SOD-CONSOLE" in str(f["evidence"]) for f in found["items"])


def test_the_findings_list_filters_sorts_and_pages(console: TestClient) -> None:
    assert sign_in(console, "zhouqiang").status_code == 303
    everything = console.get("/console/findings?status=")
    assert everything.status_code == 200 and 'id="findings"' in everything.text
    high = console.get("/console/findings?status=open&severity=critical")
    assert 'id="findings"' in high.text
    rows = re.findall(r'class="sev sev-(\w+)"', high.text.split('id="findings"')[1])
    assert rows and set(rows) == {"critical"}
    by_kind = console.get("/console/findings?status=&kind=orphan_account&sort=id&order=desc")
    ids = [int(i) for i in re.findall(r'href="/console/findings/(\d+)"', by_kind.text)]
    assert ids == sorted(ids, reverse=True)
    assert console.get("/console/findings?page=999").status_code == 200  # an empty page, not an error


def test_a_finding_page_has_evidence_and_history_and_the_security_admin_decides(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    fid = open_finding(console)
    page = console.get(f"/console/findings/{fid}")
    assert page.status_code == 200
    assert 'id="evidence"' in page.text and 'id="history"' in page.text and 'id="status-form"' in page.text
    done = console.post(f"/console/findings/{fid}/status", follow_redirects=False,
                        data={"csrf": csrf_of(page.text), "to": "accepted", "until": "2099-12-31",
                              "reason": "业务必需，已书面审批"})
    assert done.status_code == 303, done.text
    after = console.get(done.headers["location"])
    assert 'id="saved"' in after.text and "已接受风险" in after.text and "业务必需，已书面审批" in after.text
    assert console.app.state.services.audit.get_finding(fid)["status"] == "accepted"
    reopened = console.post(f"/console/findings/{fid}/status", follow_redirects=False,
                            data={"csrf": csrf_of(after.text), "to": "open", "reason": "复核后重新打开"})
    assert reopened.status_code == 303
    assert console.app.state.services.audit.get_finding(fid)["status"] == "open"
    bad = console.post(f"/console/findings/{fid}/status", data={"csrf": csrf_of(after.text), "to": "accepted",
                                                                 "until": "not-a-date", "reason": "x"})
    assert bad.status_code == 422 and 'id="error"' in bad.text


def test_an_auditor_reads_but_a_status_change_is_refused_and_logged(console: TestClient) -> None:
    assert sign_in(console, "zhouqiang").status_code == 303
    fid = open_finding(console)
    page = console.get(f"/console/findings/{fid}")
    assert page.status_code == 200 and 'id="status-form"' not in page.text  # no form for a reader
    refused = console.post(f"/console/findings/{fid}/status",
                           data={"csrf": csrf_of(page.text), "to": "remediated", "reason": "试图修改"})
    assert refused.status_code == 403 and 'id="message-403"' in refused.text
    assert console.app.state.services.audit.get_finding(fid)["status"] == "open"
    decision_id = re.search(r'id="decision-id">([^<]+)<', refused.text)
    assert decision_id
    logged = {r.id: r for r in console_decisions(console, "P902")}
    record = logged[decision_id.group(1)]
    assert record.action == "decide_finding" and record.allowed is False
    assert record.resource_id == f"finding:{fid}" and record.caller == "accessgov-console"
    assert any(r.action == "view_findings" and r.allowed for r in logged.values())


def test_a_system_admin_is_refused_the_findings(console: TestClient) -> None:
    assert sign_in(console, "wugang").status_code == 303
    assert console.get("/console/").status_code == 200
    refused = console.get("/console/findings")
    assert refused.status_code == 403
    assert any(r.action == "view_findings" and not r.allowed for r in console_decisions(console, "P903"))


@pytest.mark.parametrize("csrf", [None, "", "wrong-token"])
def test_a_state_change_without_the_right_csrf_token_is_refused(console: TestClient, csrf: str | None) -> None:
    assert sign_in(console, "sunli").status_code == 303
    fid = open_finding(console)
    data: dict[str, Any] = {"to": "remediated", "reason": "已整改"}
    if csrf is not None:
        data["csrf"] = csrf
    refused = console.post(f"/console/findings/{fid}/status", data=data)
    assert refused.status_code == 403 and 'id="message-csrf"' in refused.text
    assert console.app.state.services.audit.get_finding(fid)["status"] == "open"
    assert console.post("/console/logout", data=data, follow_redirects=False).status_code == 403
    assert console.get("/console/").status_code == 200  # still signed in


def test_console_responses_carry_the_security_headers(console: TestClient) -> None:
    for response in (console.get("/console/login"), console.get("/console/", follow_redirects=False),
                     console.get("/console/nowhere")):
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in response.headers  # http here
    assert "content-security-policy" not in console.get("/healthz").headers  # the API is untouched


def test_no_token_secret_or_cookie_value_appears_in_a_page(console: TestClient, console_idp: TestIdP) -> None:
    callback = sign_in(console, "sunli")
    session_cookie = console.cookies.get("accessgov_console", path="/console")
    assert session_cookie
    fid = open_finding(console)
    pages = [console.get(p).text for p in ("/console/", "/console/findings", f"/console/findings/{fid}",
                                           "/console/nowhere", "/console/login")]
    secrets = [session_cookie, "accessgov-console-test-secret", "sunli-test-pw", "console-test-key-"]
    for text in pages:
        for secret in secrets:
            assert secret not in text
        assert not re.search(r"eyJ[\w-]{10,}\.[\w-]{10,}\.", text)  # no JWT
    assert "code=" not in callback.headers["location"]


def test_pages_switch_language_and_stay_put(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    zh = console.get("/console/findings?status=open")
    assert 'lang="zh-CN"' in zh.text and "审计发现" in zh.text
    switched = console.get("/console/lang/en?next=%2Fconsole%2Ffindings%3Fstatus%3Dopen", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/console/findings?status=open"
    en = console.get(switched.headers["location"])
    assert 'lang="en"' in en.text and "Findings" in en.text and "Security administrator" in en.text
    assert console.get("/console/lang/en?next=https://evil.example/", follow_redirects=False
                       ).headers["location"] == "/console/"


def test_unknown_pages_and_findings_are_404_pages(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    for path in ("/console/findings/999999", "/console/no-such-page"):
        response = console.get(path)
        assert response.status_code == 404 and 'id="message-404"' in response.text


def test_a_duty_revoked_during_a_session_ends_it(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    services = console.app.state.services
    with services.factory() as s:
        from app.directory.models import Grant

        grant = s.scalars(select(Grant).where(Grant.person_id == "P901",
                                              Grant.role == "console_security_admin")).one()
    services.grants.revoke_grant(actor="test", grant_id=grant.id, reason="left the security team")
    response = console.get("/console/")
    assert response.status_code == 403 and 'id="message-no_duty"' in response.text


def test_ids_that_are_not_plain_digits_are_not_found_never_a_500(console: TestClient) -> None:
    """Row ids in paths, queries and forms are ASCII digits (web.db_id): "²" is a Unicode digit that int()
    refuses, "١" an Arabic-Indic one it accepts; neither names a row."""
    from datetime import UTC, datetime, timedelta

    campaign = console.app.state.services.audit.launch_campaign(  # type: ignore[attr-defined]
        name="编号检查", scope={}, due_at=datetime.now(UTC) + timedelta(days=7), no_response="keep",
        auto_revoke_cap=0, actor="test")
    assert sign_in(console, "sunli").status_code == 303
    csrf = csrf_of(console.get("/console/").text)
    for odd in ("²", "١", "1e3", " 1", "-1", "0"):
        for path in (f"/console/sync/runs/{odd}", f"/console/reports/runs/{odd}", f"/console/campaigns/{odd}"):
            assert console.get(path).status_code == 404, (path, odd)
        assert console.get(f"/console/campaigns/{campaign['id']}?page={odd}").status_code == 200
        assert console.get(f"/console/policy/diff?from={odd}&to=1").status_code in (404, 422)
        revoke = console.post(f"/console/people/P001/grants/{odd}/revoke", data={"csrf": csrf, "reason": "x"})
        assert revoke.status_code == 404, odd
        decide = console.post(f"/console/campaigns/{campaign['id']}/items/{odd}/decision",
                              data={"csrf": csrf, "decision": "keep", "reason": "x"})
        assert decide.status_code in (404, 422), odd
