"""Auth strategies: how each vendor wants its requests signed.

| strategy | systems |
|---|---|
| :class:`StaticBearer` | Jiandaoyun (API key) |
| :class:`TokenEndpoint` | WeCom, DingTalk, Feishu, Fxiaoke (token cached for its TTL; dropped and fetched once more
  when a call answers "token expired") |
| :class:`EcologyRsaHandshake` | e-cology 集成中心: ``regist`` -> ``applytoken`` -> ``appid/token/userid`` headers |
| :class:`Md5KeyTimestamp` | e-cology HRM REST, older scheme: ``token = {key: UPPER(MD5(secret + ts)), ts}`` |
| :class:`KingdeeSignedHeaders` | Kingdee WebAPI SDK >= 8 stateless HMAC-SHA256 headers |
| :class:`HeaderCredentials` | U8 Cloud (``usercode``, MD5 ``password``, ``system``, ``trantype``) |

Credentials are passed in; they appear only in the requests, never in logs or error messages (each
strategy lists its secrets for redaction).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets as _random
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.sync.connectors.http import Envelope, NoAuth, Request
from app.sync.connectors.mapping import MISSING, get_path

if TYPE_CHECKING:
    from app.sync.connectors.http import Auth, HttpSession

__all__ = [
    "EcologyRsaHandshake",
    "HeaderCredentials",
    "KingdeeSignedHeaders",
    "Md5KeyTimestamp",
    "NoAuth",
    "StaticBearer",
    "TokenEndpoint",
    "build_auth",
    "kingdee_signature",
]

Monotonic = Callable[[], float]


class StaticBearer:
    """``Authorization: Bearer <key>``; a key cannot be refreshed."""

    def __init__(self, token: str) -> None:
        self.token = token

    def apply(self, req: Request, session: HttpSession) -> None:  # noqa: ARG002
        req.headers["Authorization"] = f"Bearer {self.token}"

    def invalidate(self) -> bool:
        return False

    def secrets(self) -> Iterable[str]:
        return (self.token,)


@dataclass
class TokenEndpoint:
    """A token fetched from the vendor's token endpoint, cached until shortly before it expires.

    ``request`` is the token call (credentials already in it).  ``token_field`` / ``expires_field``
    locate the token and its lifetime in seconds in the answer; ``extra_fields`` keeps other values
    of the answer (Fxiaoke's ``corpId``).  ``place`` says how calls carry it:
    ``bearer`` (Authorization header), ``query:<name>``, ``header:<name>`` or ``json`` (the body gets
    ``json_fields``, each a template over ``{token}`` and the extra fields).
    """

    request: Request
    token_field: str = "access_token"  # noqa: S105 - a field name
    expires_field: str | None = "expires_in"
    default_ttl: float = 7200.0
    margin: float = 300.0
    place: str = "bearer"
    json_fields: Mapping[str, str] = field(default_factory=dict)
    extra_fields: Mapping[str, str] = field(default_factory=dict)
    envelope: Envelope | None = None
    credential_values: tuple[str, ...] = ()
    monotonic: Monotonic = time.monotonic
    _token: str | None = None
    _extra: dict[str, str] = field(default_factory=dict)
    _expires_at: float = 0.0
    _seen_tokens: list[str] = field(default_factory=list)

    def token(self, session: HttpSession) -> str:
        now = self.monotonic()
        if self._token is None or now >= self._expires_at:
            body = session.call(
                self.request, label=f"{self.request.path} (token)", envelope=self.envelope, authenticate=False
            )
            token = get_path(body, self.token_field)
            if token is MISSING or not isinstance(token, str) or not token:
                raise session.error(f"the token answer has no {self.token_field!r}", endpoint=self.request.path)
            ttl = get_path(body, self.expires_field) if self.expires_field else MISSING
            ttl_s = float(ttl) if isinstance(ttl, int | float | str) and str(ttl).strip() else self.default_ttl
            self._token = token
            self._seen_tokens.append(token)
            self._extra = {k: str(get_path(body, p)) for k, p in self.extra_fields.items()}
            self._expires_at = now + max(ttl_s - self.margin, ttl_s / 2)
        return self._token

    def apply(self, req: Request, session: HttpSession) -> None:
        token = self.token(session)
        if self.place == "bearer":
            req.headers["Authorization"] = f"Bearer {token}"
        elif self.place.startswith("query:"):
            req.query[self.place[6:]] = token
        elif self.place.startswith("header:"):
            req.headers[self.place[7:]] = token
        elif self.place == "json":
            values = {"token": token, **self._extra}
            body = req.json if isinstance(req.json, dict) else {}
            for name, template in self.json_fields.items():
                body[name] = template.format(**values)
            req.json = body
        else:
            raise ValueError(f"unknown token place {self.place!r}")

    def invalidate(self) -> bool:
        self._token = None
        return True

    def secrets(self) -> Iterable[str]:
        return (*self.credential_values, *self._seen_tokens)


def _rsa_public_key(b64: str) -> rsa.RSAPublicKey:
    text = b64.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
    else:
        key = serialization.load_der_public_key(base64.b64decode(text))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def rsa_encrypt(public_key_b64: str, plain: str) -> str:
    """RSA PKCS#1 v1.5 encryption, base64 (what e-cology's ``secret`` and ``userid`` headers are)."""
    return base64.b64encode(_rsa_public_key(public_key_b64).encrypt(plain.encode("utf-8"), padding.PKCS1v15())).decode()


def new_client_public_key() -> str:
    """A fresh RSA key pair's public half, base64 DER (SubjectPublicKeyInfo), for ``regist``'s ``cpk``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@dataclass
class EcologyRsaHandshake:
    """e-cology 集成中心 tokens (documented client behaviour, see the reference §2).

    1. ``POST /api/ec/dev/auth/regist`` with headers ``appid`` and ``cpk`` -> ``spk`` and ``secrit``
       (skipped when both were stored from an earlier registration and passed in);
    2. ``POST /api/ec/dev/auth/applytoken`` with ``appid``, ``secret = RSA(spk, secrit)``, ``time`` ->
       ``token``, cached for ``time`` seconds less a margin;
    3. every call: headers ``appid``, ``token``, ``userid = RSA(spk, <OA user id>)``.
    """

    appid: str
    userid: str
    cpk: str | None = None
    spk: str | None = None
    secrit: str | None = None
    ttl: int = 3600
    margin: float = 300.0
    regist_path: str = "/api/ec/dev/auth/regist"
    applytoken_path: str = "/api/ec/dev/auth/applytoken"
    envelope: Envelope | None = None
    monotonic: Monotonic = time.monotonic
    _token: str | None = None
    _expires_at: float = 0.0
    _seen: list[str] = field(default_factory=list)

    def _register(self, session: HttpSession) -> None:
        cpk = self.cpk or new_client_public_key()
        req = Request("POST", self.regist_path, headers={"appid": self.appid, "cpk": cpk})
        body = session.call(req, label=self.regist_path, envelope=self.envelope, authenticate=False)
        spk, secrit = get_path(body, "spk"), get_path(body, "secrit")
        if not isinstance(spk, str) or not isinstance(secrit, str) or not spk or not secrit:
            raise session.error("regist did not return spk and secrit", endpoint=self.regist_path)
        self.spk, self.secrit = spk, secrit
        self._seen.append(secrit)

    def token(self, session: HttpSession) -> str:
        now = self.monotonic()
        if self._token is None or now >= self._expires_at:
            if not self.spk or not self.secrit:
                self._register(session)
            assert self.spk is not None
            assert self.secrit is not None
            headers = {"appid": self.appid, "secret": rsa_encrypt(self.spk, self.secrit), "time": str(self.ttl)}
            req = Request("POST", self.applytoken_path, headers=headers)
            body = session.call(req, label=self.applytoken_path, envelope=self.envelope, authenticate=False)
            token = get_path(body, "token")
            if not isinstance(token, str) or not token:
                raise session.error("applytoken did not return a token", endpoint=self.applytoken_path)
            self._token = token
            self._seen.append(token)
            self._expires_at = now + max(self.ttl - self.margin, self.ttl / 2)
        return self._token

    def apply(self, req: Request, session: HttpSession) -> None:
        token = self.token(session)
        assert self.spk is not None
        req.headers.update({"appid": self.appid, "token": token, "userid": rsa_encrypt(self.spk, self.userid)})

    def invalidate(self) -> bool:
        self._token = None
        return True

    def secrets(self) -> Iterable[str]:
        return (*([self.secrit] if self.secrit else []), *self._seen)


@dataclass
class Md5KeyTimestamp:
    """e-cology HRM REST older scheme: a ``token`` header ``{"key": UPPER(MD5(secret + ts)), "ts": ts}``.

    ``ts`` is in milliseconds (guessed; the reference does not say which unit).  Each request is
    signed afresh, so there is nothing to refresh.
    """

    secret_key: str
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000)
    header: str = "token"

    def apply(self, req: Request, session: HttpSession) -> None:  # noqa: ARG002
        ts = str(self.now_ms())
        key = hashlib.md5((self.secret_key + ts).encode("utf-8")).hexdigest().upper()  # noqa: S324 - vendor scheme
        req.headers[self.header] = json.dumps({"key": key, "ts": ts}, separators=(",", ":"))

    def invalidate(self) -> bool:
        return False

    def secrets(self) -> Iterable[str]:
        return (self.secret_key,)


def _hmac_b64_hex(message: str, secret: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


def kingdee_signature(path: str, nonce: str, timestamp: str, client_secret: str) -> str:
    """``base64(hex(HMAC-SHA256("POST\\n<url-encoded path>\\n\\nx-api-nonce:..\\nx-api-timestamp:..\\n")))``."""
    encoded = urllib.parse.quote(path, safe="")
    message = f"POST\n{encoded}\n\nx-api-nonce:{nonce}\nx-api-timestamp:{timestamp}\n"
    return _hmac_b64_hex(message, client_secret)


@dataclass
class KingdeeSignedHeaders:
    """Kingdee WebAPI stateless signed headers (official SDK >= 8, reference §3).

    ``client_secret`` is the already *decoded* client secret (the SDK derives it from the app secret).
    ``X-Kd-Signature`` is the same HMAC over ``app_key + app_data`` with ``app_secret`` (guessed: the
    reference names the header but not its formula).
    """

    client_id: str
    client_secret: str
    app_key: str
    app_secret: str
    acct_id: str
    username: str
    lcid: str = "2052"
    org_num: str = "0"
    now_s: Callable[[], int] = lambda: int(time.time())
    nonce: Callable[[], str] = lambda: _random.token_hex(16)

    def headers(self, path: str) -> dict[str, str]:
        ts, nonce = str(self.now_s()), self.nonce()
        app_data = base64.b64encode(f"{self.acct_id},{self.username},{self.lcid},{self.org_num}".encode()).decode()
        return {
            "X-Api-ClientID": self.client_id,
            "X-Api-Auth-Version": "2.0",
            "x-api-timestamp": ts,
            "x-api-nonce": nonce,
            "x-api-signheaders": "x-api-timestamp,x-api-nonce",
            "X-Api-Signature": kingdee_signature(path, nonce, ts, self.client_secret),
            "X-Kd-Appkey": self.app_key,
            "X-Kd-Appdata": app_data,
            "X-Kd-Signature": _hmac_b64_hex(self.app_key + app_data, self.app_secret),
        }

    def apply(self, req: Request, session: HttpSession) -> None:  # noqa: ARG002
        req.headers.update(self.headers(req.path))

    def invalidate(self) -> bool:
        return False

    def secrets(self) -> Iterable[str]:
        return (self.client_secret, self.app_secret)


@dataclass
class HeaderCredentials:
    """Fixed headers carrying credentials; those named in ``md5`` are sent as their MD5 hex (U8 Cloud)."""

    values: Mapping[str, str]
    md5: tuple[str, ...] = ()

    def apply(self, req: Request, session: HttpSession) -> None:  # noqa: ARG002
        for name, value in self.values.items():
            sent = hashlib.md5(value.encode("utf-8")).hexdigest() if name in self.md5 else value  # noqa: S324
            req.headers[name] = sent

    def invalidate(self) -> bool:
        return False

    def secrets(self) -> Iterable[str]:
        out = list(self.values.values())
        out += [hashlib.md5(self.values[n].encode("utf-8")).hexdigest() for n in self.md5 if n in self.values]  # noqa: S324
        return out


# -- from a mapping file ---------------------------------------------------------------------------


def _substitute(value: Any, credentials: Mapping[str, str], used: list[str]) -> Any:
    """``${name}`` -> the credential; recursive through dicts and lists."""
    if isinstance(value, str):
        out = value
        for name, secret in credentials.items():
            token = "${" + name + "}"
            if token in out:
                out = out.replace(token, secret)
                used.append(secret)
        if "${" in out:
            raise KeyError(out[out.index("${") :].split("}")[0] + "}")
        return out
    if isinstance(value, Mapping):
        return {k: _substitute(v, credentials, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, credentials, used) for v in value]
    return value


def build_auth(
    config: Mapping[str, Any] | None,
    credentials: Mapping[str, str],
    envelope: Envelope | None = None,
    *,
    now_s: Callable[[], float] | None = None,
    nonce: Callable[[], str] | None = None,
    monotonic: Monotonic = time.monotonic,
) -> Auth:
    """An auth strategy from a mapping file's ``auth`` section, with ``${name}`` filled from credentials.

    Raises ``KeyError`` naming a credential that was not passed in.
    """
    if not config:
        return NoAuth()
    used: list[str] = []
    cfg = _substitute(dict(config), credentials, used)
    strategy = cfg.pop("strategy")
    if strategy == "none":
        return NoAuth()
    if strategy == "static_bearer":
        return StaticBearer(cfg["token"])
    if strategy == "header_credentials":
        return HeaderCredentials(dict(cfg["headers"]), tuple(cfg.get("md5", ())))
    if strategy == "md5_key_ts":
        if now_s is not None:
            clock = now_s
            return Md5KeyTimestamp(cfg["secret_key"], now_ms=lambda: int(clock() * 1000))
        return Md5KeyTimestamp(cfg["secret_key"])
    if strategy == "kingdee_signed":
        signer = KingdeeSignedHeaders(**cfg)
        if now_s is not None:
            seconds = now_s
            signer.now_s = lambda: int(seconds())
        if nonce is not None:
            signer.nonce = nonce
        return signer
    if strategy == "token_endpoint":
        req = cfg["request"]
        request = Request(
            str(req.get("method", "GET")).upper(), req["path"], query=dict(req.get("query") or {}), json=req.get("json")
        )
        return TokenEndpoint(
            request=request,
            token_field=cfg.get("token_field", "access_token"),
            expires_field=cfg.get("expires_field", "expires_in"),
            place=cfg.get("place", "bearer"),
            json_fields=cfg.get("json_fields", {}),
            extra_fields=cfg.get("extra_fields", {}),
            envelope=envelope,
            credential_values=tuple(used),
            monotonic=monotonic,
        )
    raise ValueError(f"unknown auth strategy {strategy!r}")
