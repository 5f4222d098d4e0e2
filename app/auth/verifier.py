"""Bearer-token verification: JWTs from the company IdP (OIDC discovery + JWKS), or dev tokens.

Trust is in the names: ``unverified_header`` until the signature, issuer, audience, expiry and
``typ`` are checked; ``claims`` after.  Tokens never reach a log.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from jose import jwt
from jose.exceptions import ExpiredSignatureError, JOSEError, JWTClaimsError, JWTError

from app.errors import Unauthorized

log = logging.getLogger(__name__)
DEV_ISSUER = "accessgov-dev"
_CACHE_LIMIT = 10_000
_CACHE_SECONDS = 60.0
SCOPES = ("accessgov.audit", "accessgov.decide", "accessgov.directory", "accessgov.policy")


@dataclass(frozen=True)
class Principal:
    """A verified caller."""

    client_id: str
    subject: str
    scopes: frozenset[str]
    kind: str  # oidc | dev
    expires_at: float = 0.0  # the token's exp (epoch seconds)


class TokenVerifier(Protocol):
    """Turns a bearer token into a Principal or raises Unauthorized."""

    def verify(self, token: str) -> Principal: ...


def _principal(claims: dict[str, Any], kind: str) -> Principal:
    raw = claims.get("scope", claims.get("scp", ""))
    scopes = frozenset(raw.split() if isinstance(raw, str) else [str(s) for s in raw])
    client_id = str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or "")
    if not client_id:
        raise Unauthorized("token names no client")
    exp = claims.get("exp")
    return Principal(client_id=client_id, subject=str(claims.get("sub", client_id)), scopes=scopes, kind=kind,
                     expires_at=float(exp) if isinstance(exp, int | float) else 0.0)


def _header(token: str) -> dict[str, Any]:
    try:
        return dict(jwt.get_unverified_header(token))
    except JWTError as exc:
        raise Unauthorized("malformed bearer token") from exc


class OidcTokenVerifier:
    """Verifies RS/ES/PS-signed access tokens against the issuer's JWKS (cached by kid)."""

    def __init__(self, *, issuer: str, audience: str, algorithms: list[str], required_typ: str,
                 min_refetch_seconds: float, leeway: int, http: httpx.Client | None = None) -> None:
        self.issuer = issuer  # compared exactly, as OIDC requires
        self._audience = audience
        self._algorithms = [a for a in algorithms if not a.upper().startswith("HS") and a.lower() != "none"]
        self._typ = required_typ.lower()
        self._min_refetch = min_refetch_seconds
        self._leeway = leeway
        self._http = http  # an injected client stays open (its owner closes it)
        self._keys: dict[str, dict[str, Any]] = {}
        self._jwks_uri: str | None = None
        self.key_generation = 0
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        """Verify a token; raise Unauthorized with a reason that reveals nothing secret."""
        return _principal(self.verified_claims(token, audiences=(self._audience,)), "oidc")

    def verified_claims(self, token: str, *, audiences: Sequence[str], id_token: bool = False) -> dict[str, Any]:
        """A token's claims once its algorithm (the allow-list, before any JWKS lookup), ``typ``,
        signature (the JWKS, by ``kid``), issuer, expiry and audience (one of ``audiences``) are checked.

        An access token (the default) must carry the required ``typ`` (``at+jwt``); an ID token
        (``id_token=True``) must not be an RFC 9068 access token.  Unauthorized says why, revealing
        nothing secret.
        """
        unverified_header = _header(token)
        alg = unverified_header.get("alg")
        # Refuse before any JWKS lookup: junk or alg=none tokens must not trigger fetches.
        if alg not in self._algorithms:
            raise Unauthorized(f"token algorithm {alg!r} is not accepted")
        typ = str(unverified_header.get("typ", "")).lower()
        if id_token:
            if typ in ("at+jwt", "application/at+jwt"):
                raise Unauthorized("token is an access token, not an ID token (typ)")
        elif typ not in (self._typ, f"application/{self._typ}"):
            raise Unauthorized("token is not an access token (typ)")
        if not audiences:
            raise Unauthorized("no audience is configured for this token")
        key = self._key(str(unverified_header.get("kid", "")))
        options: dict[str, Any] = {"leeway": self._leeway, "require_exp": True, "verify_aud": False}
        if id_token:
            options["verify_at_hash"] = False  # the access token it came with is not at hand
        try:
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=[alg], issuer=self.issuer, options=options)
        except ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except JWTClaimsError as exc:
            raise Unauthorized(f"token claims rejected: {exc}") from exc
        except JOSEError as exc:  # JWTError, and JWKError when the header alg does not fit the key
            raise Unauthorized("token signature is not valid") from exc
        # python-jose lets a token without `aud` through any audience check: require it here.
        aud = claims.get("aud")
        given = [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] if isinstance(aud, list) \
            else []
        if not set(given) & set(audiences):
            raise Unauthorized(f"token claims rejected: Invalid audience ({', '.join(given) or 'none'})")
        return claims

    def _key(self, kid: str) -> dict[str, Any]:
        if not kid:
            raise Unauthorized("token has no kid")
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= self._min_refetch:
                self._refresh()
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("token signed by an unknown key")
        return key

    def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        # Refreshes are rare (rate-limited): a client per refresh leaves no socket open at shutdown.
        if self._http is not None:
            self._fetch_keys(self._http)
            return
        with httpx.Client(timeout=5.0) as http:
            self._fetch_keys(http)

    def _fetch_keys(self, http: httpx.Client) -> None:
        try:
            if self._jwks_uri is None:
                discovery = http.get(f"{self.issuer}/.well-known/openid-configuration")
                discovery.raise_for_status()
                doc = discovery.json()
                if doc.get("issuer") != self.issuer:
                    raise Unauthorized("IdP discovery names another issuer")
                self._jwks_uri = str(doc["jwks_uri"])
            resp = http.get(self._jwks_uri)
            resp.raise_for_status()
            keys = {str(k["kid"]): k for k in resp.json().get("keys", []) if "kid" in k}
            if keys != self._keys:
                self.key_generation += 1  # verified-token cache entries of older keys lapse
            self._keys = keys
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("JWKS fetch from %s failed: %s", self.issuer, exc)


class DevTokenVerifier:
    """Accepts HS256 tokens made by ``accessgov dev-token`` (development only)."""

    def __init__(self, *, secret: str, audience: str) -> None:
        self._secret = secret
        self._audience = audience
        log.warning("development tokens are accepted: never run like this in production")

    def verify(self, token: str) -> Principal:
        """Verify a development token."""
        unverified_header = _header(token)
        if unverified_header.get("alg") != "HS256":
            raise Unauthorized("not a development token")
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], audience=self._audience,
                                issuer=DEV_ISSUER, options={"require_exp": True})
        except ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except JWTError as exc:
            raise Unauthorized("development token is not valid") from exc
        return _principal(claims, "dev")


class CompositeVerifier:
    """Routes a token to the verifier its issuer names (dev tokens by their HS256 header)."""

    def __init__(self, oidc: OidcTokenVerifier | None, dev: DevTokenVerifier | None) -> None:
        self._oidc = oidc
        self._dev = dev
        self._cache: dict[bytes, tuple[Principal, int, float]] = {}

    def verify(self, token: str) -> Principal:
        """Verify, remembering a verified token for up to a minute (never past its exp, never across
        a change of the IdP's keys): signature checks cost more than the decision they guard."""
        key = hashlib.sha256(token.encode()).digest()
        generation = self._oidc.key_generation if self._oidc is not None else 0
        now = time.time()
        hit = self._cache.get(key)
        if hit is not None and hit[1] == generation and now < hit[2]:
            return hit[0]
        principal = self._verify(token)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # bounded
        self._cache[key] = (principal, generation, min(principal.expires_at, now + _CACHE_SECONDS))
        return principal

    def _verify(self, token: str) -> Principal:
        if self._dev is not None and _header(token).get("alg") == "HS256":
            return self._dev.verify(token)
        if self._oidc is not None:
            return self._oidc.verify(token)
        raise Unauthorized("no token verifier is configured (set ACCESSGOV_AUTH__ISSUER)")


def make_dev_token(*, secret: str, audience: str, client_id: str, scopes: list[str], ttl_seconds: int) -> str:
    """A development token (``accessgov dev-token``)."""
    now = int(time.time())
    claims = {"iss": DEV_ISSUER, "aud": audience, "sub": client_id, "client_id": client_id,
              "scope": " ".join(scopes), "iat": now, "exp": now + ttl_seconds}
    return str(jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "at+jwt"}))
