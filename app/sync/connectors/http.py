"""One HTTP layer for every API connector: requests, envelopes, rate limits, auth retries.

Every call goes through :meth:`HttpSession.call` on one ``httpx.Client`` (configurable ``base_url``
and ``timeout``).  The session asks the auth strategy to sign the request, sends it, and then decides:

- HTTP 429 or a vendor rate-limit code: wait (``Retry-After`` if sent, else exponential backoff) and
  retry, at most ``RateLimit.retries`` times, then :class:`SourceError`;
- HTTP 401 or a vendor auth-expired code: drop the cached token, fetch a new one and retry once;
- a body that is not JSON, any other HTTP error or a non-success envelope: :class:`SourceError`
  carrying the vendor code and message.
"""

from __future__ import annotations

import copy
import email.utils
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from app.sync.connectors.base import SourceError
from app.sync.connectors.mapping import MISSING, _key, get_path

log = logging.getLogger("app.sync.connectors")


@dataclass
class Request:
    """An outbound request before signing.  Strategies may change any part."""

    method: str
    path: str
    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    form: dict[str, str] | None = None


def _set_path(target: dict[str, Any], dotted: str, values: Mapping[str, Any]) -> None:
    node = target
    for part in [p for p in dotted.split(".") if p]:
        node = node.setdefault(part, {})
    node.update(values)


@dataclass(frozen=True)
class Endpoint:
    """One list endpoint: where the request parameters go and where the items are in the answer.

    ``params_at`` says where extra (filter and paging) parameters go: ``query``, ``json``,
    ``json.<path>`` (inside a nested object of the JSON body) or ``form:<field>`` (a form field that
    holds a JSON object, as e-cology's ``params``).  ``items`` is a dotted path into the unwrapped body
    (``""`` for the body itself).  ``columns``: the items are rows (arrays) to be zipped with these keys.
    """

    method: str
    path: str
    query: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, Any] | None = None
    params_at: str = "query"
    items: str = ""
    columns: tuple[str, ...] | None = None
    allow_missing_items: bool = False

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Endpoint:
        columns = raw.get("columns")
        if isinstance(columns, str):
            columns = [c.strip() for c in columns.split(",")]
        return cls(
            method=str(raw.get("method", "GET")).upper(),
            path=str(raw["path"]),
            query=dict(raw.get("query") or {}),
            json=raw.get("json"),
            form=raw.get("form"),
            params_at=str(raw.get("params_at", "query")),
            items=str(raw.get("items", "")),
            columns=tuple(columns) if columns else None,
            allow_missing_items=bool(raw.get("allow_missing_items", False)),
        )

    def build(self, params: Mapping[str, Any] | None = None, path_args: Mapping[str, Any] | None = None) -> Request:
        params = dict(params or {})
        req = Request(
            method=self.method,
            path=self.path.format(**(path_args or {})),
            query=dict(self.query),
            json=copy.deepcopy(self.json),
            form={k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in self.form.items()}
            if self.form is not None
            else None,
        )
        where = self.params_at
        if where == "query":
            req.query.update(params)
        elif where == "json" or where.startswith("json."):
            if req.json is None:
                req.json = {}
            _set_path(req.json, where[5:], params)
        elif where.startswith("form:"):
            name = where[5:]
            form = req.form if req.form is not None else {}
            inner = json.loads(form[name]) if name in form else {}
            inner.update(params)
            form[name] = json.dumps(inner, ensure_ascii=False)
            req.form = form
        else:
            raise ValueError(f"params_at {where!r}: use query, json, json.<path> or form:<field>")
        return req

    def items_of(self, body: Any, fail: Callable[[str], SourceError]) -> list[Any]:
        found = get_path(body, self.items)
        if found is MISSING or found is None:
            if self.allow_missing_items:
                return []
            raise fail(f"the answer has no item list at {self.items or '$'!r}")
        if not isinstance(found, list):
            raise fail(f"the item list at {self.items or '$'!r} is a {type(found).__name__}, not a list")
        if self.columns is None:
            return found
        rows = []
        for row in found:
            if not isinstance(row, list) or len(row) != len(self.columns):
                raise fail(f"a row does not have the {len(self.columns)} columns {list(self.columns)}: {row!r}"[:300])
            rows.append(dict(zip(self.columns, row, strict=True)))
        return rows


@dataclass(frozen=True)
class Envelope:
    """Where a vendor puts its status, and what counts as success, a rate limit or an expired token.

    ``code``/``message`` are dotted paths; ``ok`` lists the success codes (compared as text).
    ``ok_if_missing``: a body without a code is a success (Jiandaoyun answers errors only with one).
    ``json_string``: after success, the value at this path is a JSON document in a string (U8 Cloud).
    ``kingdee_rows``: the Kingdee WebAPI answers errors inside the row array as a ``Result`` object.
    """

    code: str | None = None
    message: str | None = None
    ok: frozenset[str] = frozenset()
    ok_if_missing: bool = False
    rate_limited: frozenset[str] = frozenset()
    auth_expired: frozenset[str] = frozenset()
    json_string: str | None = None
    kingdee_rows: bool = False

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> Envelope:
        raw = raw or {}

        def codes(name: str) -> frozenset[str]:
            return frozenset(_key(c) for c in raw.get(name, ()))

        return cls(
            code=raw.get("code"),
            message=raw.get("message"),
            ok=codes("ok"),
            ok_if_missing=bool(raw.get("ok_if_missing", False)),
            rate_limited=codes("rate_limited"),
            auth_expired=codes("auth_expired"),
            json_string=raw.get("json_string"),
            kingdee_rows=bool(raw.get("kingdee_rows", False)),
        )

    def status(self, body: Any) -> tuple[str | None, str | None]:
        """(vendor code, vendor message), or (None, None) when the body carries none."""
        if self.kingdee_rows:
            result = _kingdee_result(body)
            if result is None:
                return None, None
            status = result.get("ResponseStatus") or {}
            errors = status.get("Errors") or [{}]
            msg = "; ".join(str(e.get("Message", "")) for e in errors if isinstance(e, Mapping)) or None
            if status.get("IsSuccess", True) is True:
                return None, None
            return _key(status.get("ErrorCode", "")) or "error", msg
        if self.code is None or not isinstance(body, Mapping):
            return None, None
        code = get_path(body, self.code)
        message = get_path(body, self.message) if self.message else MISSING
        return (
            None if code is MISSING else _key(code),
            None if message is MISSING or message is None else str(message),
        )

    def is_ok(self, code: str | None) -> bool:
        if self.kingdee_rows:
            return code is None
        if code is None:
            return self.ok_if_missing or self.code is None
        return code in self.ok

    def unwrap(self, body: Any, fail: Callable[[str], SourceError]) -> Any:
        if self.json_string is None:
            return body
        inner = get_path(body, self.json_string)
        if isinstance(inner, str):
            try:
                inner = json.loads(inner)
            except ValueError as exc:
                raise fail(f"{self.json_string!r} is not a JSON document: {exc}") from exc
        if inner is MISSING:
            raise fail(f"the answer has no {self.json_string!r}")
        return inner


def _kingdee_result(body: Any) -> Mapping[str, Any] | None:
    node = body
    while isinstance(node, list) and node:
        node = node[0]
    if isinstance(node, Mapping) and isinstance(node.get("Result"), Mapping):
        return node["Result"]  # type: ignore[no-any-return]
    return None


@dataclass(frozen=True)
class RateLimit:
    """Bounded retries on a rate limit: ``retries`` waits of ``backoff * 2**n`` s (or Retry-After)."""

    retries: int = 3
    backoff: float = 1.0
    max_wait: float = 60.0

    def wait(self, attempt: int, retry_after: str | None, now: datetime) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_wait)
            except ValueError:
                try:
                    parsed = email.utils.parsedate_to_datetime(retry_after)
                except (TypeError, ValueError):
                    parsed = None
                if parsed is not None:
                    if parsed.tzinfo is None:
                        parsed = parsed.replace(tzinfo=UTC)
                    return min(max((parsed - now).total_seconds(), 0.0), self.max_wait)
        return min(self.backoff * float(1 << attempt), self.max_wait)


class Auth(Protocol):
    """An auth strategy: signs each request; may hold a token it can drop and fetch again."""

    def apply(self, req: Request, session: HttpSession) -> None: ...

    def invalidate(self) -> bool:
        """Forget any cached token; True if a fresh one could now be fetched (worth one retry)."""
        ...

    def secrets(self) -> Iterable[str]: ...


class NoAuth:
    """No credentials (an IP allowlist, or a test)."""

    def apply(self, req: Request, session: HttpSession) -> None:  # noqa: ARG002
        return None

    def invalidate(self) -> bool:
        return False

    def secrets(self) -> Iterable[str]:
        return ()


class HttpSession:
    """The connector's HTTP client.  ``transport`` and ``sleep`` exist for tests."""

    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        auth: Auth | None = None,
        envelope: Envelope | None = None,
        rate_limit: RateLimit | None = None,
        timeout: float = 30.0,
        secrets: Sequence[str] = (),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.system = system
        self.auth: Auth = auth or NoAuth()
        self.envelope = envelope or Envelope()
        self.rate_limit = rate_limit or RateLimit()
        self._secrets = tuple(secrets)
        self.sleep = sleep
        self.clock = clock or (lambda: datetime.now(UTC))
        self._client_args: dict[str, Any] = {
            "base_url": base_url,
            "timeout": timeout,
            "transport": transport,
            "headers": dict(headers or {}),
            "follow_redirects": False,
        }
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        """The one ``httpx.Client`` of this session, opened on first use (again after :meth:`close`)."""
        if self._client is None:
            self._client = httpx.Client(**self._client_args)
        return self._client

    def close(self) -> None:
        """Close the connections; cached tokens stay, and the next call opens a new client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def secrets(self) -> tuple[str, ...]:
        return (*self._secrets, *self.auth.secrets())

    def error(self, message: str, **kw: Any) -> SourceError:
        return SourceError(self.system, message, secrets=self.secrets(), **kw)

    def send(
        self, req: Request, *, label: str, page: int | str | None = None
    ) -> tuple[httpx.Response, Any, str | None]:
        """Send as is (no auth, no envelope): the response, its JSON (or MISSING) and a parse problem."""
        log.debug("source request", extra={"system": self.system, "endpoint": req.path, "page": page})
        try:
            resp = self.client.request(
                req.method,
                req.path,
                params={k: _query_value(v) for k, v in req.query.items()} or None,
                headers=req.headers,
                content=json.dumps(req.json, ensure_ascii=False).encode("utf-8") if req.json is not None else None,
                data=req.form if req.form is not None and req.json is None else None,
            )
        except httpx.HTTPError as exc:
            raise self.error(f"request failed: {type(exc).__name__}: {exc}", endpoint=label, page=page) from exc
        if not resp.content:
            return resp, MISSING, "empty body"
        try:
            return resp, resp.json(), None
        except ValueError as exc:
            return resp, MISSING, f"the body is not valid JSON ({exc})"

    def call(
        self,
        req: Request,
        *,
        label: str | None = None,
        page: int | str | None = None,
        envelope: Envelope | None = None,
        authenticate: bool = True,
    ) -> Any:
        """Send with auth, retries and the envelope check; return the unwrapped body."""
        env = envelope or self.envelope
        label = label or req.path
        refreshed = False
        attempt = 0
        while True:
            signed = copy.deepcopy(req)
            if req.json is not None:
                signed.headers.setdefault("Content-Type", "application/json; charset=utf-8")
            if authenticate:
                self.auth.apply(signed, self)
            resp, body, problem = self.send(signed, label=label, page=page)
            code, message = env.status(body) if body is not MISSING else (None, None)
            if resp.status_code == 429 or (code is not None and code in env.rate_limited):
                if attempt < self.rate_limit.retries:
                    wait = self.rate_limit.wait(attempt, resp.headers.get("Retry-After"), self.clock())
                    log.info("source rate limited", extra={"system": self.system, "endpoint": label, "wait": wait})
                    self.sleep(wait)
                    attempt += 1
                    continue
                raise self.error(
                    f"still rate limited after {self.rate_limit.retries} retries (HTTP {resp.status_code})",
                    endpoint=label,
                    page=page,
                    code=code,
                    vendor_message=message,
                )
            if authenticate and (resp.status_code == 401 or (code is not None and code in env.auth_expired)):
                if not refreshed and self.auth.invalidate():
                    refreshed = True
                    continue
                raise self.error(
                    f"authentication failed (HTTP {resp.status_code})",
                    endpoint=label,
                    page=page,
                    code=code,
                    vendor_message=message,
                )
            if problem is not None and resp.status_code < 400:
                raise self.error(problem, endpoint=label, page=page)
            if resp.status_code >= 400:
                raise self.error(
                    f"HTTP {resp.status_code}" + (f": {resp.text[:200]}" if code is None else ""),
                    endpoint=label,
                    page=page,
                    code=code,
                    vendor_message=message,
                )
            if not env.is_ok(code):
                raise self.error(
                    "the source answered with an error",
                    endpoint=label,
                    page=page,
                    code=code or "(none)",
                    vendor_message=message,
                )
            return env.unwrap(body, lambda m: self.error(m, endpoint=label, page=page))


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
