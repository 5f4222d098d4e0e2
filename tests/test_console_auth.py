"""The console's sign-in through the real test IdP (node oidc-provider): authorization code + PKCE, state,
nonce, duties from the directory (never from claims), one duty per person, sign-out and session expiry."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.console.runtime import runtime_of
from app.directory.models import Account
from app.errors import Conflict
from tests.conftest import CONSOLE_SECRET_KEY, CONSOLE_TEST_BASE, console_env, seed_console_org
from tests.support.idp import TestIdP

pytestmark = pytest.mark.idp
CALLBACK = f"{CONSOLE_TEST_BASE}/console/auth/callback"


seed = seed_console_org  # the mini organisation and the console's people


@pytest.fixture
def console(app_factory: Callable[..., TestClient], sqlite_url: str, console_idp: TestIdP,
            monkeypatch: pytest.MonkeyPatch) -> TestClient:
    console_env(monkeypatch, console_idp.issuer)
    return app_factory(sqlite_url, seed=seed)


def idp_redirect(authorize_url: str, login: str, *, tamper: Callable[[str], str] = lambda u: u) -> str:
    """Drive the IdP like a browser (its own cookies): the login form posted; the redirect to our callback."""
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        response = http.get(tamper(authorize_url))
        while response.is_redirect or "/interaction/" in str(response.url):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(CALLBACK):
                    return location
                response = http.get(location)
                continue
            form = re.search(r'action="([^"]+/login)"', response.text)
            assert form, response.text
            response = http.post(urljoin(str(response.url), form.group(1)),
                                 data={"login": login, "password": f"{login}-test-pw"})
    raise AssertionError(f"the IdP did not redirect back: {response.status_code} {response.text[:300]}")


def start(console: TestClient, next_path: str = "/console/") -> str:
    response = console.get(f"/console/auth/login/test?next={next_path}", follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def sign_in(console: TestClient, login: str, **kwargs: Any) -> httpx.Response:
    """A whole sign-in; the callback's answer (303 to the page on success)."""
    back = idp_redirect(start(console), login, **kwargs)
    return console.get(back.removeprefix(CONSOLE_TEST_BASE), follow_redirects=False)


def test_the_authorization_request_uses_pkce_s256_state_and_nonce(console: TestClient) -> None:
    query = parse_qs(urlparse(start(console)).query)
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) >= 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["redirect_uri"] == [CALLBACK]
    assert "code_verifier" not in query


def test_a_security_admin_signs_in_sees_the_dashboard_and_signs_out(console: TestClient,
                                                                    console_idp: TestIdP) -> None:
    response = sign_in(console, "sunli")
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    cookie = response.headers["set-cookie"]
    assert "accessgov_console=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # http base URL
    page = console.get("/console/")
    assert page.status_code == 200
    assert "孙丽" in page.text and "安全管理员" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    out = console.post("/console/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert out.status_code == 303
    end_session = console_idp.discovery()["end_session_endpoint"]
    assert out.headers["location"].startswith(end_session)
    assert parse_qs(urlparse(out.headers["location"]).query)["post_logout_redirect_uri"] == [
        f"{CONSOLE_TEST_BASE}/console/signed-out"]
    assert console.get("/console/", follow_redirects=False).status_code == 303  # back to the sign-in page


def test_the_sign_in_is_recorded_by_the_claims_ingestion(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    with console.app.state.services.factory() as s:
        account = s.scalars(select(Account).where(Account.system == "idp",
                                                  Account.local_id == "u-console-secadmin")).one()
        assert account.last_login_at is not None


def test_an_auditor_linked_by_idp_subject_signs_in(console: TestClient) -> None:
    assert sign_in(console, "zhouqiang").status_code == 303
    page = console.get("/console/")
    assert "周强" in page.text and "审计管理员" in page.text


def test_a_wrong_state_is_refused(console: TestClient) -> None:
    back = idp_redirect(start(console), "sunli")
    forged = re.sub(r"state=[^&]+", "state=forged-state", back)
    response = console.get(forged.removeprefix(CONSOLE_TEST_BASE), follow_redirects=False)
    assert response.status_code == 400
    assert "state_mismatch" in response.text
    assert "accessgov_console=" not in response.headers.get("set-cookie", "").replace("accessgov_console_login", "")
    # The started sign-in is used up: the genuine callback no longer works either.
    assert console.get(back.removeprefix(CONSOLE_TEST_BASE), follow_redirects=False).status_code == 400


def test_a_wrong_nonce_is_refused(console: TestClient) -> None:
    # The authorization request is altered on its way to the IdP: the ID token carries another nonce.
    response = sign_in(console, "sunli", tamper=lambda url: re.sub(r"nonce=[^&]+", "nonce=someone-elses", url))
    assert response.status_code == 400
    assert "nonce_mismatch" in response.text
    assert console.get("/console/", follow_redirects=False).status_code == 303


def test_a_callback_without_a_started_sign_in_is_refused(console: TestClient) -> None:
    response = console.get("/console/auth/callback?state=x&code=y", follow_redirects=False)
    assert response.status_code == 400 and "no_pending_login" in response.text


@pytest.mark.parametrize(("login", "page_id", "status"), [
    ("zhengjie", "message-no_duty", 403),
    ("fengtao", "message-two_duties", 403),
])
def test_a_person_without_exactly_one_duty_is_refused(console: TestClient, login: str, page_id: str,
                                                      status: int) -> None:
    response = sign_in(console, login)
    assert response.status_code == status
    assert page_id in response.text
    if login == "fengtao":
        assert "安全管理员" in response.text and "审计管理员" in response.text
    assert "accessgov_console=" not in response.headers.get("set-cookie", "").replace("accessgov_console_login", "")
    assert console.get("/console/", follow_redirects=False).status_code == 303


def test_claims_of_a_duty_group_grant_nothing(console: TestClient) -> None:
    # zhengjie's IdP groups could be anything: the directory gives her no duty, so she is refused.
    # fengtao's groups name the security admins: it is the directory's two grants that refuse him.
    assert sign_in(console, "zhengjie").status_code == 403


def test_the_grant_service_refuses_a_second_duty(console: TestClient) -> None:
    grants = console.app.state.services.grants
    with pytest.raises(Conflict, match="separation of duties"):
        grants.create_grant(actor="test", person_id="P901", role="console_auditor", department_id=None,
                            include_subtree=False, reason="try", valid_from=None, valid_until=None)
    grant = grants.create_grant(actor="test", person_id="P904", role="console_auditor", department_id=None,
                                include_subtree=False, reason="first duty", valid_from=None, valid_until=None)
    assert grant.role == "console_auditor"


@pytest.mark.parametrize("which", ["idle", "absolute"])
def test_an_expired_session_says_so_and_offers_to_sign_in_again(console: TestClient, which: str) -> None:
    assert sign_in(console, "sunli").status_code == 303
    rt = runtime_of(console.app)
    settings = rt.settings
    real = rt.codec.clock
    if which == "idle":
        rt.codec.clock = lambda: real() + settings.idle_timeout_seconds + 1
    else:
        # Active all along (seen a minute ago) but signed in longer than the absolute lifetime.
        base = real()
        assert console.get("/console/").status_code == 200
        rt.codec.clock = lambda: base + settings.session_max_seconds + 1
    try:
        response = console.get("/console/findings", follow_redirects=False)
    finally:
        rt.codec.clock = real
    assert response.status_code == 401
    assert 'id="message-expired"' in response.text and 'id="sign-in-again"' in response.text
    assert "/console/login?next=" in response.text
    assert 'accessgov_console=""' in response.headers["set-cookie"] or "Max-Age=0" in response.headers["set-cookie"]


def test_the_idle_expiry_slides_with_use(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    rt = runtime_of(console.app)
    real, idle = rt.codec.clock, rt.settings.idle_timeout_seconds
    start_at = real()
    try:
        for step in (1, 2, 3):
            rt.codec.clock = lambda step=step: start_at + step * (idle - 5)
            assert console.get("/console/").status_code == 200
    finally:
        rt.codec.clock = real


def test_a_tampered_session_cookie_is_not_a_session(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    value = console.cookies.get("accessgov_console", path="/console")
    assert value
    console.cookies.set("accessgov_console", value[:-4] + "AAAA", path="/console")
    assert console.get("/console/", follow_redirects=False).status_code == 303


def test_the_placeholder_key_is_refused_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import AuthSettings, ConsoleSettings, Environment, Settings
    from app.console.config import SECRET_KEY_PLACEHOLDER, check_console_settings

    with pytest.raises(ValueError, match="placeholder"):
        check_console_settings(ConsoleSettings(secret_key=SECRET_KEY_PLACEHOLDER), Environment.test)
    check_console_settings(ConsoleSettings(), Environment.development)
    # Production refuses it when the settings are read, at start (not at the console's first page).
    production = {"environment": "production", "auth": AuthSettings(issuer="https://idp.example")}
    with pytest.raises(ValueError, match="ACCESSGOV_CONSOLE__SECRET_KEY"):
        Settings(**production)
    with pytest.raises(ValueError, match="32 characters"):
        Settings(**production, console=ConsoleSettings(secret_key="short"))
    assert Settings(**production, console=ConsoleSettings(enabled=False)).console.enabled is False
    monkeypatch.setenv("ACCESSGOV_CONSOLE__SESSION_MAX_SECONDS", "120")
    monkeypatch.setenv("ACCESSGOV_CONSOLE__SECRET_KEY", "k" * 40)
    assert Settings(**production).console.session_max_seconds == 120  # the section reads the environment


def test_no_token_secret_or_cookie_value_reaches_the_log(console: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """Everything the service logged while signing in, reading, being refused and signing out (DEBUG and up:
    its own loggers, authlib's, and httpx's lines for its calls to the IdP): no token, code, secret, password
    or cookie value. The test's own HTTP (TestClient, the emulated browser at the IdP) is left out."""
    caplog.set_level(logging.DEBUG)
    callback = sign_in(console, "sunli")
    cookie = console.cookies.get("accessgov_console", path="/console")
    assert cookie and callback.status_code == 303
    page = console.get("/console/")
    console.get("/console/decisions")  # refused (an auditor's page)
    console.post("/console/logout", data={"csrf": re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)})
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records if _the_services(r))
    assert "console sign-in" in logged  # the log did capture the sign-in
    for secret in (cookie, "accessgov-console-test-secret", "sunli-test-pw", CONSOLE_SECRET_KEY):
        assert secret not in logged
    assert not re.search(r"eyJ[\w-]{10,}\.[\w-]{10,}\.", logged)  # no JWT (ID token, access token)
    assert not re.search(r"[?&]code=[\w-]{8,}", logged)  # no authorization code


def _the_services(record: logging.LogRecord) -> bool:
    if record.name.startswith(("httpx", "httpcore")):  # only the service's calls: discovery, JWKS, token
        message = record.getMessage()
        return "testserver" not in message and any(p in message for p in ("/.well-known/", "/jwks", "/token"))
    return True
