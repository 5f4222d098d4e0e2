"""Signing in at an OpenID provider with authlib: authorization code + PKCE (S256), state, nonce.

The ID token is verified here (joserfc, authlib's JOSE successor): signature against the
provider's JWKS, ``iss``, ``aud`` (our client id), ``exp``/``iat``, the ``nonce`` of this sign-in,
and ``azp`` when the token names several audiences.  Tokens never leave this module except as
verified claims, and are never logged.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.console.config import ConsoleIdP

ALGORITHMS = ("RS256", "ES256", "PS256")
_HTTP_TIMEOUT = 10.0
_DISCOVERY_TTL = 3600.0


class SignInError(Exception):
    """A sign-in cannot be completed; ``code`` says why (for the page and the log, never a token)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Authorization:
    """Where to send the browser, and what the callback must find again."""

    url: str
    state: str
    nonce: str
    verifier: str


class OidcClient:
    """One IdP: discovery (cached), the authorization URL, the code exchange and the ID token check."""

    def __init__(self, idp: ConsoleIdP, redirect_uri: str, *, leeway: int = 60) -> None:
        self.idp = idp
        self.redirect_uri = redirect_uri
        self._leeway = leeway
        self._lock = threading.Lock()
        self._discovery: tuple[float, dict[str, Any]] | None = None
        self._jwks: KeySet | None = None

    def discovery(self) -> dict[str, Any]:
        """The provider's OpenID configuration (cached for an hour); its issuer must be ours exactly."""
        with self._lock:
            if self._discovery is None or time.monotonic() - self._discovery[0] > _DISCOVERY_TTL:
                url = self.idp.issuer.rstrip("/") + "/.well-known/openid-configuration"
                doc = _get_json(url)
                if doc.get("issuer") != self.idp.issuer:
                    raise SignInError("issuer_mismatch", f"discovery of {self.idp.name} names another issuer")
                self._discovery = (time.monotonic(), doc)
            return self._discovery[1]

    def authorization(self) -> Authorization:
        """A new authorization request with fresh state, nonce and PKCE verifier."""
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        with self._client() as client:
            url, _ = client.create_authorization_url(self.discovery()["authorization_endpoint"], state=state,
                                                     code_verifier=verifier, nonce=nonce)
        return Authorization(str(url), state, nonce, verifier)

    def finish(self, *, code: str, verifier: str, nonce: str) -> dict[str, Any]:
        """Exchange the code (with the PKCE verifier) and return the ID token's verified claims."""
        with self._client() as client:
            try:
                token = client.fetch_token(self.discovery()["token_endpoint"], code=code, code_verifier=verifier,
                                           grant_type="authorization_code")
            except Exception as exc:  # authlib raises OAuthError and httpx errors; the reason is enough
                raise SignInError("token_exchange_failed", f"the code exchange failed: {type(exc).__name__}") from exc
        unverified_id_token = token.get("id_token")
        if not isinstance(unverified_id_token, str):
            raise SignInError("no_id_token", "the token response carries no ID token")
        return self.verify_id_token(unverified_id_token, nonce=nonce)

    def verify_id_token(self, unverified_id_token: str, *, nonce: str) -> dict[str, Any]:
        """The verified claims of an ID token of this sign-in; SignInError otherwise."""
        try:
            token = self._decode(unverified_id_token)
        except JoseError as exc:
            raise SignInError("invalid_id_token", f"the ID token does not verify: {exc.error}") from exc
        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            leeway=self._leeway, iss={"essential": True, "value": self.idp.issuer},
            aud={"essential": True, "value": self.idp.client_id}, sub={"essential": True},
            exp={"essential": True}, iat={"essential": True})
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise SignInError("invalid_id_token", f"the ID token's claims are refused: {exc.error}") from exc
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise SignInError("nonce_mismatch", "the ID token's nonce is not this sign-in's")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.idp.client_id:
            raise SignInError("invalid_id_token", "the ID token is for several audiences and not authorized for us")
        return claims

    def logout_url(self, post_logout_redirect_uri: str) -> str | None:
        """RP-initiated logout at the provider, when it has an end_session_endpoint."""
        try:
            endpoint = self.discovery().get("end_session_endpoint")
        except (SignInError, httpx.HTTPError):
            return None
        if not endpoint:
            return None
        query = urlencode({"client_id": self.idp.client_id, "post_logout_redirect_uri": post_logout_redirect_uri})
        return f"{endpoint}?{query}"

    def _decode(self, unverified_id_token: str) -> Any:
        try:
            return jwt.decode(unverified_id_token, self._keys(refresh=False), algorithms=list(ALGORITHMS))
        except JoseError:
            # A rotated key: fetch the JWKS once more and try again.
            return jwt.decode(unverified_id_token, self._keys(refresh=True), algorithms=list(ALGORITHMS))

    def _keys(self, *, refresh: bool) -> KeySet:
        with self._lock:
            jwks_uri = self._discovery[1]["jwks_uri"] if self._discovery else None
        if jwks_uri is None:
            jwks_uri = self.discovery()["jwks_uri"]
        if self._jwks is None or refresh:
            self._jwks = KeySet.import_key_set(_get_json(jwks_uri))  # type: ignore[arg-type]
        return self._jwks

    def _client(self) -> OAuth2Client:
        return OAuth2Client(client_id=self.idp.client_id, client_secret=self.idp.client_secret,
                            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
                            scope=" ".join(self.idp.scopes),
                            redirect_uri=self.redirect_uri, code_challenge_method="S256", timeout=_HTTP_TIMEOUT)


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=_HTTP_TIMEOUT)
        response.raise_for_status()
        return dict(response.json())
    except (httpx.HTTPError, ValueError) as exc:
        raise SignInError("idp_unreachable", f"cannot read {url}: {type(exc).__name__}") from exc
