"""Callers authenticate with access tokens from the real test IdP; anything else is a 401 or 403.

The app trusts the `idp` fixture (node oidc-provider): discovery, JWKS, RS256 `at+jwt` tokens.
Forged tokens are crafted by hand; JWKS traffic is counted by routing the verifier's HTTP client
through a recorder, so "refused before any JWKS fetch" is checked, not assumed.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jose import jwt
from pydantic import ValidationError

from app.config import AuthSettings, Settings
from tests.conftest import auth
from tests.support.idp import TestIdP
from tests.support.idp_fixture import serve_idp
from tests.test_idp_smoke import _auth_params, _follow, _form_action, _redeem_code

EVALUATION = {"subject": {"type": "user", "id": "crm:zhangwei01"}, "action": {"name": "read"},
              "resource": {"type": "crm.customer", "id": "CUS-1"}}
MakeApp = Callable[..., TestClient]
Recorder = Callable[[TestClient], list[str]]


@pytest.fixture
def make_app(app_factory: Callable[..., TestClient], sqlite_url: str, idp: TestIdP) -> MakeApp:
    """An app that trusts an IdP (the session one unless given), dev tokens off; settings overridable."""

    def make(server: TestIdP | None = None, **auth_overrides: Any) -> TestClient:
        server = server or idp
        settings: dict[str, Any] = {"issuer": server.issuer, "audience": server.api_audience,
                                    "jwks_min_refetch_seconds": 0.0, "dev_tokens": False}
        return app_factory(sqlite_url, auth=AuthSettings(**settings | auth_overrides))

    return make


@pytest.fixture
def private_idp() -> Iterator[TestIdP]:
    """An IdP of this test alone (key rotation would disturb the session-wide one)."""
    yield from serve_idp()


@pytest.fixture
def record_idp_requests() -> Iterator[Callable[[TestClient], list[str]]]:
    """Route an app's token verifier through an HTTP client that records every URL it fetches."""
    clients: list[httpx.Client] = []

    def record(app: TestClient) -> list[str]:
        urls: list[str] = []
        client = httpx.Client(timeout=5.0, event_hooks={"request": [lambda r: urls.append(str(r.url))]})
        clients.append(client)
        app.app.state.services.verifier._oidc._http = client  # type: ignore[attr-defined]
        return urls

    yield record
    for client in clients:
        client.close()


# -- helpers ----------------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def evaluate(app: TestClient, headers: dict[str, str]) -> httpx.Response:
    response: httpx.Response = app.post("/access/v1/evaluation", json=EVALUATION, headers=headers)
    return response


def assert_error(response: httpx.Response, status: int, code: str, message_part: str) -> None:
    """The one error body, with a machine-readable code and a message that says why."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert message_part.lower() in error["message"].lower(), error["message"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def jwks_fetches(urls: list[str], server: TestIdP) -> int:
    return urls.count(server.discovery()["jwks_uri"])


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def real_claims(server: TestIdP, client_id: str = "crm-backend") -> dict[str, Any]:
    """The claims of a genuine token: forgeries below differ only in header and signature."""
    return dict(jwt.get_unverified_claims(server.token(client_id)))


def current_kid(server: TestIdP) -> str:
    return str(server.jwks()["keys"][0]["kid"])


def throwaway_rsa_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def signed_by_stranger(claims: dict[str, Any], kid: str, pem: bytes | None = None) -> str:
    """An RS256 at+jwt signed with a key the IdP never published."""
    return str(jwt.encode(claims, (pem or throwaway_rsa_pem()).decode(), algorithm="RS256",
                          headers={"kid": kid, "typ": "at+jwt"}))


def alg_none_token(server: TestIdP) -> str:
    header = {"alg": "none", "typ": "at+jwt", "kid": current_kid(server)}
    return f"{b64url(header)}.{b64url(real_claims(server))}."


def hs256_token(server: TestIdP) -> str:
    return str(jwt.encode(real_claims(server), secrets.token_hex(32), algorithm="HS256",
                          headers={"kid": current_kid(server), "typ": "at+jwt"}))


def id_token_from_console_login(server: TestIdP) -> str:
    """An ID token of a real login: validly signed by the IdP, but not an access token (typ)."""
    verifier = secrets.token_urlsafe(48)
    account = server.account("liming")
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        page = _follow(browser, browser.get(server.discovery()["authorization_endpoint"],
                                            params=_auth_params(verifier)))
        login = browser.post(_form_action(page), data={"login": "liming", "password": account["password"]})
        callback = _follow(browser, login)
    return str(_redeem_code(server, callback, verifier)["id_token"])


# -- a genuine token ------------------------------------------------------------------------------


@pytest.mark.idp
def test_backend_with_idp_token_gets_a_decision(make_app: MakeApp, idp: TestIdP) -> None:
    response = evaluate(make_app(), bearer(idp.token("crm-backend")))

    assert response.status_code == 200, response.text
    assert response.json()["decision"] is True


# -- no token, or not a bearer token --------------------------------------------------------------


@pytest.mark.idp
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({}, "bearer token is required", id="no-authorization-header"),
        pytest.param({"Authorization": "Basic Y3JtLWJhY2tlbmQ6c2VjcmV0"}, "bearer token is required",
                     id="basic-auth"),
        pytest.param({"Authorization": "Bearer not-a-jwt"}, "malformed", id="garbage-token"),
    ],
)
def test_request_without_a_usable_bearer_token_is_401(make_app: MakeApp, headers: dict[str, str],
                                                      message: str) -> None:
    assert_error(evaluate(make_app(), headers), 401, "unauthorized", message)


# -- forged tokens --------------------------------------------------------------------------------


@pytest.mark.idp
@pytest.mark.parametrize("forge", [alg_none_token, hs256_token], ids=["alg-none", "hs256-random-secret"])
def test_forged_algorithm_is_refused_before_any_jwks_fetch(
    make_app: MakeApp, idp: TestIdP, record_idp_requests: Recorder, forge: Callable[[TestIdP], str]
) -> None:
    app = make_app()
    urls = record_idp_requests(app)

    refused = evaluate(app, bearer(forge(idp)))
    fetched_for_forgery = list(urls)
    accepted = evaluate(app, bearer(idp.token("crm-backend")))

    assert_error(refused, 401, "unauthorized", "algorithm")
    assert fetched_for_forgery == []
    # Contrast: a genuine token with the same kid does reach the JWKS (the recorder works).
    assert accepted.status_code == 200
    assert jwks_fetches(urls, idp) == 1


@pytest.mark.idp
def test_token_signed_by_a_key_unknown_to_the_idp_is_401(make_app: MakeApp, idp: TestIdP) -> None:
    token = signed_by_stranger(real_claims(idp), kid=f"stranger-{uuid.uuid4()}")

    assert_error(evaluate(make_app(), bearer(token)), 401, "unauthorized", "unknown key")


@pytest.mark.idp
def test_token_re_signed_by_a_stranger_under_the_idps_kid_is_401(make_app: MakeApp, idp: TestIdP) -> None:
    token = signed_by_stranger(real_claims(idp), kid=current_kid(idp))

    assert_error(evaluate(make_app(), bearer(token)), 401, "unauthorized", "signature")


@pytest.mark.idp
def test_idp_signature_under_a_claimed_ec_algorithm_is_401_not_500(make_app: MakeApp, idp: TestIdP) -> None:
    """Algorithm confusion: header says ES256, the kid names the IdP's RSA key (was a 500: JWKError)."""
    header, claims, signature = idp.token("crm-backend").split(".")
    confused = b64url(jwt.get_unverified_header(f"{header}.{claims}.{signature}") | {"alg": "ES256"})

    response = evaluate(make_app(), bearer(f"{confused}.{claims}.{signature}"))

    assert_error(response, 401, "unauthorized", "signature")


@pytest.mark.idp
def test_idp_id_token_is_not_accepted_as_an_access_token(make_app: MakeApp, idp: TestIdP) -> None:
    id_token = id_token_from_console_login(idp)
    # The app's audience is the ID token's own (the console client), so only `typ` can refuse it.
    app = make_app(audience="console")

    assert jwt.get_unverified_claims(id_token)["aud"] == "console"
    assert_error(evaluate(app, bearer(id_token)), 401, "unauthorized", "typ")


# -- the right IdP, the wrong configuration -------------------------------------------------------


@pytest.mark.idp
def test_token_for_another_audience_is_401(make_app: MakeApp, idp: TestIdP) -> None:
    app = make_app(audience="https://another-service.test/api")

    assert_error(evaluate(app, bearer(idp.token("crm-backend"))), 401, "unauthorized", "audience")


@pytest.mark.idp
def test_issuer_must_match_exactly_localhost_is_not_127_0_0_1(make_app: MakeApp, idp: TestIdP) -> None:
    app = make_app(issuer=idp.issuer.replace("127.0.0.1", "localhost"))

    assert_error(evaluate(app, bearer(idp.token("crm-backend"))), 401, "unauthorized", "issuer")


@pytest.mark.idp
def test_token_from_another_idp_is_401(make_app: MakeApp, idp: TestIdP, private_idp: TestIdP) -> None:
    app = make_app(server=private_idp)

    assert_error(evaluate(app, bearer(idp.token("crm-backend"))), 401, "unauthorized", "unknown key")


@pytest.mark.idp
def test_expired_token_is_401(make_app: MakeApp, idp: TestIdP) -> None:
    app = make_app(leeway_seconds=0)
    token = idp.token("short-ttl-client")
    exp = jwt.get_unverified_claims(token)["exp"]

    before = evaluate(app, bearer(token))
    time.sleep(max(0.0, exp - time.time()) + 1.1)
    after = evaluate(app, bearer(token))

    assert before.status_code == 200, before.text
    assert_error(after, 401, "unauthorized", "expired")


# -- scopes ---------------------------------------------------------------------------------------


@pytest.mark.idp
def test_decide_only_client_may_evaluate(make_app: MakeApp, idp: TestIdP) -> None:
    assert evaluate(make_app(), bearer(idp.token("oa-backend"))).status_code == 200


@pytest.mark.idp
@pytest.mark.parametrize(("path", "scope"), [("/v1/grants", "accessgov.directory"),
                                             ("/v1/changes", "accessgov.audit")])
def test_decide_only_client_is_403_on_other_apis(make_app: MakeApp, idp: TestIdP, path: str,
                                                 scope: str) -> None:
    response = make_app().get(path, headers=bearer(idp.token("oa-backend")))

    assert_error(response, 403, "forbidden", scope)


@pytest.mark.idp
def test_client_without_scopes_is_403_on_evaluation(make_app: MakeApp, idp: TestIdP) -> None:
    response = evaluate(make_app(), bearer(idp.token("no-scope-client")))

    assert_error(response, 403, "forbidden", "accessgov.decide")


# -- JWKS: rotation and refetch limits ------------------------------------------------------------


@pytest.mark.idp
def test_key_rotation_new_tokens_work_old_ones_stop(make_app: MakeApp, private_idp: TestIdP) -> None:
    app = make_app(server=private_idp)
    old_token = private_idp.token("crm-backend")
    assert evaluate(app, bearer(old_token)).status_code == 200

    new_kid = private_idp.rotate_keys()
    new_token = private_idp.token("crm-backend")

    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert evaluate(app, bearer(new_token)).status_code == 200
    assert_error(evaluate(app, bearer(old_token)), 401, "unauthorized", "unknown key")


@pytest.mark.idp
def test_unknown_kids_cause_at_most_one_jwks_fetch_per_interval(
    make_app: MakeApp, idp: TestIdP, record_idp_requests: Recorder
) -> None:
    app = make_app(jwks_min_refetch_seconds=60)
    urls = record_idp_requests(app)
    claims, pem = real_claims(idp), throwaway_rsa_pem()

    refused = [evaluate(app, bearer(signed_by_stranger(claims, f"random-{uuid.uuid4()}", pem)))
               for _ in range(5)]
    genuine = evaluate(app, bearer(idp.token("crm-backend")))

    for response in refused:
        assert_error(response, 401, "unauthorized", "unknown key")
    assert jwks_fetches(urls, idp) == 1
    assert genuine.status_code == 200  # its key came with that one fetch


# -- development tokens ---------------------------------------------------------------------------


@pytest.mark.idp
def test_dev_token_is_refused_when_dev_tokens_are_off(make_app: MakeApp) -> None:
    assert_error(evaluate(make_app(), auth()), 401, "unauthorized", "algorithm")


def test_production_settings_refuse_dev_tokens() -> None:
    with pytest.raises(ValidationError, match="development tokens are refused"):
        Settings(environment="production", auth=AuthSettings(dev_tokens=True, issuer="http://x"))
