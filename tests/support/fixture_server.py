"""A real local HTTP server that replays recorded vendor fixtures and records what it was asked.

The vendor APIs cannot run here, so connector tests talk to this server instead, over real HTTP on
127.0.0.1 and a free port.  A fixture is a JSON object::

    {"request":  {"method": "POST", "path": "/v5/corp/role/list",
                  "query": {"access_token": "T1"},          # exact query (omitted = none)
                  "json": {"skip": 0, "limit": 2},          # exact JSON body, or
                  "form": {"params": {"curpage": 1}},       # exact form (a JSON-text field compared parsed)
                  "headers": {"authorization": "Bearer k"}},  # headers that must be present (subset)
     "response": {"status": 200, "headers": {...}, "json": {...}}   # or "body": "raw text"
     # or "responses": [r1, r2, ...]: served in order, one per matching request
    }

A fixture file holds one fixture or a list of them (one per page).  :meth:`FixtureServer.load`
reads files and directories; fixtures added later take precedence over earlier ones, so an error
scenario can be layered over the happy path.  A request no fixture matches gets HTTP 404 with a body
saying so (and it is recorded); a ``responses`` list that has run out gets 410.
``{{name}}`` placeholders in fixture files are replaced from ``variables``.

Tests get a running server from the ``server`` fixture:
``from tests.support.fixture_server import serve_fixtures  # noqa: F401``.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    matched: bool = False

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))

    def form_json(self, name: str) -> Any:
        return json.loads(self.form[name])


@dataclass
class Fixture:
    request: dict[str, Any]
    responses: list[dict[str, Any]]
    sticky: bool  # a single "response" answers every time
    served: int = 0
    origin: str = ""

    def matches(self, rec: Recorded) -> bool:
        spec = self.request
        if spec.get("method", "GET").upper() != rec.method or spec["path"] != rec.path:
            return False
        if {k: str(v) for k, v in (spec.get("query") or {}).items()} != rec.query:
            return False
        for name, value in (spec.get("headers") or {}).items():
            if rec.headers.get(name.lower()) != value:
                return False
        if "json" in spec:
            try:
                return rec.json == spec["json"]
            except ValueError:
                return False
        if "form" in spec:
            form = rec.form
            if set(form) != set(spec["form"]):
                return False
            for name, expected in spec["form"].items():
                got: Any = form[name]
                if not isinstance(expected, str):
                    try:
                        got = json.loads(got)
                    except ValueError:
                        return False
                if got != expected:
                    return False
            return True
        return not rec.body


class FixtureServer:
    """Serve fixtures on ``http://127.0.0.1:<free port>``; ``requests`` lists everything received."""

    def __init__(self) -> None:
        self.fixtures: list[Fixture] = []
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                rec = Recorded(
                    method=self.command,
                    path=parsed.path,
                    query=dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                status, headers, body = server._answer(rec)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002 - silence the stdlib's access log
                return None

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fixture-server", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FixtureServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fixtures -------------------------------------------------------------------------------

    def add(
        self,
        request: Mapping[str, Any],
        response: Mapping[str, Any] | None = None,
        *,
        responses: list[Mapping[str, Any]] | None = None,
        origin: str = "",
    ) -> None:
        """Add one fixture (it takes precedence over those added before)."""
        if (response is None) == (responses is None):
            raise ValueError("give response or responses")
        served = [dict(r) for r in responses] if responses is not None else [dict(response or {})]
        with self._lock:
            self.fixtures.insert(0, Fixture(dict(request), served, sticky=responses is None, origin=origin))

    def clear(self) -> None:
        """Drop every fixture (the request log stays): the next :meth:`load` starts a new recorded set."""
        with self._lock:
            self.fixtures.clear()

    def load(self, *paths: Path, variables: Mapping[str, str] | None = None) -> None:
        """Load fixture files (``*.json``, directories read in name order)."""
        for path in paths:
            files = sorted(path.glob("*.json")) if path.is_dir() else [path]
            if not files:
                raise FileNotFoundError(f"no fixtures in {path}")
            for file in files:
                text = file.read_text(encoding="utf-8")
                for name, value in (variables or {}).items():
                    text = text.replace("{{" + name + "}}", value)
                doc = json.loads(text)
                for item in doc if isinstance(doc, list) else [doc]:
                    if "responses" in item:
                        self.add(item["request"], responses=item["responses"], origin=file.name)
                    else:
                        self.add(item["request"], item["response"], origin=file.name)

    def _answer(self, rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.requests.append(rec)
            for fixture in self.fixtures:
                if not fixture.matches(rec):
                    continue
                rec.matched = True
                if fixture.sticky:
                    response = fixture.responses[0]
                elif fixture.served < len(fixture.responses):
                    response = fixture.responses[fixture.served]
                else:
                    return (
                        410,
                        {"Content-Type": "text/plain; charset=utf-8"},
                        (
                            f"fixture server: the fixture {fixture.origin} for {rec.method} {rec.path} has served all "
                            f"{len(fixture.responses)} responses"
                        ).encode(),
                    )
                fixture.served += 1
                return _render(response)
        body = (
            f"fixture server: no fixture matches {rec.method} {rec.path} query={rec.query} "
            f"body={rec.body[:500].decode('utf-8', 'replace')}"
        )
        return 404, {"Content-Type": "text/plain; charset=utf-8"}, body.encode("utf-8")

    # -- assertions helpers -----------------------------------------------------------------------

    def unmatched(self) -> list[Recorded]:
        return [r for r in self.requests if not r.matched]

    def calls(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request, in order."""
        return [(r.method, r.path) for r in self.requests]

    def to(self, path: str) -> Iterator[Recorded]:
        return (r for r in self.requests if r.path == path)


def _render(response: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
    headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
    if "json" in response:
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
        body = json.dumps(response["json"], ensure_ascii=False).encode("utf-8")
    else:
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        body = str(response.get("body", "")).encode("utf-8")
    return int(response.get("status", 200)), headers, body


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sync"


@pytest.fixture(name="server")
def serve_fixtures() -> Iterator[FixtureServer]:
    """A running :class:`FixtureServer`, closed after the test."""
    with FixtureServer() as server:
        yield server


class Sleeps:
    """A stand-in for ``time.sleep`` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
