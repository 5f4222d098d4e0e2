"""The decision endpoints' ASGI fast path answers exactly as FastAPI does, or lets FastAPI answer.

Two apps on two databases prepared alike, one with the fast path (the default) and one without, get
the same requests: valid ones of every kind, each kind of invalid one (token, scope, body, batch),
the edge-value sweep and the seeded random bodies of ``test_bad_input``.  Status, headers and body
(decision ids aside) must be identical, and so must the decision-log rows, the usage aggregate and
the decision metrics.  Which app layer answered is watched too: the ordinary requests must be
answered by the fast path, everything else by FastAPI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.decisions.fastpath import DecisionFastPath
from app.http_guard import MAX_DEPTH
from app.main import create_app
from tests.conftest import auth, dev_token, make_settings, prepare_database
from tests.test_bad_input import EDGE_VALUES, FAST_SHUTDOWN, SWEPT, _fuzz_bodies, changed, member_paths

EVAL = "/access/v1/evaluation"
BATCH = "/access/v1/evaluations"
JSON = {"content-type": "application/json"}
OK = {**auth(scopes=["accessgov.decide"]), **JSON}
DECISION_ID = re.compile(rb'"decision_id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"')


def body(subject: str = "P001", action: Any = "read", rtype: str = "crm.customer", rid: str = "CUS-1",
         **props: Any) -> dict[str, Any]:
    return {"subject": {"type": "user", "id": subject},
            "action": action if isinstance(action, dict) else {"name": action},
            "resource": {"type": rtype, "id": rid, **({"properties": props} if props else {})}}


class Counting:
    """The app behind the fast path, counting the requests the fast path handed on."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await self.app(scope, receive, send)


def nested(levels: int) -> Any:
    """A value ``levels`` containers deep (lists and objects in turn)."""
    value: Any = 1
    for i in range(levels):
        value = [value] if i % 2 else {"v": value}
    return value


class Pair:
    """The same requests to the app with and without the fast path."""

    def __init__(self, fast: TestClient, slow: TestClient) -> None:
        self.fast, self.slow = fast, slow
        layer = fast.app.middleware_stack  # type: ignore[attr-defined]
        while not isinstance(layer, DecisionFastPath):  # the framework's error and telemetry layers
            layer = layer.app
        assert type(layer.app).__name__ == "BodyGuard", "the fast path is the outermost of the app's middleware"
        self.behind = layer.app = Counting(layer.app)
        layer = slow.app.middleware_stack  # type: ignore[attr-defined]
        while hasattr(layer, "app"):
            assert not isinstance(layer, DecisionFastPath)
            layer = layer.app

    def send(self, path: str, content: bytes | Any, headers: dict[str, str] | None = None,
             method: str = "POST") -> bool:
        """Send to both, assert the same answer; True when the fast path answered it itself."""
        if not isinstance(content, bytes):  # anything else is sent as JSON
            content = json.dumps(content).encode()
        headers = OK if headers is None else headers
        before = self.behind.calls
        fast = self.fast.request(method, path, content=content, headers=headers)
        answered_fast = self.behind.calls == before
        slow = self.slow.request(method, path, content=content, headers=headers)
        what = f"{method} {path} {str(content)[:200]} {headers}"
        assert fast.status_code == slow.status_code, what
        assert fast.headers.multi_items() == slow.headers.multi_items(), what
        assert DECISION_ID.sub(b"ID", fast.content) == DECISION_ID.sub(b"ID", slow.content), what
        return answered_fast

    def assert_same_records(self) -> None:
        """Decision-log rows (in order, id and time aside), usage aggregate and decision metrics."""
        def records(client: TestClient) -> Any:
            services = client.app.state.services  # type: ignore[attr-defined]
            assert services.recorder.flush(timeout=20)
            with services.factory() as session:
                rows = session.execute(text(
                    "SELECT caller, subject, person_id, action, resource_type, resource_id, allowed, policy_version,"
                    " reason, fields FROM decision_log ORDER BY rowid")).all()
                usage = session.execute(text(
                    "SELECT person_id, resource_type, action, count, allows, denies FROM usage"
                    " ORDER BY person_id, resource_type, action")).all()
            metrics = [line for line in client.get("/metrics").text.splitlines()
                       if line.startswith(("accessgov_decisions_total", "accessgov_decision_seconds_count",
                                           "accessgov_decision_log_dropped_total"))]
            return rows, usage, metrics

        fast_rows, fast_usage, fast_metrics = records(self.fast)
        slow_rows, slow_usage, slow_metrics = records(self.slow)
        assert len(fast_rows) == len(slow_rows)
        assert fast_rows == slow_rows
        assert fast_usage == slow_usage
        assert fast_metrics == slow_metrics and any("decisions_total{" in m for m in fast_metrics)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    clients = []
    for name, fast_path in (("fast", True), ("slow", False)):
        settings = make_settings(f"sqlite:///{tmp_path_factory.mktemp(name) / 'accessgov.db'}",
                                 decision_log=FAST_SHUTDOWN)
        prepare_database(settings)
        client = TestClient(create_app(settings, fast_path=fast_path), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
    try:
        yield Pair(*clients)
    finally:
        for client in clients:
            client.__exit__(None, None, None)


BATCH_BODY = {"subject": {"type": "user", "id": "P001"}, "action": {"name": "read"},
              "evaluations": [{"resource": {"type": "crm.customer", "id": f"CUS-{i}"}} for i in (1, 2, 3, 4)]}

ANSWERED_FAST: list[tuple[str, str, Any]] = [
    ("allowed, fields", EVAL, body(fields=["name", "phone", "id_number"])),
    ("denied", EVAL, body("P004", rid="CUS-2")),
    ("registry lookup (thread pool)", EVAL, body("crm:zhangwei01")),
    ("caller properties", EVAL, body("P001", owner="P002", department="D-EAST", fields=["phone"])),
    ("export with rows", EVAL, body("P001", {"name": "export", "properties": {"rows": 50}})),
    ("unknown subject", EVAL, body("crm:nobody")),
    ("person who left", EVAL, body("P006")),
    ("unknown resource type", EVAL, body(rtype="crm.spaceship", rid="S-1")),
    ("unknown action", EVAL, body(action="teleport")),
    ("empty resource id", EVAL, body(rid="", owner="P001", department="D-EAST")),
    ("context and unknown members", EVAL, {**body(), "context": {"ip": "10.0.0.1"}, "extra": [1, {"x": None}]}),
    ("batch, execute_all", BATCH, BATCH_BODY),
    ("batch, deny_on_first_deny", BATCH, {**BATCH_BODY, "options": {"evaluations_semantic": "deny_on_first_deny"}}),
    ("batch, permit_on_first_permit", BATCH,
     {**BATCH_BODY, "options": {"evaluations_semantic": "permit_on_first_permit"}}),
    ("batch, items override defaults", BATCH,
     {**BATCH_BODY, "evaluations": [{"subject": {"type": "user", "id": "P004"}, "resource": body()["resource"]},
                                    {"action": {"name": "delete"}, "resource": body()["resource"]},
                                    {"resource": body(fields=["phone"])["resource"], "context": {"a": 1}}]}),
    ("batch without evaluations = single", BATCH, body()),
    ("batch, empty options", BATCH, {**BATCH_BODY, "options": {}}),
    ("batch of exactly max_batch", BATCH, {**BATCH_BODY, "evaluations": BATCH_BODY["evaluations"] * 50}),
    ("batch, evaluations empty but a full default", BATCH, {**body(), "evaluations": []}),
    ("properties nested within bounds", EVAL, body(x=nested(20))),
    ("unknown member nested within bounds", BATCH, {**BATCH_BODY, "extra": nested(20)}),
]

HANDED_ON: list[tuple[str, str, Any, dict[str, str] | None]] = [
    ("no token", EVAL, body(), JSON),
    ("not a bearer token", EVAL, body(), {"authorization": "Basic dXNlcjpwdw==", **JSON}),
    ("bearer without a token", EVAL, body(), {"authorization": "Bearer ", **JSON}),
    ("junk token", EVAL, body(), {"authorization": "Bearer not.a.token", **JSON}),
    ("expired token", EVAL, body(), {"authorization": f"Bearer {dev_token(ttl=-10)}", **JSON}),
    ("wrong scope", EVAL, body(), {**auth(scopes=["accessgov.audit"]), **JSON}),
    ("wrong scope, batch", BATCH, BATCH_BODY, {**auth(scopes=["accessgov.directory"]), **JSON}),
    ("no content type", EVAL, body(), {**auth()}),
    ("text/plain", EVAL, body(), {**auth(), "content-type": "text/plain"}),
    ("json with charset (answered by FastAPI)", EVAL, body(),
     {**auth(), "content-type": "application/json; charset=utf-8"}),
    ("malformed JSON", EVAL, b'{"subject": ', None),
    ("empty body", EVAL, b"", None),
    ("null", EVAL, b"null", None),
    ("a list", BATCH, b"[1, 2]", None),
    ("too deep", EVAL, b"[" * 40 + b"]" * 40, None),
    # The fast path does not walk bodies for their depth: its shape check bounds what it accepts.
    ("too deep in properties", EVAL, body(x=nested(40)), None),
    ("too deep in a batch item's properties", BATCH,
     {**BATCH_BODY, "evaluations": [{"resource": body(x=nested(30))["resource"]}]},
     None),
    ("too deep in subject properties", EVAL, changed(body(), "subject.properties", {"x": nested(40)}), None),
    ("too deep in context", EVAL, {**body(), "context": {"x": nested(40)}}, None),
    ("too deep in options", BATCH, {**BATCH_BODY, "options": {"x": nested(40)}}, None),
    ("too deep in an unknown member", EVAL, {**body(), "extra": nested(40)}, None),
    ("too deep in an unknown member of a resource", BATCH,
     {**BATCH_BODY, "evaluations": [{"resource": {**body()["resource"], "extra": nested(40)}}]}, None),
    ("lone surrogate", EVAL, b'{"subject": {"type": "user", "id": "\\ud800"}}', None),
    ("NUL", EVAL, json.dumps(changed(body(), "resource.id", "a\x00")).encode(), None),
    ("too large", EVAL, b'{"a": "' + b"x" * (5 * 1024 * 1024) + b'"}', None),
    ("subject missing", EVAL, {k: v for k, v in body().items() if k != "subject"}, None),
    ("subject id too long", EVAL, changed(body(), "subject.id", "x" * 301), None),
    ("action name empty", EVAL, changed(body(), "action.name", ""), None),
    ("properties a list", EVAL, changed(body(), "resource.properties", []), None),
    ("batch item lacks a subject", BATCH,
     {"action": {"name": "read"}, "evaluations": [{"resource": body()["resource"]}]}, None),
    ("batch without evaluations or defaults", BATCH, {"subject": body()["subject"]}, None),
    ("batch over max_batch", BATCH, {**BATCH_BODY, "evaluations": BATCH_BODY["evaluations"] * 51}, None),
    ("unknown semantic", BATCH, {**BATCH_BODY, "options": {"evaluations_semantic": "most"}}, None),
    ("evaluations not a list", BATCH, {**BATCH_BODY, "evaluations": {"resource": {}}}, None),
]


@pytest.mark.parametrize(("what", "path", "content"), ANSWERED_FAST, ids=[c[0] for c in ANSWERED_FAST])
def test_ordinary_requests_are_answered_by_the_fast_path_as_by_fastapi(pair: Pair, what: str, path: str,
                                                                        content: Any) -> None:
    assert pair.send(path, content), f"{what}: the fast path should have answered"
    pair.assert_same_records()


@pytest.mark.parametrize(("what", "path", "content", "headers"), HANDED_ON, ids=[c[0] for c in HANDED_ON])
def test_everything_else_is_answered_by_fastapi(pair: Pair, what: str, path: str, content: Any,
                                                headers: dict[str, str] | None) -> None:
    assert not pair.send(path, content, headers), f"{what}: the fast path should have handed it on"
    pair.assert_same_records()


def test_a_body_too_deep_anywhere_is_refused_though_the_fast_path_does_not_walk_it(pair: Pair) -> None:
    """The body guard's 400 ``too_deep`` (nesting over MAX_DEPTH), wherever the depth hides."""
    for content in (body(x=nested(MAX_DEPTH)), {**body(), "extra": nested(MAX_DEPTH)},
                    {**BATCH_BODY, "evaluations": [{"resource": body(x=nested(MAX_DEPTH - 4))["resource"]}]}):
        path = BATCH if "evaluations" in content else EVAL
        answer = pair.fast.post(path, content=json.dumps(content).encode(), headers=OK)
        assert answer.status_code == 400, content
        assert answer.json()["error"]["code"] == "too_deep"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_not_touched(pair: Pair, method: str) -> None:
    assert not pair.send(EVAL, body(), method=method)


def test_other_paths_are_not_touched(pair: Pair) -> None:
    assert not pair.send(EVAL + "/", body())
    assert not pair.send("/v1/explain", body())
    assert pair.send(BATCH + "?x=1", BATCH_BODY)  # a query string changes nothing: answered fast
    pair.assert_same_records()


def test_the_state_not_loaded_and_a_failing_decision_are_denied_alike(pair: Pair,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for client in (pair.fast, pair.slow):
        services = client.app.state.services  # type: ignore[attr-defined]

        def broken(*_: Any) -> Any:
            raise RuntimeError("engine bug")

        monkeypatch.setattr(services.decisions, "decide_resolved", broken)
    assert pair.send(EVAL, body())
    assert pair.send(BATCH, BATCH_BODY)
    monkeypatch.undo()
    for client in (pair.fast, pair.slow):
        monkeypatch.setattr(client.app.state.services.holder, "_state", None)  # type: ignore[attr-defined]
    assert pair.send(EVAL, body())
    monkeypatch.undo()
    pair.assert_same_records()


def test_an_error_outside_a_decision_is_the_apps_500(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    for client in (pair.fast, pair.slow):
        services = client.app.state.services  # type: ignore[attr-defined]

        def broken(*_: Any) -> Any:
            raise RuntimeError("metrics bug")

        monkeypatch.setattr(services.metrics, "count_decisions", broken)
    assert pair.send(EVAL, body())  # the fast path took it, the error went to the app's 500 handler
    response = pair.fast.post(EVAL, json=body(), headers=OK)
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    pair.slow.post(EVAL, json=body(), headers=OK)  # the same rows on both sides
    monkeypatch.undo()
    pair.assert_same_records()


@pytest.mark.parametrize("path", [EVAL, BATCH])
def test_edge_values_and_random_bodies_get_the_same_answers(pair: Pair, path: str) -> None:
    fast = 0
    sent = 0
    for member in member_paths(SWEPT[path]):
        for value in EDGE_VALUES:
            fast += pair.send(path, changed(SWEPT[path], member, value))
            sent += 1
    for random_body in _fuzz_bodies(path):
        fast += pair.send(path, random_body)
        sent += 1
    assert 0 < fast < sent  # both layers answered some
    pair.assert_same_records()
