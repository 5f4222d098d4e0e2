"""A signed-in person's tokens from the company IdP, verified for the claims they carry (OIDC claims
as a sync source): an ID token, or a JWT access token (RFC 9068) the person's client was issued.

Both go through ``OidcTokenVerifier.verified_claims``: the same JWKS (by ``kid``), issuer, expiry and
algorithm allow-list as the API's own bearer tokens (``alg`` refused before any JWKS lookup).  They
differ in ``typ`` and audience:

- an **ID token** is for one of the client ids the IdP issued it to (``id_token_audiences`` of the
  source), and must not be an access token (``typ`` ``at+jwt``);
- an **access token** has the access-token ``typ`` (``at+jwt``, as the API's tokens), is for one of
  the resource servers of ``access_token_audiences``, and must be a person's: a client credentials
  token (no ``sub``, ``sub`` equal to the client id, an Auth0 ``gty: client-credentials``, an Entra
  ``idtyp: app``, a Keycloak ``service-account-`` user) names no one and is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from app.auth.verifier import OidcTokenVerifier
from app.errors import AccessGovError, Unauthorized

TokenKind = Literal["id_token", "access_token"]


class NotAUserToken(AccessGovError):
    """A valid access token that names no signed-in person (a client's own token)."""

    status = 422
    code = "not_a_user_token"


def client_token_reason(claims: dict[str, Any]) -> str | None:
    """Why a verified access token is a client's own rather than a person's; None for a person's."""
    sub = claims.get("sub")
    clients = {str(c) for c in (claims.get("client_id"), claims.get("azp"), claims.get("cid")) if c}
    if not isinstance(sub, str) or not sub.strip():
        return "it has no sub: it names no user"
    if sub in clients:
        return f"its sub is the client {sub} itself (a client credentials token)"
    if claims.get("gty") == "client-credentials" or claims.get("idtyp") == "app":
        return "it was issued to a client by client credentials, not to a signed-in user"
    username = claims.get("preferred_username")
    if isinstance(username, str) and username.startswith("service-account-"):
        return f"it is the service account {username} of a client, not a user"
    return None


class UserTokenVerifier:
    """Verifies a signed-in person's ID token or access token and returns its claims."""

    def __init__(self, keys: OidcTokenVerifier) -> None:
        self._keys = keys

    def verify(self, kind: TokenKind, token: str, audiences: Sequence[str]) -> dict[str, Any]:
        """The claims of a valid, current token of that kind; Unauthorized (401) if it is not one of
        ours for one of ``audiences``, NotAUserToken (422) for a client's own access token."""
        try:
            claims = self._keys.verified_claims(token, audiences=audiences, id_token=kind == "id_token")
        except Unauthorized as exc:
            raise Unauthorized(f"{kind} refused: {exc.message}", details={"token": kind}) from exc
        if kind == "access_token":
            reason = client_token_reason(claims)
            if reason is not None:
                raise NotAUserToken(f"access_token refused: {reason}; send a signed-in person's token",
                                    details={"token": kind, "sub": claims.get("sub"),
                                             "client_id": claims.get("client_id") or claims.get("azp")})
        return claims

