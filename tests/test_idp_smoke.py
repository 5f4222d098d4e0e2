"""The test IdP (tests/idp) behaves like the real provider the app will trust."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from jose import jwt
from jose.exceptions import JWTError

from tests.support.idp import TestIdP
from tests.support.idp_fixture import serve_idp

pytestmark = pytest.mark.idp

CONSOLE_REDIRECT_URI = "http://127.0.0.1:9/callback"  # provider default without --console-redirect-uri


@pytest.fixture(scope="module", name="idp")
def module_idp() -> Iterator[TestIdP]:
    """One IdP for this module; defined here so the file runs alone (shadows a conftest `idp`)."""
    yield from serve_idp()


@pytest.fixture(name="fresh_idp")
def private_idp() -> Iterator[TestIdP]:
    """A private IdP, for tests that change provider state (key rotation)."""
    yield from serve_idp()


def verify(idp: TestIdP, token: str, audience: str, **options: Any) -> dict[str, Any]:
    """Verify a JWT against the provider's current JWKS, like a resource server would."""
    kid = jwt.get_unverified_header(token)["kid"]
    keys = [key for key in idp.jwks()["keys"] if key["kid"] == kid]
    if not keys:
        raise JWTError(f"kid {kid} not in JWKS")
    claims: dict[str, Any] = jwt.decode(
        token, keys[0], algorithms=["RS256"], audience=audience, issuer=idp.issuer, **options
    )
    return claims


def test_discovery_names_exact_issuer_and_jwks(idp: TestIdP) -> None:
    response = httpx.get(f"{idp.issuer}/.well-known/openid-configuration")

    assert response.status_code == 200
    document = response.json()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", idp.issuer)
    assert document["issuer"] == idp.issuer
    assert document["jwks_uri"].startswith(f"{idp.issuer}/")
    assert document["code_challenge_methods_supported"] == ["S256"]


def test_client_credentials_token_is_rs256_jwt_for_the_api(idp: TestIdP) -> None:
    token = idp.token("crm-backend")  # no resource=: defaultResource must pick the API

    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    assert header["kid"] in {key["kid"] for key in idp.jwks()["keys"]}
    claims = verify(idp, token, idp.api_audience)
    assert claims["iss"] == idp.issuer
    assert claims["aud"] == idp.api_audience == "https://accessgov.test/api"
    assert claims["client_id"] == "crm-backend"
    assert set(claims["scope"].split()) == {"accessgov.decide", "accessgov.directory"}


def test_scopes_outside_a_clients_allowance_are_not_granted(idp: TestIdP) -> None:
    no_scope = idp.token_response("no-scope-client", scope="accessgov.decide")
    crm = idp.token("crm-backend", scope="accessgov.decide accessgov.policy")

    if no_scope.status_code == 200:
        claims = jwt.get_unverified_claims(no_scope.json()["access_token"])
        assert "accessgov.decide" not in claims.get("scope", "").split()
    assert jwt.get_unverified_claims(crm)["scope"].split() == ["accessgov.decide"]


def test_wrong_client_secret_is_rejected(idp: TestIdP) -> None:
    response = httpx.post(
        idp.discovery()["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "accessgov.decide"},
        auth=("crm-backend", "not-the-secret"),
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_unknown_resource_is_rejected(idp: TestIdP) -> None:
    response = idp.token_response("crm-backend", resource="https://elsewhere.test/api")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_short_ttl_client_gets_two_second_tokens(idp: TestIdP) -> None:
    claims = verify(idp, idp.token("short-ttl-client"), idp.api_audience)

    assert 0 < claims["exp"] - claims["iat"] <= 2


def test_rotate_keys_replaces_the_signing_key(fresh_idp: TestIdP) -> None:
    old_token = fresh_idp.token("oa-backend")
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    new_kid = fresh_idp.rotate_keys()

    kids = {key["kid"] for key in fresh_idp.jwks()["keys"]}
    assert new_kid != old_kid
    assert kids == {new_kid}
    new_token = fresh_idp.token("oa-backend")
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    verify(fresh_idp, new_token, fresh_idp.api_audience)
    with pytest.raises(JWTError):
        verify(fresh_idp, old_token, fresh_idp.api_audience)


def test_console_login_form_and_id_token_claims(idp: TestIdP) -> None:
    account = idp.account("wangfang")
    verifier = secrets.token_urlsafe(48)

    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        form_page = browser.get(idp.discovery()["authorization_endpoint"], params=_auth_params(verifier))
        form_page = _follow(browser, form_page)
        action = _form_action(form_page)
        rejected = browser.post(action, data={"login": "wangfang", "password": "wrong"})
        accepted = browser.post(action, data={"login": "wangfang", "password": account["password"]})
        callback = _follow(browser, accepted)

    assert rejected.status_code == 401
    assert 'id="error"' in rejected.text
    tokens = _redeem_code(idp, callback, verifier)
    claims = verify(idp, tokens["id_token"], "console", access_token=tokens["access_token"])
    assert claims["sub"] == "u-wangfang"
    assert claims["name"] == "王芳"
    assert claims["employee_no"] == "E1001"
    assert claims["department"] == "信息安全部"
    assert claims["oa_roles"] == ["security_officer"]
    assert claims["groups"] == ["accessgov-security-admins"]


def _auth_params(verifier: str) -> dict[str, str]:
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return {
        "client_id": "console",
        "response_type": "code",
        "scope": "openid profile email",
        "redirect_uri": CONSOLE_REDIRECT_URI,
        "state": "state-123",
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def _follow(browser: httpx.Client, response: httpx.Response) -> httpx.Response:
    """Follow redirects inside the provider; stop at the console's callback (nothing listens)."""
    for _ in range(10):
        location = response.headers.get("location", "")
        if not response.is_redirect or location.startswith(CONSOLE_REDIRECT_URI):
            return response
        response = browser.get(response.url.join(location))
    raise AssertionError("redirect loop at the test IdP")


def _form_action(page: httpx.Response) -> httpx.URL:
    assert page.status_code == 200, page.text
    for element_id in ("login", "password", "submit"):
        assert f'id="{element_id}"' in page.text
    match = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert match, page.text
    return page.url.join(match.group(1))


def _redeem_code(idp: TestIdP, callback: httpx.Response, verifier: str) -> dict[str, Any]:
    query = parse_qs(urlsplit(callback.headers["location"]).query)
    assert query["state"] == ["state-123"], query
    response = httpx.post(
        idp.discovery()["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": CONSOLE_REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=("console", idp.client_secret("console")),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())
