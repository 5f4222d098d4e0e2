"""OIDC claims as a sync source, with ID tokens from a real sign-in at the test IdP (node
oidc-provider, authorization code + PKCE, the login form posted as a browser would)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import AuthSettings, SyncSettings
from app.directory.models import Account, Grant, Person
from tests.conftest import DEV_SECRET
from tests.support.idp import TestIdP

REDIRECT = "http://127.0.0.1:9/callback"  # the provider's default console redirect URI (never called)
SOURCES = """
masters: {people: idp, status: idp, name: idp, department: idp, email: idp, employee_no: idp}
defaults: {interval_minutes: 0}
sources:
  idp: {connector: oidc, kind: idp, id_token_audiences: [console],
        claims: {key: sub, name: name, email: email, employee_no: employee_no, department: department,
                 roles: [crm_roles, oa_roles, groups]}}
"""


def sign_in(idp: TestIdP, login: str, password: str) -> str:
    """The ID token of a sign-in through the authorization code flow with PKCE."""
    discovery = idp.discovery()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        url = httpx.URL(discovery["authorization_endpoint"], params={
            "client_id": "console", "response_type": "code", "scope": "openid profile email",
            "redirect_uri": REDIRECT, "state": "s", "nonce": "n", "code_challenge": challenge,
            "code_challenge_method": "S256"})
        response = http.get(url)
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
        tokens = http.post(discovery["token_endpoint"], auth=("console", idp.client_secret("console")), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier}).json()
    return str(tokens["id_token"])


@pytest.fixture
def api(app_factory: Callable[..., TestClient], sqlite_url: str, idp: TestIdP, tmp_path: Path) -> TestClient:
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES, encoding="utf-8")
    auth = AuthSettings(issuer=idp.issuer, audience=idp.api_audience, dev_tokens=True, dev_secret=DEV_SECRET,
                        jwks_min_refetch_seconds=0.0)
    return app_factory(sqlite_url, auth=auth, sync=SyncSettings(sources_file=sources))


def bearer(idp: TestIdP) -> dict[str, str]:
    return {"Authorization": f"Bearer {idp.token('crm-backend')}"}


def test_a_sign_in_creates_the_person_just_in_time_and_claims_grant_nothing(api: TestClient, idp: TestIdP) -> None:
    token = sign_in(idp, "liming", "liming-test-pw")
    out = api.post("/v1/sync/sources/idp/claims", json={"id_token": token}, headers=bearer(idp))
    assert out.status_code == 200, out.text
    body: dict[str, Any] = out.json()
    assert body["status"] == "applied" and body["account"]["person_id"] == "idp-u-liming"
    factory = api.app.state.services.factory
    with factory() as s:
        person = s.get(Person, "idp-u-liming")
        assert (person.name, person.employee_no, person.email) == ("李明", "E2001", "liming@accessgov.test")
        account = s.scalars(select(Account).where(Account.system == "idp", Account.local_id == "u-liming")).one()
        assert account.attributes["claimed_roles"] == ["sales_rep", "employee", "sales"]
        assert s.scalars(select(Grant).where(Grant.person_id == "idp-u-liming")).all() == []  # evidence only
    decision = api.post("/access/v1/evaluation", headers=bearer(idp), json={
        "subject": {"type": "user", "id": "idp-u-liming"}, "action": {"name": "read"},
        "resource": {"type": "crm.customer", "id": "CUS-1"}}).json()
    assert decision["decision"] is False  # a known person now, holding nothing
    again = api.post("/v1/sync/sources/idp/claims", json={"id_token": token}, headers=bearer(idp)).json()
    assert again["status"] == "unchanged"


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
    out = api.post("/v1/sync/sources/idp/claims", json={"id_token": token}, headers=bearer(idp))
    assert out.status_code == 401, out.text
    with api.app.state.services.factory() as s:
        assert s.scalars(select(Account).where(Account.system == "idp")).all() == []
