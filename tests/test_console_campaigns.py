"""The console's review campaigns on the mini organisation after an audit run: launch, the items and their
decisions (a revocation really revoked, the next decision a deny, a rollback gives it back), bulk keeps
of low-risk items only, reminders, the close preview and close; an auditor reads but may not decide."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.directory.models import Grant
from audit import tables as at
from tests.conftest import auth, services_of
from tests.test_console_auth import sign_in
from tests.test_console_pages import console_decisions, csrf_of

pytestmark = pytest.mark.idp


@pytest.fixture
def console(audited_console: TestClient) -> TestClient:
    return audited_console



def launch(console: TestClient, **options: Any) -> dict[str, Any]:
    """A campaign over the whole mini organisation, launched through the service."""
    args: dict[str, Any] = {"name": "2026Q4 全员复核", "scope": {}, "no_response": "keep", "auto_revoke_cap": 5,
                            "due_at": datetime.now(UTC) + timedelta(days=14), "actor": "test"}
    return services_of(console).audit.launch_campaign(**{**args, **options})  # type: ignore[no-any-return]


def items_of(console: TestClient, campaign_id: int, **filters: Any) -> list[dict[str, Any]]:
    found = services_of(console).audit.campaign_items(campaign_id, limit=1000, **filters)
    return found["items"]  # type: ignore[no-any-return]


def item(console: TestClient, campaign_id: int, item_id: int) -> dict[str, Any]:
    return next(i for i in items_of(console, campaign_id) if i["id"] == item_id)


def find(console: TestClient, campaign_id: int, person: str, role: str) -> dict[str, Any]:
    return next(i for i in items_of(console, campaign_id) if i["person_id"] == person and i["role"] == role)


def reads_own_customer(console: TestClient) -> bool:
    """P001 (sales in the east) reads CUS-1, a customer they own: the decision API's answer now."""
    body = {"subject": {"type": "user", "id": "P001"}, "action": {"name": "read"},
            "resource": {"type": "crm.customer", "id": "CUS-1"}}
    answer = console.post("/access/v1/evaluation", headers=auth(), json=body)
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["decision"])


def row_of(page: str, item_id: int) -> str:
    found = re.search(rf'<tr id="item-{item_id}".*?</tr>', page, re.S)
    assert found, f"no row for item {item_id}"
    return found.group(0)


def form_of(page: str, form_id: str) -> str:
    found = re.search(rf'<form[^>]*id="{form_id}".*?</form>', page, re.S)
    assert found, f"no form {form_id}"
    return found.group(0)


def test_the_security_admin_launches_a_campaign_and_sees_its_items(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    listing = console.get("/console/campaigns")
    assert listing.status_code == 200
    assert 'id="launch"' in listing.text and 'id="my-reviews"' in listing.text
    assert 'aria-current="page"' in listing.text and 'id="nav-campaigns"' in listing.text
    due = (date.today() + timedelta(days=21)).isoformat()
    made = console.post("/console/campaigns", follow_redirects=False, data={
        "csrf": csrf_of(listing.text), "name": "华东销售权限复核", "due": due, "no_response": "recommendation",
        "auto_revoke_cap": "3", "systems": "crm"})
    assert made.status_code == 303, made.text
    launched = re.search(r"/console/campaigns/(\d+)\?saved=launched", made.headers["location"])
    assert launched
    campaign_id = int(launched.group(1))
    campaign = services_of(console).audit.get_campaign(campaign_id)
    assert campaign["name"] == "华东销售权限复核" and campaign["launched_by"] == "P901"
    assert campaign["scope"]["systems"] == ["crm"] and campaign["no_response"] == "recommendation"
    assert campaign["auto_revoke_cap"] == 3
    page = console.get(made.headers["location"])
    assert page.status_code == 200 and 'id="saved"' in page.text and 'id="items"' in page.text
    items = items_of(console, campaign_id)
    assert items and all(i["system"] == "crm" for i in items)
    shown = [int(i) for i in re.findall(r'<tr id="item-(\d+)"', page.text)]
    assert shown == [i["id"] for i in items]
    sales = find(console, campaign_id, "P001", "sales")
    row = row_of(page.text, sales["id"])
    assert "P001" in row and "张伟" in row and "CRM" in row and "hq/sales/east/" in row and "低" in row
    assert f'id="decide-{sales["id"]}"' in row
    assert f'0 / {len(items)}' in page.text and "<progress" in page.text
    assert 'id="report-pdf"' in page.text and f"/console/reports/campaigns/{campaign_id}?format=pdf&amp;lang=zh-CN" \
        in page.text and f'href="/console/reports/campaigns/{campaign_id}/evidence-pack"' in page.text
    listing = console.get("/console/campaigns")
    assert f'href="/console/campaigns/{campaign_id}"' in listing.text and "华东销售权限复核" in listing.text
    # a bad due date is refused on the page, nothing launched
    bad = console.post("/console/campaigns", data={"csrf": csrf_of(listing.text), "name": "x", "due": "2020-01-01"})
    assert bad.status_code == 422 and 'id="error"' in bad.text
    assert len(services_of(console).audit.list_campaigns()) == 1


def test_a_revocation_is_applied_denies_the_next_decision_and_a_rollback_restores(console: TestClient) -> None:
    campaign = launch(console)
    cid = campaign["id"]
    sales = find(console, cid, "P001", "sales")
    services = services_of(console)
    assert reads_own_customer(console)
    assert sign_in(console, "sunli").status_code == 303
    page = console.get(f"/console/campaigns/{cid}?person=P001")  # the person filter: only P001's items
    assert {int(i) for i in re.findall(r'<tr id="item-(\d+)"', page.text)} == {
        i["id"] for i in items_of(console, cid) if i["person_id"] == "P001"}
    form = form_of(page.text, f"decide-form-{sales['id']}")
    assert 'name="person" value="P001"' in form and 'name="page" value="1"' in form  # the view it is on
    url = f"/console/campaigns/{cid}/items/{sales['id']}"
    done = console.post(f"{url}/decision", follow_redirects=False, data={
        "csrf": csrf_of(page.text), "decision": "revoke", "reason": "已调岗，不再负责华东客户", "person": "P001",
        "page": "1"})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/console/campaigns/{cid}?mine=&pending=&person=P001&page=1&saved=decided"
    after = console.get(done.headers["location"])
    assert 'id="saved"' in after.text and f'id="item-{sales["id"]}"' in after.text  # back on the same rows
    decided = item(console, cid, sales["id"])
    assert decided["decision"] == "revoke" and decided["apply_status"] == "applied"
    assert decided["decided_by"] == "P901"
    with services.factory() as s:
        assert s.get(Grant, sales["grant_id"]).revoked_at is not None
    assert not reads_own_customer(console)  # the very next decision is a deny
    row = row_of(after.text, sales["id"])
    assert "已调岗，不再负责华东客户" in row and "已执行" in row and f'id="rollback-{sales["id"]}"' in row
    assert f'id="decide-{sales["id"]}"' not in row
    # deciding twice is refused on the page; nothing changes
    again = console.post(f"{url}/decision", data={"csrf": csrf_of(after.text), "decision": "keep", "reason": "x"})
    assert again.status_code == 409 and 'id="error"' in again.text and "已复核" in again.text
    assert item(console, cid, sales["id"])["decision"] == "revoke"
    # a reason is required to roll back
    blank = console.post(f"{url}/rollback", data={"csrf": csrf_of(after.text), "reason": " "})
    assert blank.status_code == 422 and 'id="error"' in blank.text
    assert item(console, cid, sales["id"])["apply_status"] == "applied"
    back = console.post(f"{url}/rollback", follow_redirects=False,
                        data={"csrf": csrf_of(after.text), "reason": "复核有误，恢复"})
    assert back.status_code == 303, back.text
    assert item(console, cid, sales["id"])["apply_status"] == "rolled_back"
    assert reads_own_customer(console)
    with services.factory() as s:
        live = s.scalars(select(Grant).where(Grant.person_id == "P001", Grant.role == "sales",
                                             Grant.revoked_at.is_(None))).all()
    assert len(live) == 1 and live[0].id != sales["grant_id"]
    restored = console.get(back.headers["location"])
    assert "已回滚" in row_of(restored.text, sales["id"]) and f'id="rollback-{sales["id"]}"' not in restored.text


def test_nobody_decides_on_their_own_access(console: TestClient) -> None:
    cid = launch(console)["id"]
    own = find(console, cid, "P901", "console_security_admin")
    assert sign_in(console, "sunli").status_code == 303
    page = console.get(f"/console/campaigns/{cid}")
    assert f'id="decide-{own["id"]}"' not in page.text and "本人授权" in row_of(page.text, own["id"])
    refused = console.post(f"/console/campaigns/{cid}/items/{own['id']}/decision",
                           data={"csrf": csrf_of(page.text), "decision": "keep", "reason": "我需要"})
    assert refused.status_code == 409 and "不能复核本人的权限" in refused.text
    assert item(console, cid, own["id"])["decision"] is None
    no_date = console.post(f"/console/campaigns/{cid}/items/{find(console, cid, 'P002', 'sales')['id']}/decision",
                           data={"csrf": csrf_of(page.text), "decision": "accept_risk", "reason": "短期需要"})
    assert no_date.status_code == 422 and 'id="error"' in no_date.text


def test_bulk_decisions_take_low_risk_items_only(console: TestClient) -> None:
    cid = launch(console)["id"]
    everything = items_of(console, cid)
    low = [i for i in everything if i["risk"] == "low" and not i["person_id"].startswith("P9")][:3]
    risky = next(i for i in everything if i["risk"] != "low" and i["person_id"] != "P901")
    assert sign_in(console, "sunli").status_code == 303
    page = console.get(f"/console/campaigns/{cid}")
    assert 'id="bulk"' in form_of(page.text, "bulk")
    offered = {int(i) for i in re.findall(r'name="item" value="(\d+)" form="bulk"', page.text)}
    assert {i["id"] for i in low} <= offered
    assert offered == {i["id"] for i in everything if i["risk"] == "low" and i["person_id"] != "P901"}
    csrf = csrf_of(page.text)
    refused = console.post(f"/console/campaigns/{cid}/decisions", data={
        "csrf": csrf, "item": [str(low[0]["id"]), str(risky["id"])], "decision": "keep", "reason": "批量保留"})
    assert refused.status_code == 409 and 'id="error"' in refused.text and "低风险" in refused.text
    assert all(i["decision"] is None for i in items_of(console, cid))  # all or none
    kept = console.post(f"/console/campaigns/{cid}/decisions", follow_redirects=False, data={
        "csrf": csrf, "item": [str(i["id"]) for i in low], "decision": "keep", "reason": "临时授权，到期自动失效"})
    assert kept.status_code == 303, kept.text
    decided = {i["id"]: i for i in items_of(console, cid, pending=False)}
    assert set(decided) == {i["id"] for i in low}
    assert all(d["decision"] == "keep" and d["decided_by"] == "P901" for d in decided.values())
    assert 'id="saved"' in console.get(kept.headers["location"]).text
    rest = [i for i in items_of(console, cid, pending=True) if i["risk"] == "low" and i["person_id"] != "P901"][:2]
    assert rest
    accept = {"csrf": csrf, "item": [str(i["id"]) for i in rest], "decision": "accept_risk", "reason": "业务需要"}
    undated = console.post(f"/console/campaigns/{cid}/decisions", data=accept)
    assert undated.status_code == 422 and 'id="error"' in undated.text
    accepted = console.post(f"/console/campaigns/{cid}/decisions", data={**accept, "until": "2099-03-31"},
                            follow_redirects=False)
    assert accepted.status_code == 303, accepted.text
    decided = {i["id"]: i for i in items_of(console, cid, pending=False)}
    assert all(decided[i["id"]]["decision"] == "accept_risk" and decided[i["id"]]["accept_until"] for i in rest)
    none = console.post(f"/console/campaigns/{cid}/decisions", data={"csrf": csrf, "decision": "keep", "reason": "x"})
    assert none.status_code == 422 and 'id="error"' in none.text


def test_my_reviews_reminders_close_preview_and_close(console: TestClient) -> None:
    services = services_of(console)
    cid = launch(console, no_response="recommendation", auto_revoke_cap=1)["id"]
    mine = [find(console, cid, "P001", "sales")["id"], find(console, cid, "P002", "sales")["id"]]
    with services.factory.kw["bind"].begin() as conn:  # reviewers come from the directory; assign two here
        conn.execute(update(at.campaign_items).where(at.campaign_items.c.id.in_(mine)).values(reviewer_id="P901"))
    assert sign_in(console, "sunli").status_code == 303
    listing = console.get("/console/campaigns")
    section = listing.text.split('id="my-reviews"')[1].split("</section>")[0]
    assert sorted(int(i) for i in re.findall(r"#item-(\d+)", section)) == sorted(mine)
    only_mine = console.get(f"/console/campaigns/{cid}?mine=1&pending=1")
    assert sorted(int(i) for i in re.findall(r'<tr id="item-(\d+)"', only_mine.text)) == sorted(mine)

    reminded = console.post(f"/console/campaigns/{cid}/remind", follow_redirects=False,
                            data={"csrf": csrf_of(listing.text)})
    assert reminded.status_code == 303 and "saved=reminded" in reminded.headers["location"]
    assert 'id="saved"' in console.get(reminded.headers["location"]).text
    with services.factory.kw["bind"].connect() as conn:
        sent = conn.execute(select(at.campaign_reminders.c.reviewer_id, at.campaign_reminders.c.pending)).all()
    assert [tuple(r) for r in sent] == [("P901", 2)]

    preview = services.audit.close_preview(cid)
    page = console.get(f"/console/campaigns/{cid}/close-preview")
    assert page.status_code == 200
    assert f'id="count-undecided">{preview["undecided"]}<' in page.text
    assert preview["revoke"] and preview["kept_by_cap"]
    revoke_rows = [int(i) for i in re.findall(r'<tr id="preview-revoke-(\d+)"', page.text)]
    capped_rows = [int(i) for i in re.findall(r'<tr id="preview-capped-(\d+)"', page.text)]
    assert revoke_rows == preview["revoke"] and capped_rows == preview["kept_by_cap"]
    closed = console.post(f"/console/campaigns/{cid}/close", follow_redirects=False, data={"csrf": csrf_of(page.text)})
    assert closed.status_code == 303, closed.text
    campaign = services.audit.get_campaign(cid)
    assert campaign["status"] == "closed" and campaign["closed_by"] == "P901"
    assert campaign["result"]["revoke"] == preview["revoke"]
    after = console.get(closed.headers["location"])
    assert 'id="saved"' in after.text and "已关闭" in after.text
    assert not re.search(r'id="decide-\d+"', after.text) and 'id="bulk"' not in after.text
    assert 'id="remind"' not in after.text
    again = console.post(f"/console/campaigns/{cid}/close", data={"csrf": csrf_of(after.text)})
    assert again.status_code == 409 and 'id="error"' in again.text


def test_an_auditor_reads_campaigns_but_a_decision_is_refused_and_logged(console: TestClient) -> None:
    cid = launch(console)["id"]
    sales = find(console, cid, "P001", "sales")
    assert sign_in(console, "zhouqiang").status_code == 303
    listing = console.get("/console/campaigns")
    assert listing.status_code == 200 and 'id="launch"' not in listing.text
    assert f'href="/console/campaigns/{cid}"' in listing.text
    page = console.get(f"/console/campaigns/{cid}")
    assert page.status_code == 200 and 'id="items"' in page.text and 'id="report-pdf"' in page.text
    assert not re.search(r'id="decide-\d+"', page.text) and 'id="bulk"' not in page.text
    assert 'id="remind"' not in page.text and 'id="close-preview"' not in page.text
    refused = console.post(f"/console/campaigns/{cid}/items/{sales['id']}/decision",
                           data={"csrf": csrf_of(page.text), "decision": "revoke", "reason": "试图撤销"})
    assert refused.status_code == 403 and 'id="message-403"' in refused.text
    assert item(console, cid, sales["id"])["decision"] is None and reads_own_customer(console)
    decision_id = re.search(r'id="decision-id">([^<]+)<', refused.text)
    assert decision_id
    record = {r.id: r for r in console_decisions(console, "P902")}[decision_id.group(1)]
    assert record.action == "review_campaign" and record.allowed is False
    assert record.resource_id == f"campaign:{cid}"
    for path, data in ((f"/console/campaigns/{cid}/decisions", {"item": str(sales["id"]), "reason": "x"}),
                       (f"/console/campaigns/{cid}/close", {}), ("/console/campaigns", {"name": "x"})):
        assert console.post(path, data={"csrf": csrf_of(page.text), **data}).status_code == 403
    assert console.get(f"/console/campaigns/{cid}/close-preview").status_code == 403
    assert services_campaigns(console) == 1 and item(console, cid, sales["id"])["decision"] is None


def services_campaigns(console: TestClient) -> int:
    return len(services_of(console).audit.list_campaigns())


@pytest.mark.parametrize("csrf", [None, "", "wrong-token"])
def test_a_decision_without_the_right_csrf_token_is_refused(console: TestClient, csrf: str | None) -> None:
    cid = launch(console)["id"]
    sales = find(console, cid, "P001", "sales")
    assert sign_in(console, "sunli").status_code == 303
    data: dict[str, Any] = {"decision": "revoke", "reason": "已调岗"}
    if csrf is not None:
        data["csrf"] = csrf
    refused = console.post(f"/console/campaigns/{cid}/items/{sales['id']}/decision", data=data)
    assert refused.status_code == 403 and 'id="message-csrf"' in refused.text
    assert item(console, cid, sales["id"])["decision"] is None and reads_own_customer(console)
    launched = console.post("/console/campaigns", data={**data, "name": "x", "due": "2099-01-01"})
    assert launched.status_code == 403 and services_campaigns(console) == 1


def test_unknown_campaigns_and_items_are_404_and_bad_params_are_not_errors(console: TestClient) -> None:
    cid = launch(console)["id"]
    assert sign_in(console, "sunli").status_code == 303
    page = console.get(f"/console/campaigns/{cid}")
    for path in ("/console/campaigns/999999", "/console/campaigns/99999999999999999999999", "/console/campaigns/abc",
                 "/console/campaigns/999999/close-preview", "/console/campaigns/0"):
        response = console.get(path)
        assert response.status_code == 404 and 'id="message-404"' in response.text, path
    csrf = csrf_of(page.text)
    for path in (f"/console/campaigns/{cid}/items/999999/decision", "/console/campaigns/999999/items/1/decision",
                 f"/console/campaigns/{cid}/items/999999/rollback", "/console/campaigns/999999/remind"):
        response = console.post(path, data={"csrf": csrf, "decision": "keep", "reason": "x"})
        assert response.status_code == 404 and 'id="message-404"' in response.text, path
    odd = console.get(f"/console/campaigns/{cid}?page=abc&mine=maybe&pending=%00&saved=<script>&n=xyz")
    assert odd.status_code == 200 and 'id="items"' in odd.text and "<script>" not in odd.text
    far = console.get(f"/console/campaigns/{cid}?page=99999")
    assert far.status_code == 200 and 'id="items"' not in far.text
    bad = console.post(f"/console/campaigns/{cid}/items/1/decision",
                       data={"csrf": csrf, "decision": "delete-everything", "reason": "x"})
    assert bad.status_code == 422 and 'id="error"' in bad.text


def test_the_campaign_pages_render_in_english(console: TestClient) -> None:
    cid = launch(console)["id"]
    assert sign_in(console, "sunli").status_code == 303
    switched = console.get(f"/console/lang/en?next=%2Fconsole%2Fcampaigns%2F{cid}", follow_redirects=False)
    assert switched.headers["location"] == f"/console/campaigns/{cid}"
    page = console.get(switched.headers["location"])
    assert page.status_code == 200 and 'lang="en"' in page.text
    assert "Items" in page.text and "Decision" in page.text and "Review report (PDF)" in page.text
    assert "lang=en" in page.text and "复核" not in page.text.split("<main>")[1].replace("2026Q4 全员复核", "")
    listing = console.get("/console/campaigns")
    assert "Review campaigns" in listing.text and "Launch a review campaign" in listing.text
    preview = console.get(f"/console/campaigns/{cid}/close-preview")
    assert preview.status_code == 200 and "Close the campaign" in preview.text
