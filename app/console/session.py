"""The console's session: a signed (itsdangerous), HttpOnly, SameSite=Lax cookie of its own name.

It holds who signed in (the person id, never a token), their duty, the per-session CSRF token and
two times: when they signed in (absolute expiry) and when they were last seen (idle expiry, slid on
every page).  A started sign-in (state, nonce, PKCE verifier) lives in a second cookie scoped to
``/console/auth`` for a few minutes.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from app.console.config import ConsoleSettings

AUTH_PATH = "/console/auth"


class SessionState(StrEnum):
    """What the session cookie says."""

    absent = "absent"
    expired = "expired"
    valid = "valid"


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in person (the cookie's contents)."""

    person_id: str
    name: str
    duty: str
    idp: str
    csrf: str
    signed_in_at: float
    seen_at: float

    def csrf_ok(self, given: str | None) -> bool:
        """Whether ``given`` is this session's CSRF token (constant-time compare)."""
        return bool(given) and hmac.compare_digest(self.csrf.encode(), str(given).encode())


@dataclass(frozen=True)
class PendingLogin:
    """A sign-in started at an IdP and not finished yet."""

    idp: str
    state: str
    nonce: str
    verifier: str
    next: str


class SessionCodec:
    """Reads and writes the console's cookies."""

    def __init__(self, settings: ConsoleSettings, *, secure: bool, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._secure = secure
        self.clock = clock
        self._session = URLSafeTimedSerializer(settings.secret_key, salt="accessgov.console.session")
        self._login = URLSafeTimedSerializer(settings.secret_key, salt="accessgov.console.login")

    @property
    def cookie(self) -> str:
        """The session cookie's name."""
        return self._settings.cookie_name

    @property
    def login_cookie(self) -> str:
        """The started sign-in's cookie name."""
        return f"{self._settings.cookie_name}_login"

    @property
    def lang_cookie(self) -> str:
        """The language preference's cookie name."""
        return f"{self._settings.cookie_name}_lang"

    def new_session(self, *, person_id: str, name: str, duty: str, idp: str) -> ConsoleSession:
        """A fresh session (new CSRF token) signed in now."""
        now = self.clock()
        return ConsoleSession(person_id=person_id, name=name, duty=duty, idp=idp,
                              csrf=secrets.token_urlsafe(32), signed_in_at=now, seen_at=now)

    def read(self, request: Request) -> tuple[SessionState, ConsoleSession | None]:
        """The session of a request: absent (none or not ours), expired, or valid (its idle time slid)."""
        raw = request.cookies.get(self.cookie)
        if not raw:
            return SessionState.absent, None
        try:
            data = self._session.loads(raw)
            session = ConsoleSession(**{k: data[k] for k in ConsoleSession.__dataclass_fields__})
        except (BadSignature, KeyError, TypeError, ValueError):
            return SessionState.absent, None
        now = self.clock()
        if (now - session.signed_in_at >= self._settings.session_max_seconds
                or now - session.seen_at >= self._settings.idle_timeout_seconds):
            return SessionState.expired, None
        return SessionState.valid, replace(session, seen_at=now)

    def write(self, response: Response, session: ConsoleSession) -> None:
        """Set the session cookie (it lives no longer than the session's absolute lifetime)."""
        left = int(session.signed_in_at + self._settings.session_max_seconds - self.clock())
        response.set_cookie(self.cookie, self._session.dumps(asdict(session)), max_age=max(left, 1),
                            path="/console", httponly=True, samesite="lax", secure=self._secure)

    def clear(self, response: Response) -> None:
        """Remove the session cookie."""
        response.delete_cookie(self.cookie, path="/console", httponly=True, samesite="lax", secure=self._secure)

    def start_login(self, response: Response, pending: PendingLogin) -> None:
        """Remember a started sign-in (state, nonce, verifier) until the callback."""
        response.set_cookie(self.login_cookie, self._login.dumps(asdict(pending)),
                            max_age=self._settings.login_timeout_seconds, path=AUTH_PATH, httponly=True,
                            samesite="lax", secure=self._secure)

    def pending_login(self, request: Request) -> PendingLogin | None:
        """The started sign-in, or None when there is none, it is not ours or it is too old."""
        raw = request.cookies.get(self.login_cookie)
        if not raw:
            return None
        try:
            data: dict[str, Any] = self._login.loads(raw, max_age=self._settings.login_timeout_seconds)
            return PendingLogin(**{k: str(data[k]) for k in PendingLogin.__dataclass_fields__})
        except (BadSignature, KeyError, TypeError):
            return None

    def end_login(self, response: Response) -> None:
        """Forget the started sign-in (used or refused: a state is good once)."""
        response.delete_cookie(self.login_cookie, path=AUTH_PATH, httponly=True, samesite="lax",
                               secure=self._secure)

    def set_lang(self, response: Response, lang: str) -> None:
        """Remember the reader's language for a year."""
        response.set_cookie(self.lang_cookie, lang, max_age=365 * 86400, path="/console", httponly=True,
                            samesite="lax", secure=self._secure)
