"""The console in a real Chromium (Playwright, Debian's /usr/bin/chromium): signed in through the test
IdP's own login page, on the demo organisation after an audit run, with the officers `make console` adds
(app/demo/officers.py). The security admin opens a planted finding, revokes its grant in a campaign, sees
the person's next decision turn to deny and downloads the campaign's PDF report; screenshots of the main
pages in both languages go to tests/artifacts/console/; and the pages read without JavaScript."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.console.runtime import runtime_of
from app.demo.load import load_demo
from app.demo.officers import add_officers
from app.main import create_app
from tests.conftest import ROOT, console_env, dev_token, in_ci, make_settings, prepare_database
from tests.support.idp import TestIdP

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
CHROMIUM_ARGS = ["--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]

pytestmark = [pytest.mark.browser, pytest.mark.idp]


def _chromium_or_skip() -> None:
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        if in_ci():
            pytest.fail(f"Chromium is required under CI and missing at {CHROMIUM} (.ci/run installs it)")
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")


@pytest.fixture(scope="module")
def served(console_socket: Any, console_idp: TestIdP, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, Any]]:
    """The service on the reserved socket, with the demo organisation, the console's people and an audit run."""
    import uvicorn

    _chromium_or_skip()
    port = console_socket.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        console_env(mp, console_idp.issuer, base_url=base)  # the settings read ACCESSGOV_CONSOLE__* now
        settings = make_settings(f"sqlite:///{tmp_path_factory.mktemp('console') / 'accessgov.db'}")
    prepare_database(settings, seed=None)
    app = create_app(settings)
    runtime_of(app)
    services = app.state.services
    load_demo(services, history=False)
    add_officers(services)
    services.audit.run(trigger="manual", actor="test")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [console_socket]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the console server did not start"
        time.sleep(0.05)
    yield base, app
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(served: tuple[str, Any]) -> str:
    return served[0]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    _chromium_or_skip()
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def sign_in(page: Any, base: str, login: str) -> None:
    page.goto(f"{base}/console/")
    page.click("#login-test")
    page.fill("#login", login)
    page.fill("#password", f"{login}-test-pw")
    page.click("#submit")
    page.wait_for_url(f"{base}/console/")


def shoot(page: Any, name: str, lang: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}-{lang}.png"), full_page=True)


def switch_language(page: Any, server: str, lang: str) -> None:
    page.click(f"#lang-{lang}")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == lang


# (screenshot name, path) of the pages each officer is shown, in both languages
SECURITY_ADMIN_PAGES = [("campaigns", "/console/campaigns"), ("people", "/console/people?q=闫悦"),
                        ("person", "/console/people/P00013"), ("policy", "/console/policy"),
                        ("sync", "/console/sync"), ("reports", "/console/reports")]
AUDITOR_PAGES = [("decisions", "/console/decisions"), ("trail", "/console/trail?verify=1")]


def test_a_security_admin_works_through_the_console_in_both_languages(browser: Any, server: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # CSP violations
    sign_in(page, server, "sunli")
    assert "孙丽" in page.inner_text("#signed-in-person")
    assert "安全管理员" in page.inner_text("#signed-in-duty")
    for lang in ("zh-CN", "en"):
        if lang == "en":
            page.goto(f"{server}/console/")
            switch_language(page, server, "en")
            assert "Security administrator" in page.inner_text("#signed-in-duty")
        assert page.locator("svg.chart rect.bar").count() >= 1
        shoot(page, "dashboard", lang)
        page.goto(f"{server}/console/findings?status=open")
        assert page.locator("#findings tbody tr").count() >= 1
        shoot(page, "findings", lang)
        page.click("#findings tbody tr:first-child a.finding-link")
        page.wait_for_selector("#evidence")
        assert page.locator("#status-form").count() == 1
        shoot(page, "finding", lang)
        for name, path in SECURITY_ADMIN_PAGES:
            response = page.goto(f"{server}{path}")
            assert response is not None and response.status == 200, (path, response and response.status)
            nav = "people" if name == "person" else name
            assert page.locator(f"#nav-{nav}").get_attribute("aria-current") == "page"
            shoot(page, name, lang)
    assert not [e for e in errors if "Content Security Policy" in e]
    page.goto(f"{server}/console/")
    page.click("#sign-out")
    page.wait_for_load_state()
    context.close()
    for name in ["dashboard", "findings", "finding", *(n for n, _ in SECURITY_ADMIN_PAGES)]:
        for lang in ("zh-CN", "en"):
            assert (ARTIFACTS / f"{name}-{lang}.png").stat().st_size > 5000


def test_a_finding_revoked_in_a_campaign_turns_the_next_decision_to_deny(browser: Any, served: tuple[str, Any]
                                                                         ) -> None:
    """The planted stale grant: P00013 moved to 市场部 and kept 销售经理 on 华东大区 (grant from the CRM)."""
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    server, app = served
    record = east_customer(app)
    assert evaluate(server, "P00013", record) is True  # the stale grant still lets P00013 read 华东's customers
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    sign_in(page, server, "sunli")
    # The finding, from the findings list.
    page.goto(f"{server}/console/findings?kind=stale_grant_after_move&status=open")
    link = page.locator("#findings tbody tr", has_text="P00013").locator("a.finding-link")
    finding_id = int(link.inner_text().lstrip("#"))
    link.click()
    page.wait_for_selector("#evidence")
    assert "P00013" in page.inner_text("#evidence") and "sales_manager" in page.inner_text("main")
    # A campaign over the CRM grants with findings, launched from the console.
    page.goto(f"{server}/console/campaigns")
    launch = page.locator("#launch")
    launch.locator("input[name=name]").fill("2026年第四季度 CRM 访问复核（浏览器测试）")
    launch.locator("input[name=due]").fill("2099-12-31")
    launch.locator("input[name=systems][value=crm]").check()
    launch.locator("input[name=only_findings]").check()
    launch.locator("button[type=submit]").click()
    page.wait_for_url("**/console/campaigns/*")
    page.locator("#filters input[name=person]").fill("P00013")  # the person's items (the list has pages)
    page.locator("#filters button[type=submit]").click()
    page.wait_for_url("**person=P00013**")
    row = page.locator("#items tbody tr", has=page.locator(f'a[href="/console/findings/{finding_id}"]'))
    assert row.count() == 1, "the finding's grant is not an item of the campaign"
    item_id = row.get_attribute("id").removeprefix("item-")
    # Revoke it. With JavaScript the form updates its row, the progress and the message in place (htmx).
    campaign_url = page.url
    row.locator(f"#decision-{item_id}").select_option("revoke")
    row.locator(f"#reason-{item_id}").fill("已调至市场部，不再需要华东大区销售经理权限")
    row.locator(f"#decide-{item_id}").click()
    expect(page.locator(f"#item-{item_id} .decision")).to_contain_text("撤销", timeout=10_000)
    expect(page.locator("#flash #saved")).to_contain_text("复核决定已保存")
    assert page.url == campaign_url  # a partial update, not a new page
    assert not errors, errors  # htmx ran under the console's CSP without a refusal
    assert "1" in page.inner_text("#progress-text")
    shoot(page, "campaign", "zh-CN")
    # The person's next decision: deny, in the console's explain and from the decision API.
    page.goto(f"{server}/console/people/P00013?type={record['type']}&action=read&id={record['id']}#explain-result")
    assert page.locator("#explain-decision").get_attribute("class") == "decision-deny"
    assert evaluate(server, "P00013", record) is False
    # The campaign's PDF report.
    page.goto(f"{server}/console/campaigns")
    page.locator("a", has_text="2026年第四季度 CRM 访问复核（浏览器测试）").first.click()
    with page.expect_download() as download_info:
        page.click("#report-pdf")
    download = download_info.value
    path = ARTIFACTS / "campaign-report-zh-CN.pdf"
    download.save_as(str(path))
    assert path.read_bytes()[:5] == b"%PDF-" and path.stat().st_size > 10_000
    assert download.suggested_filename.endswith(".pdf")
    context.close()


def east_customer(app: Any) -> dict[str, str]:
    """A 华东大区 customer that P00013 does not own."""
    from sqlalchemy import select

    from app.directory.models import Record

    with app.state.services.factory() as session:
        found = session.scalars(select(Record.id).where(Record.type == "crm.customer",
                                                        Record.department_id == "D-SALES-EAST",
                                                        Record.owner_id != "P00013").order_by(Record.id)).first()
    assert found
    return {"type": "crm.customer", "id": found}


def evaluate(server: str, person_id: str, record: dict[str, str]) -> bool:
    import httpx

    body = {"subject": {"type": "user", "id": person_id}, "action": {"name": "read"},
            "resource": {"type": record["type"], "id": record["id"]}}
    response = httpx.post(f"{server}/access/v1/evaluation", json=body, timeout=10,
                          headers={"authorization": f"Bearer {dev_token()}"})
    assert response.status_code == 200, response.text
    return bool(response.json()["decision"])


def test_the_auditors_pages_read_without_javascript(browser: Any, server: str) -> None:
    context = browser.new_context(java_script_enabled=False, locale="zh-CN")
    page = context.new_page()
    sign_in(page, server, "zhouqiang")  # the IdP's login page is a plain form too
    assert "审计管理员" in page.inner_text("#signed-in-duty")
    assert page.inner_text("#open-total").strip()
    page.goto(f"{server}/console/findings")
    page.select_option("select[name=severity]", "high")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/console/findings?**severity=high**")
    rows = page.locator("#findings tbody tr")
    assert rows.count() >= 1
    page.click("#findings tbody tr:first-child a.finding-link")
    assert page.locator("#evidence").count() == 1 and page.locator("#status-form").count() == 0
    # The auditor's own pages read (and switch language) without JavaScript too.
    page.goto(f"{server}/console/decisions")
    page.fill("#decision-search input[name=person]", "P00013")
    page.click("#decision-search button[type=submit]")
    page.wait_for_url("**/console/decisions?**person=P00013**")
    for lang in ("zh-CN", "en"):
        for name, path in AUDITOR_PAGES:
            response = page.goto(f"{server}{path}")
            assert response is not None and response.status == 200, (path, response and response.status)
            shoot(page, name, lang)
        if lang == "zh-CN":
            switch_language(page, server, "en")
    assert page.locator("#trail-verify #trail-ok").count() == 1  # the trail verifies intact
    context.close()
    for name, _path in AUDITOR_PAGES:
        for lang in ("zh-CN", "en"):
            assert (ARTIFACTS / f"{name}-{lang}.png").stat().st_size > 5000



AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
# Every main page, as the duty that may open it (the auditor's own pages as the auditor).
A11Y_PAGES = [("sunli", "/console/"), ("sunli", "/console/findings"), ("sunli", "/console/campaigns"),
              ("sunli", "/console/people?q=闫悦"), ("sunli", "/console/people/P00013"), ("sunli", "/console/policy"),
              ("sunli", "/console/sync"), ("sunli", "/console/reports"), ("zhouqiang", "/console/decisions"),
              ("zhouqiang", "/console/trail?verify=1")]


def test_the_main_pages_pass_axe_accessibility_checks(browser: Any, served: tuple[str, Any]) -> None:
    """axe-core (npm, tests/browser/) in Chromium on every main page, both languages: no serious or critical
    violation of WCAG 2.1 A/AA (labels, contrast, names, structure). The check's context bypasses the CSP
    only to inject axe itself."""
    if not AXE.exists():
        if in_ci():
            pytest.fail(f"axe-core is required under CI and missing at {AXE} (make test runs npm ci)")
        pytest.skip("axe-core is not installed (cd tests/browser && npm ci)")
    server, app = served
    audit = app.state.services.audit
    campaign = audit.launch_campaign(name="无障碍检查", scope={"systems": ["oa"]}, no_response="keep",
                                     due_at=datetime(2099, 1, 1, tzinfo=UTC), auto_revoke_cap=0, actor="test")
    pages = [*A11Y_PAGES, ("sunli", f"/console/campaigns/{campaign['id']}"),
             ("sunli", f"/console/campaigns/{campaign['id']}/close-preview")]
    failures: list[str] = []
    for login in ("sunli", "zhouqiang"):
        context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 768}, bypass_csp=True)
        page = context.new_page()
        sign_in(page, server, login)
        for lang in ("zh-CN", "en"):
            if lang == "en":
                switch_language(page, server, "en")
            for who, path in pages:
                if who != login:
                    continue
                response = page.goto(f"{server}{path}")
                assert response is not None and response.status == 200, path
                failures += [f"{lang} {path}: {v['id']} ({v['impact']}) at {v['nodes']}" for v in axe_violations(page)
                             if v["impact"] in ("serious", "critical")]
        # The check can fail: an input without a label, added to the last page, is reported.
        page.evaluate("document.querySelector('main').appendChild(document.createElement('input'))")
        assert "label" in {v["id"] for v in axe_violations(page)}
        context.close()
    assert not failures, "\n".join(failures)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    return page.evaluate("""async () => (await axe.run(document, {runOnly: {type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations.map(v => ({id: v.id,
        impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))""")  # type: ignore[no-any-return]
