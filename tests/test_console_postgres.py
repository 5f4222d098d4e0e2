"""The console on PostgreSQL (the production database), with the real test IdP: a security admin revokes a
grant in a campaign and the person's next decision is a deny; the person page, the decision log search,
the trail's verification, sync and a report read the same database; an auditor's change is refused and
logged. The section tests run on SQLite; this one walks the same pages over PostgreSQL's SQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.conftest import console_app, services_of
from tests.support.idp import TestIdP
from tests.test_console_auth import sign_in
from tests.test_console_campaigns import find, reads_own_customer, row_of
from tests.test_console_pages import console_decisions, csrf_of

pytestmark = [pytest.mark.idp, pytest.mark.postgres]


@pytest.fixture
def console(app_factory: Callable[..., TestClient], postgres_url: str, console_idp: TestIdP,
            monkeypatch: pytest.MonkeyPatch) -> TestClient:
    return console_app(app_factory, postgres_url, console_idp.issuer, monkeypatch)


def test_the_console_works_over_postgresql(console: TestClient) -> None:
    services = services_of(console)
    campaign = services.audit.launch_campaign(name="2026Q4 复核（PostgreSQL）", scope={}, no_response="keep",
                                              auto_revoke_cap=5, due_at=datetime.now(UTC) + timedelta(days=14),
                                              actor="test")
    target = find(console, campaign["id"], "P001", "sales")
    assert reads_own_customer(console)

    assert sign_in(console, "sunli").status_code == 303
    assert 'id="open-total"' in console.get("/console/").text
    page = console.get(f"/console/campaigns/{campaign['id']}")
    assert page.status_code == 200 and f'id="item-{target["id"]}"' in page.text
    done = console.post(f"/console/campaigns/{campaign['id']}/items/{target['id']}/decision", follow_redirects=False,
                        data={"csrf": csrf_of(page.text), "decision": "revoke", "reason": "已调岗"})
    assert done.status_code == 303, done.text
    assert not reads_own_customer(console)  # the next decision: deny
    after = console.get(done.headers["location"])
    assert "撤销" in row_of(after.text, target["id"])

    person = console.get("/console/people/P001?type=crm.customer&action=read&id=CUS-1#explain-result")
    assert person.status_code == 200 and 'class="decision-deny"' in person.text
    found = console.get("/console/people?q=P001")
    assert found.status_code == 200 and 'href="/console/people/P001"' in found.text
    assert console.get("/console/sync").status_code == 200
    report = console.get(f"/console/reports/campaigns/{campaign['id']}?format=pdf&lang=zh-CN")
    assert report.status_code == 200 and report.content[:5] == b"%PDF-"
    diff = console.get("/console/policy")
    assert diff.status_code == 200 and 'id="versions"' in diff.text

    assert sign_in(console, "zhouqiang").status_code == 303
    assert services.recorder.flush()  # the decision log is written off the request path
    log = console.get("/console/decisions?person=P001&effect=deny")
    assert log.status_code == 200, log.text
    rows = re.findall(r'href="/console/decisions/([^"?]+)"', log.text)
    assert rows, "the deny after the revocation is not in the decision log search"
    record = console.get(f"/console/decisions/{rows[0]}")
    assert record.status_code == 200 and "P001" in record.text
    trail = console.get("/console/trail?verify=1")
    assert trail.status_code == 200 and 'id="trail-ok"' in trail.text
    refused = console.post(f"/console/campaigns/{campaign['id']}/items/{target['id']}/rollback",
                           data={"csrf": csrf_of(log.text), "reason": "审计员试图回滚"})
    assert refused.status_code == 403
    assert any(r.action == "review_campaign" and not r.allowed for r in console_decisions(console, "P902"))
