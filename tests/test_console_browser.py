"""The console in a real Chromium (Playwright, Debian's /usr/bin/chromium): signed in through the test
IdP's own login page, on the demo organisation after an audit run; screenshots of the dashboard, the
findings and a finding in both languages go to tests/artifacts/console/; and the pages read without JavaScript."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.console.runtime import runtime_of
from app.db import transaction
from app.demo.load import load_demo
from app.main import create_app
from tests.conftest import ROOT, console_env, in_ci, make_settings, prepare_database, seed_console_people
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
def server(console_socket: Any, console_idp: TestIdP, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on the reserved socket, with the demo organisation, the console's people and an audit run."""
    import uvicorn

    _chromium_or_skip()
    port = console_socket.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(f"sqlite:///{tmp_path_factory.mktemp('console') / 'accessgov.db'}")
    prepare_database(settings, seed=None)
    with pytest.MonkeyPatch.context() as mp:
        console_env(mp, console_idp.issuer, base_url=base)
        app = create_app(settings)
        runtime_of(app)  # built now, while the environment names the IdP
    services = app.state.services
    load_demo(services, history=False)
    with transaction(services.factory) as session:
        seed_console_people(session)
    services.policy.reload()
    services.audit.run(trigger="manual", actor="test")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [console_socket]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the console server did not start"
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)


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
            page.click("#lang-en")
            page.wait_for_url(f"{server}/console/")
            assert "Security administrator" in page.inner_text("#signed-in-duty")
        assert page.locator("svg.chart rect.bar").count() >= 1
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{lang}.png"), full_page=True)
        page.goto(f"{server}/console/findings?status=open")
        assert page.locator("#findings tbody tr").count() >= 1
        page.screenshot(path=str(ARTIFACTS / f"findings-{lang}.png"), full_page=True)
        page.click("#findings tbody tr:first-child a.finding-link")
        page.wait_for_selector("#evidence")
        assert page.locator("#status-form").count() == 1
        page.screenshot(path=str(ARTIFACTS / f"finding-{lang}.png"), full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e]
    page.goto(f"{server}/console/")
    page.click("#sign-out")
    page.wait_for_load_state()
    context.close()
    for name in ("dashboard", "findings", "finding"):
        for lang in ("zh-CN", "en"):
            assert (ARTIFACTS / f"{name}-{lang}.png").stat().st_size > 5000


def test_the_dashboard_and_findings_read_without_javascript(browser: Any, server: str) -> None:
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
    context.close()

