"""ID tokens of the company IdP, verified for the claims they carry (OIDC claims as a sync source).

Same JWKS, issuer and algorithm allow-list as the API's access tokens (``OidcTokenVerifier``); the
audience is one of the client ids the IdP issued the ID token to (``id_token_audiences`` of the
source), and the type is a plain JWT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jose import jwt
from jose.exceptions import ExpiredSignatureError, JOSEError, JWTClaimsError

from app.auth.verifier import OidcTokenVerifier, _header
from app.errors import Unauthorized


class IdTokenVerifier:
    """Verifies an ID token and returns its claims."""

    def __init__(self, keys: OidcTokenVerifier, audiences: Sequence[str], leeway: int = 30) -> None:
        self._keys = keys
        self._audiences = list(audiences)
        self._leeway = leeway

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; Unauthorized if it is not a valid, current ID token of ours."""
        header = _header(token)
        alg = header.get("alg")
        if alg not in self._keys._algorithms:
            raise Unauthorized(f"token algorithm {alg!r} is not accepted")
        key = self._keys._key(str(header.get("kid", "")))
        problem: Exception | None = None
        for audience in self._audiences:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token, key, algorithms=[alg], audience=audience, issuer=self._keys.issuer,
                    options={"leeway": self._leeway, "require_exp": True, "verify_at_hash": False})
                return claims
            except ExpiredSignatureError as exc:
                raise Unauthorized("token expired") from exc
            except JWTClaimsError as exc:
                problem = exc
            except JOSEError as exc:
                raise Unauthorized("token signature is not valid") from exc
        raise Unauthorized(f"token claims rejected: {problem or 'no audience configured'}")
