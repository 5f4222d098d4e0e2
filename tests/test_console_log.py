"""The auditor's decision-log and audit-trail pages: the search shows exactly what the decision log holds (the same
filters as GET /v1/decisions), a record shows its fields, the trail's state and its verification name a tampered
record, other duties are refused (and the refusal logged), and nothing on the pages can delete the trail."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from app.decisions.models import DecisionRecord
from app.policy.models import Change
from audit import tables
from tests.conftest import auth, services_of
from tests.test_console_auth import sign_in
from tests.test_console_pages import console_decisions

pytestmark = pytest.mark.idp
TZ = ZoneInfo("Asia/Shanghai")  # the console's default time zone


@pytest.fixture
def console(audited_console: TestClient) -> TestClient:
    """The console after an audit run and three batches of decisions through the evaluation API."""
    client = audited_console
    for subject, action in (("P003", "read"), ("P001", "read"), ("P003", "delete")):
        body = {"subject": {"type": "user", "id": subject}, "action": {"name": action},
                "evaluations": [{"resource": {"type": "crm.customer", "id": f"CUS-{1 + i % 4}",
                                              "properties": {"fields": ["phone", "id_number", "name"]}}}
                                for i in range(8)]}
        answer = client.post("/access/v1/evaluations", json=body, headers=auth())
        assert answer.status_code == 200, answer.text
        assert services_of(client).recorder.flush()
    return client



def api_ids(console: TestClient, **params: Any) -> list[str]:
    """What GET /v1/decisions answers (the API the page searches like)."""
    answer = console.get("/v1/decisions", params={"limit": 1000, **params}, headers=auth())
    assert answer.status_code == 200, answer.text
    return [d["decision_id"] for d in answer.json()["decisions"]]


def page_ids(text_: str) -> list[str]:
    return re.findall(r'data-decision="([^"]+)"', text_)


def section(text_: str, element_id: str) -> str:
    start = text_.index(f'id="{element_id}"')
    return text_[start:]


def records(console: TestClient, ids: list[str]) -> dict[str, DecisionRecord]:
    with services_of(console).factory() as s:
        return {r.id: r for r in s.scalars(select(DecisionRecord).where(DecisionRecord.id.in_(ids)))}


def test_the_auditor_searches_by_person_and_effect_and_sees_the_logs_records(console: TestClient) -> None:
    assert sign_in(console, "zhouqiang").status_code == 303
    page = console.get("/console/decisions?person=P003&size=200")
    assert page.status_code == 200 and 'id="decision-search"' in page.text and 'id="decisions"' in page.text
    shown = page_ids(page.text)
    expected = api_ids(console, person_id="P003")
    assert len(expected) == 16 and sorted(shown) == sorted(expected)
    found = records(console, shown)
    times = [found[i].at for i in shown]
    assert times == sorted(times, reverse=True)  # newest first
    assert shown[:8] == sorted(shown[:8], reverse=True)  # one request's decisions share a time: then by id

    denied = console.get("/console/decisions?effect=deny&size=200")
    assert denied.status_code == 200
    expected_denied = api_ids(console, allowed="false")
    assert expected_denied and sorted(page_ids(denied.text)) == sorted(expected_denied)
    assert all(not r.allowed for r in records(console, page_ids(denied.text)).values())
    assert "拒绝" in denied.text and 'class="effect effect-allow"' not in section(denied.text, "decisions")

    both = page_ids(console.get("/console/decisions?person=P003&effect=deny&size=200").text)
    assert sorted(both) == sorted(set(expected) & set(expected_denied))
    deletes = page_ids(console.get("/console/decisions?person=P003&action=delete&system=crm"
                                   "&resource_type=crm.customer&resource_id=CUS-2").text)
    assert len(deletes) == 2 and all(r.action == "delete" and r.resource_id == "CUS-2"
                                     for r in records(console, deletes).values())
    assert page_ids(console.get("/console/decisions?person=P003&system=oa").text) == []
    assert 'id="decisions-none"' in console.get("/console/decisions?person=P003&system=oa").text


def test_the_search_pages_by_keyset_and_filters_by_local_time(console: TestClient) -> None:
    assert sign_in(console, "zhouqiang").status_code == 303
    everything = page_ids(console.get("/console/decisions?person=P003&size=200").text)
    walked: list[str] = []
    url: str | None = "/console/decisions?person=P003&size=5"
    while url:
        page = console.get(url)
        assert page.status_code == 200
        ids = page_ids(page.text)
        assert len(ids) <= 5
        assert ('id="first-page"' in page.text) == bool(walked)  # a way back from every later page
        walked += ids
        nxt = re.search(r'id="next-page" href="([^"]+)"', page.text)
        url = html.unescape(nxt.group(1)) if nxt else None
        assert url is None or ("person=P003" in url and "size=5" in url and f"after={ids[-1]}" in url)
    assert walked == everything and len(walked) == 16
    assert console.get("/console/decisions?size=100000").text.count("data-decision=") <= 200  # capped

    now = datetime.now(TZ)
    today, tomorrow, yesterday = (f"{d:%Y-%m-%d}" for d in (now, now + timedelta(days=1), now - timedelta(days=1)))
    hour_ago = f"{now - timedelta(hours=1):%Y-%m-%dT%H:%M}"
    assert sorted(page_ids(console.get(f"/console/decisions?person=P003&size=200&from={today}").text)) == \
        sorted(everything)
    assert sorted(page_ids(console.get(f"/console/decisions?person=P003&size=200&from={hour_ago}&to={today}"
                                       ).text)) == sorted(everything)  # a date as the end includes the day
    assert page_ids(console.get(f"/console/decisions?person=P003&from={tomorrow}").text) == []
    assert page_ids(console.get(f"/console/decisions?person=P003&to={yesterday}").text) == []
    assert len(page_ids(console.get("/console/decisions?person=P003&size=200&to=9999-12-31").text)) == 16


@pytest.mark.parametrize("query", ["from=2026-13-01", "to=yesterday", "from=2026-11-25T25:00", "effect=maybe",
                                   "size=ten", "after=no-such-decision", "system=CRM!", "person=P%00003",
                                   "from=2026-11-02&to=2026-11-01", f"resource_id={'x' * 401}"])
def test_bad_search_parameters_are_a_422_page_never_a_500(console: TestClient, query: str) -> None:
    assert sign_in(console, "zhouqiang").status_code == 303
    page = console.get(f"/console/decisions?{query}")
    assert page.status_code == 422, page.text[:300]
    assert 'id="error"' in page.text and 'id="decision-search"' in page.text and 'id="decisions"' not in page.text


def test_a_record_page_shows_the_records_fields_and_an_unknown_one_is_404(console: TestClient) -> None:
    assert sign_in(console, "zhouqiang").status_code == 303
    denied = api_ids(console, person_id="P003", allowed="false")
    record = records(console, denied[:1])[denied[0]]
    page = console.get(f"/console/decisions/{record.id}")
    assert page.status_code == 200
    facts = section(page.text, "decision")
    for element, value in (("record-id", record.id), ("decision-caller", record.caller),
                           ("decision-subject", record.subject), ("decision-type", record.resource_type),
                           ("decision-action", record.action), ("decision-policy-version", record.policy_version)):
        assert re.search(f'id="{element}">{re.escape(value)}<', facts), element
    assert record.resource_id and f">{record.resource_id}</a>" in facts
    assert f"{record.reason['code']}</code>" in facts and "拒绝" in facts
    assert f"第 {record.seal} 条" in facts  # sealed by its trail entry
    assert record.caller == "crm-backend" and record.subject == "user:P003"
    allowed = records(console, api_ids(console, person_id="P003", allowed="true"))
    granted = next(iter(allowed.values()))
    grounds = section(console.get(f"/console/decisions/{granted.id}").text, "decision-grounds")
    assert granted.reason["code"] == "allowed" and granted.reason["role"] in grounds
    assert html.escape(granted.reason["rule"]["text"]) in grounds and str(granted.reason["grant"]["id"]) in grounds
    for path in ("/console/decisions/00000000-0000-4000-0000-000000000000", "/console/decisions/not%20an%20id"):
        missing = console.get(path)
        assert missing.status_code == 404 and 'id="message-404"' in missing.text


def test_the_trail_page_shows_its_state_and_verify_names_a_tampered_record(console: TestClient) -> None:
    services = services_of(console)
    engine = services.factory.kw["bind"]
    assert sign_in(console, "zhouqiang").status_code == 303

    def head() -> int:
        services.recorder.flush()
        with engine.connect() as conn:
            return int(conn.execute(select(tables.trail_head.c.seq)).scalar_one())

    before = head()
    page = console.get("/console/trail")
    after = head()
    assert page.status_code == 200 and 'id="trail-state"' in page.text and 'id="trail-verify"' not in page.text
    shown = int(re.search(r'id="trail-head-seq">(\d+)<', page.text).group(1))  # type: ignore[union-attr]
    assert before <= shown <= after
    for kind in ("decisions", "change", "audit_run"):
        assert f'data-kind="{kind}"' in page.text
    assert re.search(r'id="trail-head-hash" class="hash">[0-9a-f]{64}<', page.text)
    assert 'id="trail-no-delete"' in page.text and "不能删除" in page.text
    assert page.text.count('method="post"') == 1  # sign-out only: no delete, no purge
    assert console.post("/console/trail", data={"verify": "1"}).status_code in (404, 405)

    intact = console.get("/console/trail?verify=1")
    assert intact.status_code == 200 and 'id="trail-ok"' in intact.text and 'id="trail-broken"' not in intact.text

    victim = api_ids(console, person_id="P001")[3]
    with engine.connect() as conn:
        change = conn.scalar(select(Change.id).order_by(Change.id.desc()).limit(1))
    with engine.begin() as conn:  # as the database's owner would, behind the service's back
        conn.execute(text("UPDATE decision_log SET allowed = NOT allowed WHERE id = :id"), {"id": victim})
        conn.execute(text("DELETE FROM changes WHERE id = :id"), {"id": change})
    broken = console.get("/console/trail?verify=1")
    assert broken.status_code == 200 and 'id="trail-broken"' in broken.text and 'id="trail-ok"' not in broken.text
    problems = section(broken.text, "trail-problems")
    assert f'<a href="/console/decisions/{victim}">{victim}</a>' in problems
    assert "edited after it was sealed" in problems
    assert f"<td>changes</td>\n          <td>{change}</td>" in problems and "deleted" in problems


@pytest.mark.parametrize(("login", "person"), [("sunli", "P901"), ("wugang", "P903")])
def test_other_duties_are_refused_the_log_and_the_trail_and_it_is_logged(console: TestClient, login: str,
                                                                         person: str) -> None:
    assert sign_in(console, login).status_code == 303
    some = api_ids(console, person_id="P003")[0]
    for path in ("/console/decisions?person=P003", f"/console/decisions/{some}", "/console/trail?verify=1"):
        refused = console.get(path)
        assert refused.status_code == 403 and 'id="message-403"' in refused.text
        for shown in ("data-decision=", 'id="record-id"', 'id="trail-state"', 'id="trail-verify"'):
            assert shown not in refused.text
    logged = console_decisions(console, person)
    assert {(r.action, r.resource_id) for r in logged if not r.allowed} >= {
        ("view_decision_log", "decisions"), ("view_decision_log", f"decision:{some}"), ("view_trail", "trail")}
    assert 'id="nav-decisions"' not in console.get("/console/").text


def test_the_pages_render_in_english(console: TestClient) -> None:
    assert sign_in(console, "zhouqiang").status_code == 303
    zh = console.get("/console/decisions")
    assert 'lang="zh-CN"' in zh.text and "决策日志" in zh.text and 'id="nav-decisions" href="/console/decisions"' \
        ' aria-current="page"' in zh.text
    assert console.get("/console/lang/en?next=%2Fconsole%2Fdecisions", follow_redirects=False).status_code == 303
    en = console.get("/console/decisions?effect=deny")
    assert 'lang="en"' in en.text and "Decision log" in en.text and "Denied" in en.text
    some = page_ids(en.text)[0]
    record = console.get(f"/console/decisions/{some}")
    assert "Decision record" in record.text and "Policy version" in record.text
    trail = console.get("/console/trail?verify=1")
    assert "Audit trail" in trail.text and "Nobody can delete" in trail.text and "Intact" in trail.text
    bad = console.get("/console/decisions?from=nope")
    assert bad.status_code == 422 and "From must be YYYY-MM-DD" in bad.text
