"""OIDC claims as a sync source, with tokens from a real sign-in at the test IdP (node oidc-provider,
authorization code + PKCE, the login form posted as a browser would): the ID token, and the JWT
access token (RFC 9068) the console gets for the CRM's API (``resource=``, RFC 8707), which carries
the person's claims (no e-mail) and Keycloak-style ``resource_access`` client roles."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from jose import jwt
from sqlalchemy import func, select, update

import tests.conftest
from app.config import AuthSettings, SyncSettings
from app.directory.models import Account, Grant, Person
from app.errors import InvalidRequest
from app.sync.config import load_sync_config
from app.sync.models import SyncRun
from tests.conftest import DEV_SECRET, ROOT
from tests.support.idp import TestIdP

REDIRECT = "http://127.0.0.1:9/callback"  # the provider's default console redirect URI (never called)
CRM_API = "https://crm.accessgov.test/api"  # accepted: the CRM's API (tests/idp/fixture.json)
CRM_SHORT = "https://crm.accessgov.test/short-lived"  # accepted, 2-second tokens
OA_API = "https://oa.accessgov.test/api"  # a real resource of the IdP that the source does not accept
SOURCES = f"""
masters: {{people: idp, status: idp, name: idp, department: idp, email: idp, employee_no: idp}}
defaults: {{interval_minutes: 0}}
sources:
  idp: {{connector: oidc, kind: idp, id_token_audiences: [console],
        access_token_audiences: ["{CRM_API}", "{CRM_SHORT}"],
        claims: {{key: sub, name: name, email: email, employee_no: employee_no, department: department,
                 roles: [crm_roles, oa_roles, groups, resource_access.crm.roles]}}}}
  ldap-idp: {{connector: oidc, kind: idp, id_token_audiences: [console]}}   # takes ID tokens only
"""
# The IdP group the auditors are in, mapped onto the central auditor role for this source: a real
# assignment (SCIM, an events push) would grant it; a claim of it must not.
IDP_ROLES = "  idp:\n    accessgov-auditors: {role: auditor, scope: company}\n"
PASSWORDS = {"liming": "liming-test-pw", "zhaolei": "zhaolei-test-pw", "wangfang": "wangfang-test-pw"}


def sign_in_tokens(idp: TestIdP, login: str, password: str, resource: str | None = None) -> dict[str, Any]:
    """The token response of a sign-in through the authorization code flow with PKCE; with a
    ``resource``, its access token is a JWT for that resource server (else it is for userinfo)."""
    discovery = idp.discovery()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"client_id": "console", "response_type": "code", "scope": "openid profile email",
              "redirect_uri": REDIRECT, "state": "s", "nonce": "n", "code_challenge": challenge,
              "code_challenge_method": "S256"}
    if resource is not None:
        params |= {"resource": resource, "scope": "openid profile email crm.read oa.read"}
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        response = http.get(httpx.URL(discovery["authorization_endpoint"], params=params))
        location = ""
        while response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(REDIRECT):
                break
            response = http.get(location)
            form = re.search(r'action="([^"]+/login)"', response.text)
            if form:
                response = http.post(urljoin(str(response.url), form.group(1)),
                                     data={"login": login, "password": password})
        code = parse_qs(urlparse(location).query)["code"][0]
        form_data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                     "code_verifier": verifier}
        if resource is not None:
            form_data["resource"] = resource
        tokens = http.post(discovery["token_endpoint"], auth=("console", idp.client_secret("console")),
                           data=form_data)
    assert tokens.status_code == 200, tokens.text
    return dict(tokens.json())


def sign_in(idp: TestIdP, login: str, password: str) -> str:
    """The ID token of a sign-in through the authorization code flow with PKCE."""
    return str(sign_in_tokens(idp, login, password)["id_token"])


def access_token(idp: TestIdP, login: str, resource: str = CRM_API) -> str:
    """A signed-in person's JWT access token for a resource server."""
    return str(sign_in_tokens(idp, login, PASSWORDS[login], resource)["access_token"])


def make_api(app_factory: Callable[..., TestClient], url: str, idp: TestIdP, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> TestClient:
    root = tmp_path / "root"
    shutil.copytree(ROOT / "policies", root / "policies")
    roles = root / "policies" / "roles.yaml"
    roles.write_text(roles.read_text(encoding="utf-8").rstrip("\n") + "\n" + IDP_ROLES, encoding="utf-8")
    monkeypatch.setattr(tests.conftest, "ROOT", root)
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES, encoding="utf-8")
    auth = AuthSettings(issuer=idp.issuer, audience=idp.api_audience, dev_tokens=True, dev_secret=DEV_SECRET,
                        jwks_min_refetch_seconds=0.0, leeway_seconds=0)
    return app_factory(url, auth=auth, sync=SyncSettings(sources_file=sources, schedule=False))


@pytest.fixture
def api(sqlite_url: str, app_factory: Callable[..., TestClient], idp: TestIdP, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """The app on SQLite."""
    return make_api(app_factory, sqlite_url, idp, tmp_path, monkeypatch)


@pytest.fixture
def api_db(db_url: str, app_factory: Callable[..., TestClient], idp: TestIdP, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """The app on SQLite and on PostgreSQL (db_url first: torn down after the app is closed)."""
    return make_api(app_factory, db_url, idp, tmp_path, monkeypatch)


def bearer(idp: TestIdP) -> dict[str, str]:
    return {"Authorization": f"Bearer {idp.token('crm-backend')}"}


def post_claims(api: TestClient, idp: TestIdP, source: str = "idp", **body: Any) -> httpx.Response:
    return api.post(f"/v1/sync/sources/{source}/claims", json=body, headers=bearer(idp))


def account(api: TestClient, local_id: str) -> Account:
    with api.app.state.services.factory() as s:
        return s.scalars(select(Account).where(Account.system == "idp", Account.local_id == local_id)).one()


def person(api: TestClient, person_id: str) -> Person:
    with api.app.state.services.factory() as s:
        found = s.get(Person, person_id)
        assert found is not None
        return found


def runs(api: TestClient) -> int:
    with api.app.state.services.factory() as s:
        return int(s.scalar(select(func.count()).select_from(SyncRun)) or 0)


def grants_of(api: TestClient, person_id: str) -> list[str]:
    with api.app.state.services.factory() as s:
        return [g.role for g in s.scalars(select(Grant).where(Grant.person_id == person_id,
                                                              Grant.revoked_at.is_(None)))]


def may_read_customers(api: TestClient, idp: TestIdP, person_id: str) -> bool:
    out = api.post("/access/v1/evaluation", headers=bearer(idp), json={
        "subject": {"type": "user", "id": person_id}, "action": {"name": "read"},
        "resource": {"type": "crm.customer", "id": "CUS-1"}})
    assert out.status_code == 200, out.text
    return bool(out.json()["decision"])


def issued_at(token: str) -> datetime:
    return datetime.fromtimestamp(jwt.get_unverified_claims(token)["iat"], UTC)


def set_last_login(api: TestClient, local_id: str, at: datetime) -> None:
    with api.app.state.services.factory() as s, s.begin():
        s.execute(update(Account).where(Account.system == "idp", Account.local_id == local_id)
                  .values(last_login_at=at))


# -- ID tokens -------------------------------------------------------------------------------------


def test_a_sign_in_creates_the_person_just_in_time_and_claims_grant_nothing(api: TestClient, idp: TestIdP) -> None:
    token = sign_in(idp, "liming", "liming-test-pw")
    out = post_claims(api, idp, id_token=token)
    assert out.status_code == 200, out.text
    body: dict[str, Any] = out.json()
    assert body["status"] == "applied" and body["account"]["person_id"] == "idp-u-liming"
    assert body["token"] == "id_token"
    factory = api.app.state.services.factory
    with factory() as s:
        person = s.get(Person, "idp-u-liming")
        assert (person.name, person.employee_no, person.email) == ("李明", "E2001", "liming@accessgov.test")
        account = s.scalars(select(Account).where(Account.system == "idp", Account.local_id == "u-liming")).one()
        assert account.attributes["claimed_roles"] == ["sales_rep", "employee", "sales"]
        assert account.last_login_at == issued_at(token)  # the sign-in, for the dormancy audit
        assert s.scalars(select(Grant).where(Grant.person_id == "idp-u-liming")).all() == []  # evidence only
    assert body["signed_in_at"] == body["account"]["last_login_at"] == issued_at(token).isoformat()[:19] + "Z"
    assert may_read_customers(api, idp, "idp-u-liming") is False  # a known person now, holding nothing
    again = post_claims(api, idp, id_token=token).json()
    assert again["status"] == "unchanged" and again["run"] is None


@pytest.mark.parametrize("tamper", ["signature", "audience", "garbage"])
def test_a_token_that_is_not_a_valid_id_token_changes_nothing(api: TestClient, idp: TestIdP, tamper: str) -> None:
    if tamper == "signature":
        token = sign_in(idp, "zhaolei", "zhaolei-test-pw")
        head, payload, sig = token.split(".")
        token = ".".join([head, payload, ("A" if sig[0] != "A" else "B") + sig[1:]])
    elif tamper == "audience":
        token = idp.token("crm-backend")  # an API access token: audience and type are not an ID token's
    else:
        token = "not-a-jwt"
    out = post_claims(api, idp, id_token=token)
    assert out.status_code == 401, out.text
    assert out.json()["error"]["details"] == {"token": "id_token"}
    with api.app.state.services.factory() as s:
        assert s.scalars(select(Account).where(Account.system == "idp")).all() == []


# -- access tokens ---------------------------------------------------------------------------------


def test_an_access_token_creates_the_person_just_in_time_and_its_claims_grant_nothing(
        api_db: TestClient, idp: TestIdP) -> None:
    api = api_db
    token = access_token(idp, "zhaolei")
    header, claims = jwt.get_unverified_header(token), jwt.get_unverified_claims(token)
    assert (header["typ"], claims["aud"], claims["client_id"], claims["sub"]) == ("at+jwt", CRM_API, "console",
                                                                                   "u-zhaolei")
    assert "email" not in claims and claims["groups"] == ["accessgov-auditors"]

    out = post_claims(api, idp, access_token=token)

    assert out.status_code == 200, out.text
    body = out.json()
    assert (body["status"], body["token"], body["account"]["person_id"]) == ("applied", "access_token",
                                                                            "idp-u-zhaolei")
    assert body["run"]["counts"]["people_created"] == 1
    created = person(api, "idp-u-zhaolei")
    assert (created.name, created.employee_no, created.email, created.status) == ("赵磊", "E3001", None, "active")
    row = account(api, "u-zhaolei")
    assert row.attributes["login"] == "zhaolei"
    assert row.attributes["claimed_roles"] == ["crm_readonly", "auditor", "accessgov-auditors", "crm-audit"]
    assert row.last_login_at == issued_at(token)
    # Claimed roles are evidence: no grant, although the group is mapped onto the auditor role.
    assert grants_of(api, "idp-u-zhaolei") == []
    assert may_read_customers(api, idp, "idp-u-zhaolei") is False
    # Contrast: the same group as a real assignment of the source (an events push) does grant.
    pushed = api.post("/v1/sync/sources/idp/events", headers=bearer(idp), json={"events": [
        {"type": "role.members", "role": {"key": "accessgov-auditors", "name": "accessgov-auditors"},
         "members": ["u-zhaolei"]}]})
    assert pushed.status_code == 200 and pushed.json()["status"] == "applied", pushed.text
    assert grants_of(api, "idp-u-zhaolei") == ["auditor"]
    assert may_read_customers(api, idp, "idp-u-zhaolei") is True


def test_an_access_token_updates_the_person_and_what_it_does_not_carry_stays(api_db: TestClient,
                                                                             idp: TestIdP) -> None:
    api = api_db
    assert post_claims(api, idp, id_token=sign_in(idp, "liming", PASSWORDS["liming"])).json()["status"] == "applied"
    with api.app.state.services.factory() as s, s.begin():  # the directory's name went stale meanwhile
        s.execute(update(Person).where(Person.id == "idp-u-liming").values(name="李明（旧）"))

    out = post_claims(api, idp, access_token=access_token(idp, "liming"))  # no e-mail; adds client roles

    assert out.status_code == 200, out.text
    assert out.json()["status"] == "applied"
    updated = person(api, "idp-u-liming")
    assert (updated.name, updated.email, updated.employee_no) == ("李明", "liming@accessgov.test", "E2001")
    row = account(api, "u-liming")
    assert (row.email, row.attributes["login"]) == ("liming@accessgov.test", "liming")
    assert row.attributes["claimed_roles"] == ["sales_rep", "employee", "sales", "crm-sales"]
    assert grants_of(api, "idp-u-liming") == []
    # The other way round: an ID token has no `resource_access` and no `preferred_username`; the
    # client roles and the login the access token claimed stay.
    again = post_claims(api, idp, id_token=sign_in(idp, "liming", PASSWORDS["liming"])).json()
    assert again["status"] == "unchanged"
    assert again["account"]["claimed_roles"] == ["sales_rep", "employee", "sales", "crm-sales"]


def test_every_sign_in_is_recorded_for_the_dormancy_audit(api_db: TestClient, idp: TestIdP) -> None:
    api = api_db
    first = sign_in(idp, "liming", PASSWORDS["liming"])
    assert post_claims(api, idp, id_token=first).json()["status"] == "applied"
    assert account(api, "u-liming").last_login_at == issued_at(first)
    second = access_token(idp, "liming")
    assert post_claims(api, idp, access_token=second).json()["status"] == "applied"  # adds client roles
    assert account(api, "u-liming").last_login_at == issued_at(second)
    dormant = datetime.now(UTC) - timedelta(days=100)
    set_last_login(api, "u-liming", dormant.replace(microsecond=0))
    before = runs(api)
    listed = api.get("/v1/accounts", params={"person_id": "idp-u-liming"}, headers=bearer(idp)).json()
    assert [a["last_login_at"][:10] for a in listed if a["system"] == "idp"] == [dormant.date().isoformat()]

    for kind, token in (("access_token", access_token(idp, "liming")),
                        ("id_token", sign_in(idp, "liming", PASSWORDS["liming"]))):
        out = post_claims(api, idp, **{kind: token})
        assert out.status_code == 200, out.text
        body = out.json()
        # Nothing about the person changed: no run, only the sign-in is written.
        assert (body["status"], body["token"], body["run"]) == ("unchanged", kind, None)
        assert account(api, "u-liming").last_login_at == issued_at(token)
        assert body["account"]["last_login_at"] == body["signed_in_at"]
    assert runs(api) == before
    recent = datetime.now(UTC) - timedelta(minutes=5)
    listed = api.get("/v1/accounts", params={"person_id": "idp-u-liming"}, headers=bearer(idp)).json()
    assert all(datetime.fromisoformat(a["last_login_at"]) > recent for a in listed if a["system"] == "idp")
    # An older token later never moves the sign-in back.
    set_last_login(api, "u-liming", datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1))
    later = account(api, "u-liming").last_login_at
    assert post_claims(api, idp, id_token=first).json()["status"] == "unchanged"
    assert account(api, "u-liming").last_login_at == later


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _expired(idp: TestIdP) -> str:
    token = access_token(idp, "liming", CRM_SHORT)
    time.sleep(max(0.0, jwt.get_unverified_claims(token)["exp"] - time.time()) + 1.1)
    return token


def _alg_none(idp: TestIdP) -> str:
    genuine = access_token(idp, "liming")
    header = jwt.get_unverified_header(genuine) | {"alg": "none"}
    return f"{_b64(header)}.{genuine.split('.')[1]}."


def _bad_signature(idp: TestIdP) -> str:
    head, payload, sig = access_token(idp, "liming").split(".")
    return ".".join([head, payload, ("A" if sig[0] != "A" else "B") + sig[1:]])


REFUSED: dict[str, tuple[str, Callable[[TestIdP], str], int, str, str]] = {
    # case: (body member, token maker, status, error code, part of the message)
    "wrong-audience": ("access_token", lambda idp: access_token(idp, "liming", OA_API), 401, "unauthorized",
                       "audience"),
    "expired": ("access_token", _expired, 401, "unauthorized", "expired"),
    "client-credentials": ("access_token", lambda idp: idp.token("crm-backend", scope="crm.read", resource=CRM_API),
                           422, "not_a_user_token", "client credentials"),
    "alg-none": ("access_token", _alg_none, 401, "unauthorized", "algorithm 'none'"),
    "bad-signature": ("access_token", _bad_signature, 401, "unauthorized", "signature"),
    "id-token-as-access-token": ("access_token", lambda idp: sign_in(idp, "liming", PASSWORDS["liming"]), 401,
                                 "unauthorized", "not an access token (typ)"),
    "access-token-as-id-token": ("id_token", lambda idp: access_token(idp, "liming"), 401, "unauthorized",
                                 "not an id token (typ)"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_token_says_why_and_changes_nothing(api: TestClient, idp: TestIdP, case: str) -> None:
    member, make, status, code, message = REFUSED[case]
    assert post_claims(api, idp, id_token=sign_in(idp, "liming", PASSWORDS["liming"])).status_code == 200
    dormant = (datetime.now(UTC) - timedelta(days=100)).replace(microsecond=0)
    set_last_login(api, "u-liming", dormant)
    with api.app.state.services.factory() as s:
        before = [(a.local_id, a.person_id, a.display_name, a.email, a.attributes, a.last_login_at)
                  for a in s.scalars(select(Account).where(Account.system == "idp"))]
        people = s.scalar(select(func.count()).select_from(Person))
    started = runs(api)
    token = make(idp)

    out = post_claims(api, idp, **{member: token})

    assert out.status_code == status, out.text
    error = out.json()["error"]
    assert error["code"] == code
    assert message.lower() in error["message"].lower(), error["message"]
    assert error["message"].startswith(f"{member} refused: ")
    assert error["details"]["token"] == member
    with api.app.state.services.factory() as s:
        after = [(a.local_id, a.person_id, a.display_name, a.email, a.attributes, a.last_login_at)
                 for a in s.scalars(select(Account).where(Account.system == "idp"))]
        assert after == before and after[0][-1] == dormant  # not even the sign-in time
        assert s.scalar(select(func.count()).select_from(Person)) == people
    assert runs(api) == started


def test_the_body_carries_exactly_one_token_of_a_kind_the_source_accepts(api: TestClient, idp: TestIdP) -> None:
    token = access_token(idp, "liming")
    for body in ({}, {"id_token": token, "access_token": token}, {"token": token}):
        out = post_claims(api, idp, **body)
        assert out.status_code == 400, out.text
        assert out.json()["error"]["code"] == "invalid_request"
    both = post_claims(api, idp, id_token=token, access_token=token).json()["error"]
    assert "exactly one of id_token and access_token" in json.dumps(both["details"])
    out = post_claims(api, idp, source="ldap-idp", access_token=token)
    assert out.status_code == 400 and "access_token_audiences" in out.json()["error"]["message"], out.text
    assert runs(api) == 0


def test_the_openapi_document_describes_both_tokens_and_the_answers(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    op = doc["paths"]["/v1/sync/sources/{source}/claims"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "422"} <= set(op["responses"])
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ClaimsOut")
    schemas = doc["components"]["schemas"]
    claims_in = schemas["ClaimsIn"]
    assert {"id_token", "access_token"} <= set(claims_in["properties"])
    assert [one["required"] for one in claims_in["oneOf"]] == [["id_token"], ["access_token"]]
    assert [set(e) for e in claims_in["examples"]] == [{"id_token"}, {"access_token"}]
    assert {"status", "token", "signed_in_at", "run", "account"} <= set(schemas["ClaimsOut"]["properties"])
    assert "last_login_at" in schemas["ClaimsAccount"]["properties"]


@pytest.mark.parametrize(("settings", "problem"), [
    ("id_token_audiences: [console], access_token_audiences: [console]", "in both"),
    ("access_token_audiences: [1, 2]", "access_token_audiences must be a list"),
    ("claims: {key: sub, roles: groups}", "claims.roles must be a list"),
    ("claims: {key: sub, phone: phone_number}", "claims.phone is not one of"),
    ("claims: {key: null}", "claims.key must be a claim path"),
])
def test_sources_yaml_claims_settings_are_checked(tmp_path: Path, settings: str, problem: str) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(f"sources:\n  idp: {{connector: oidc, kind: idp, {settings}}}\n", encoding="utf-8")
    with pytest.raises(InvalidRequest) as raised:
        load_sync_config(path)
    assert any(problem in p for p in raised.value.details), raised.value.details


def test_sources_yaml_audiences_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  idp: {connector: oidc, kind: idp, id_token_audiences: console,\n"
                    "        access_token_audiences: [' https://crm.example.cn/api', https://crm.example.cn/api]}\n",
                    encoding="utf-8")
    settings = load_sync_config(path).source("idp").settings
    assert settings["id_token_audiences"] == ["console"]
    assert settings["access_token_audiences"] == ["https://crm.example.cn/api"]
