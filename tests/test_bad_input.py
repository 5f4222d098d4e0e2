"""Bad input gets a 4xx with the one error body, changes nothing, and is never a 500.

Covers every AuthZEN endpoint, the /v1 filter and explain extensions, and the write APIs.  Undecidable
but well-formed questions are not errors: they get 200 with ``decision: false`` (fail closed).
The last two tests sweep every member of every endpoint's body with edge values, then post seeded random
bodies (no extra dependency; change ``FUZZ_SEED`` to explore further).
"""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import DecisionLogSettings
from app.main import create_app
from tests.conftest import auth, make_settings, prepare_database

HEADERS = auth()
FAST_SHUTDOWN = DecisionLogSettings(flush_seconds=0.05)  # the log writer stops within 50 ms, not 500
SUBJECT = {"type": "user", "id": "crm:zhangwei01"}
ACTION = {"name": "read"}
RESOURCE = {"type": "crm.customer", "id": "CUS-1"}
EVALUATION = {"subject": SUBJECT, "action": ACTION, "resource": RESOURCE}
SALES_READ_OWN = "p, sales, *, crm.customer, read, own, -, allow"

# One valid body per POST endpoint; every bad-input test below starts from one of these.
VALID: dict[str, dict[str, Any]] = {
    "/access/v1/evaluation": EVALUATION,
    "/access/v1/evaluations": {"subject": SUBJECT, "action": ACTION, "evaluations": [{"resource": RESOURCE}]},
    "/access/v1/search/subject": {"subject": {"type": "user"}, "action": ACTION, "resource": RESOURCE},
    "/access/v1/search/resource": {"subject": SUBJECT, "action": ACTION, "resource": {"type": "crm.customer"}},
    "/access/v1/search/action": {"subject": SUBJECT, "resource": RESOURCE},
    "/v1/filter": {"subject": SUBJECT, "action": ACTION, "resource": {"type": "crm.customer"}},
    "/v1/explain": EVALUATION,
    "/v1/grants": {"person_id": "P002", "role": "sales_manager", "department_id": "D-EAST",
                   "reason": "covers the team lead", "valid_from": "2030-01-01T00:00:00+08:00",
                   "valid_until": "2030-02-01T00:00:00+08:00"},
    "/v1/grants/1/revoke": {"reason": "moved to another team"},
    "/v1/delegations": {"from_person_id": "P003", "to_person_id": "P001", "role": "dept_manager",
                        "valid_from": "2030-01-01T00:00:00+08:00", "valid_until": "2030-01-08T00:00:00+08:00",
                        "reason": "on leave"},
    "/v1/policy/changes": {"add": ["p, finance, *, oa.leave, read, all, -, allow"],
                           "reason": "finance checks leave balances"},
    "/v1/policy/rollback": {"to_version": 1, "reason": "undo"},
}
AUTHZEN = [p for p in VALID if p.startswith("/access/")]
WRITES = [p for p in VALID if p.startswith(("/v1/grants", "/v1/delegations", "/v1/policy"))]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app, built like `client`, shared by the tests whose requests change nothing (it saves minutes).

    A server error comes back as a 500 response to assert on, not as a raised exception.
    """
    settings = make_settings(f"sqlite:///{tmp_path_factory.mktemp('bad-input') / 'accessgov.db'}",
                             decision_log=FAST_SHUTDOWN)
    prepare_database(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as shared:
        yield shared


@pytest.fixture
def fresh_api(app_factory: Callable[..., TestClient], sqlite_url: str) -> TestClient:
    """An app of the test's own, for tests whose requests may change data."""
    started = app_factory(sqlite_url, decision_log=FAST_SHUTDOWN)
    return TestClient(started.app, raise_server_exceptions=False)


@pytest.fixture
def postgres_api(postgres_url: str, app_factory: Callable[..., TestClient]) -> Iterator[TestClient]:
    """An app of the test's own on PostgreSQL; its pooled connections are closed afterwards."""
    started = app_factory(postgres_url, decision_log=FAST_SHUTDOWN)
    yield TestClient(started.app, raise_server_exceptions=False)
    # create_app's shutdown leaves the engine's pool open; psycopg would warn when it is collected.
    started.app.state.services.factory.kw["bind"].dispose()  # type: ignore[attr-defined]


@pytest.fixture
def api_for(request: pytest.FixtureRequest) -> Callable[[str], TestClient]:
    """The shared app for an endpoint that changes nothing, an app of the test's own for a write API."""
    return lambda path: request.getfixturevalue("fresh_api" if path in WRITES else "api")


# -- helpers ----------------------------------------------------------------------------------------


def post(api: TestClient, path: str, body: Any) -> httpx.Response:
    return post_raw(api, path, json.dumps(body).encode())  # ASCII JSON: any Python str can be sent


def post_raw(api: TestClient, path: str, content: bytes) -> httpx.Response:
    response: httpx.Response = api.post(path, content=content, headers={**HEADERS, "content-type": "application/json"})
    return response


DELETE = object()


def changed(body: Any, path: str | tuple[Any, ...], value: Any) -> Any:
    """A deep copy of body with the member at path (dotted, or a tuple of keys and list indexes) set
    to value, removed for DELETE; a new key under a list appends instead."""
    out = copy.deepcopy(body)
    *parents, last = path.split(".") if isinstance(path, str) else path
    target = out
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    elif isinstance(target, list) and not isinstance(last, int):
        target.append(value)
    else:
        target[last] = value
    return out


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The error member of a 4xx answer, after checking the body has exactly the one error shape."""
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    return dict(error)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    error = error_of(response)
    assert error["code"] == code, error
    return error


def snapshot(api: TestClient) -> dict[str, Any]:
    """Everything a write could change: grants, delegations, policy versions, change log, live policy."""
    reads = ["/v1/grants?include_revoked=true&limit=1000", "/v1/delegations", "/v1/policy/versions",
             "/v1/changes?limit=1000"]
    state = {path: api.get(path, headers=HEADERS).json() for path in reads}
    state["live_policy_version"] = api.get("/readyz").json()["policy_version"]
    return state


# -- the valid bodies work (so a 4xx below is caused by the one thing each test breaks) -------------


@pytest.mark.parametrize("path", list(VALID))
def test_valid_body_is_accepted(fresh_api: TestClient, path: str) -> None:
    response = post(fresh_api, path, VALID[path])

    assert response.status_code in (200, 201), response.text


# -- unparseable bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(VALID))
@pytest.mark.parametrize(("content", "code"), [
    pytest.param(b"{not json", "malformed_json", id="not-json"),
    pytest.param(b'{"subject": {"type": "user"', "malformed_json", id="truncated"),
    pytest.param(b"\xff\xfe{}", "malformed_json", id="not-utf8"),
    pytest.param(b"[" * 100_000, "too_deep", id="nested-too-deep"),
    pytest.param(b'{"reason": "\\ud800"}', "invalid_unicode", id="lone-surrogate"),
    pytest.param(b'{"reason": "a\\u0000"}', "invalid_unicode", id="nul"),
])
def test_unusable_body_is_400_saying_why(api: TestClient, path: str, content: bytes, code: str) -> None:
    assert_error(post_raw(api, path, content), 400, code)


@pytest.mark.parametrize("path", list(VALID))
def test_body_over_the_size_limit_is_413(api: TestClient, path: str) -> None:
    assert_error(post_raw(api, path, b" " * (5 * 1024 * 1024 + 1)), 413, "too_large")


@pytest.mark.parametrize("path", list(VALID))
@pytest.mark.parametrize("content", [b"[]", b'"alice"', b"42", b"null"])
def test_json_that_is_not_an_object_is_400_invalid_request(api: TestClient, path: str, content: bytes) -> None:
    assert_error(post_raw(api, path, content), 400, "invalid_request")


# -- members missing or of the wrong type -----------------------------------------------------------

MISSING = [
    ("/access/v1/evaluation", "action"), ("/access/v1/evaluation", "subject"),
    ("/access/v1/evaluation", "resource.type"), ("/access/v1/evaluation", "action.name"),
    ("/access/v1/search/subject", "subject.type"), ("/access/v1/search/resource", "resource"),
    ("/access/v1/search/action", "subject"), ("/v1/filter", "action"), ("/v1/explain", "resource"),
    ("/v1/grants", "person_id"), ("/v1/grants", "role"), ("/v1/grants", "reason"),
    ("/v1/grants/1/revoke", "reason"), ("/v1/delegations", "valid_until"), ("/v1/delegations", "role"),
    ("/v1/policy/changes", "reason"), ("/v1/policy/rollback", "to_version"),
]


@pytest.mark.parametrize(("path", "member"), MISSING)
def test_missing_required_member_is_400_naming_it(api: TestClient, path: str, member: str) -> None:
    error = assert_error(post(api, path, changed(VALID[path], member, DELETE)), 400, "invalid_request")

    assert {"loc": ["body", *member.split(".")], "msg": "Field required", "type": "missing"} in error["details"]


WRONG_TYPES = [
    ("/access/v1/evaluation", "subject", "alice"),
    ("/access/v1/evaluation", "resource.id", 5),  # pydantic does not turn a number into a string
    ("/access/v1/evaluation", "action.name", ["read"]),
    ("/access/v1/evaluation", "subject.id", ""),
    ("/access/v1/evaluation", "resource.type", None),
    ("/access/v1/evaluation", "resource.properties", "owner=P001"),
    ("/access/v1/evaluation", "context", ["a"]),
    ("/access/v1/evaluation", "subject.type", "u" * 65),
    ("/access/v1/evaluations", "evaluations", {"resource": RESOURCE}),
    ("/access/v1/evaluations", "options", {"evaluations_semantic": "majority_vote"}),
    ("/access/v1/search/resource", "page", {"limit": 0}),
    ("/access/v1/search/subject", "page", {"limit": 1001}),
    ("/v1/grants", "person_id", 2),
    ("/v1/grants", "valid_until", "next month"),
    ("/v1/delegations", "valid_from", {"date": "2030-01-01", "tz": "+08:00"}),
    ("/v1/policy/changes", "add", "p, sales, *, crm.customer, read, all, -, allow"),
    ("/v1/policy/rollback", "to_version", "previous"),
]


@pytest.mark.parametrize(("path", "member", "value"), WRONG_TYPES)
def test_member_of_the_wrong_type_is_400_naming_it(api: TestClient, path: str, member: str, value: Any) -> None:
    error = assert_error(post(api, path, changed(VALID[path], member, value)), 400, "invalid_request")

    assert any(d["loc"][: 1 + len(member.split("."))] == ["body", *member.split(".")] for d in error["details"])


def test_batch_item_without_subject_and_no_default_is_400(api: TestClient) -> None:
    body = {"action": ACTION, "resource": RESOURCE, "evaluations": [{"subject": SUBJECT}, {}]}

    error = assert_error(post(api, "/access/v1/evaluations", body), 400, "invalid_request")

    assert error["details"] == {"index": 1, "missing": ["subject"]}


def test_empty_batch_without_a_full_default_is_400(api: TestClient) -> None:
    body = {"subject": SUBJECT, "action": ACTION, "evaluations": []}

    assert_error(post(api, "/access/v1/evaluations", body), 400, "invalid_request")


def test_batch_over_max_batch_is_400_with_max_and_given(api: TestClient) -> None:
    body = {"subject": SUBJECT, "action": ACTION, "evaluations": [{"resource": RESOURCE}] * 201}

    error = assert_error(post(api, "/access/v1/evaluations", body), 400, "invalid_request")

    assert error["details"] == {"max": 200, "given": 201}


def test_batch_of_exactly_max_batch_is_answered(api: TestClient) -> None:
    body = {"subject": SUBJECT, "action": ACTION, "evaluations": [{"resource": RESOURCE}] * 200}

    response = post(api, "/access/v1/evaluations", body)

    assert response.status_code == 200
    assert len(response.json()["evaluations"]) == 200


# -- unknown members: ignored by AuthZEN (the spec), refused by the write APIs (typo protection) -----


def with_unknown_members(body: dict[str, Any]) -> dict[str, Any]:
    """The body plus unknown members at the top level and inside every nested object."""
    out: dict[str, Any] = {key: with_unknown_members(value) if isinstance(value, dict) else value
                           for key, value in body.items()}
    return out | {"x_vendor_extension": {"nested": [1, "two", None]}, "another_unknown": True}


@pytest.mark.parametrize("path", AUTHZEN)
def test_authzen_ignores_unknown_members(api: TestClient, path: str) -> None:
    plain = post(api, path, VALID[path])
    extended = post(api, path, with_unknown_members(VALID[path]))

    assert extended.status_code == 200, extended.text
    assert _essence(extended.json()) == _essence(plain.json())


def _essence(answer: dict[str, Any]) -> Any:
    """What a caller acts on (decision ids and timestamps differ between two calls)."""
    if "evaluations" in answer:
        return [e["decision"] for e in answer["evaluations"]]
    return answer["decision"] if "decision" in answer else answer["results"]


@pytest.mark.parametrize("path", WRITES)
def test_write_api_refuses_unknown_members(api: TestClient, path: str) -> None:
    body = VALID[path] | {"valid_untill": "2030-01-01T00:00:00+08:00"}  # a typo must not grant forever

    error = assert_error(post(api, path, body), 400, "invalid_request")

    assert error["details"][0]["type"] == "extra_forbidden"


# -- write APIs: refused, and nothing changed ------------------------------------------------------

_GRANT, _DELEGATION = VALID["/v1/grants"], VALID["/v1/delegations"]
_CHANGE, _ROLLBACK = VALID["/v1/policy/changes"], VALID["/v1/policy/rollback"]
_REVOKE = VALID["/v1/grants/1/revoke"]
_BACKWARDS = {"valid_from": "2030-02-01T00:00:00+08:00", "valid_until": "2030-01-01T00:00:00+08:00"}


REFUSED_WRITES = [
    pytest.param("/v1/grants", _GRANT | {"person_id": "P999"}, 404, "not_found", id="grant-unknown-person"),
    pytest.param("/v1/grants", _GRANT | {"role": "astronaut"}, 400, "invalid_request", id="grant-unknown-role"),
    pytest.param("/v1/grants", _GRANT | {"department_id": "D-MOON"}, 400, "invalid_request",
                 id="grant-unknown-department"),
    pytest.param("/v1/grants", _GRANT | {"person_id": "P006"}, 409, "conflict", id="grant-to-person-who-left"),
    pytest.param("/v1/grants", _GRANT | _BACKWARDS, 400, "invalid_request", id="grant-until-before-from"),
    pytest.param("/v1/grants", _GRANT | {"valid_until": "2030-02-01T00:00:00"}, 400, "invalid_request",
                 id="grant-naive-datetime"),
    pytest.param("/v1/grants", _GRANT | {"reason": ""}, 400, "invalid_request", id="grant-empty-reason"),
    pytest.param("/v1/grants", _GRANT | {"reason": "   "}, 400, "invalid_request", id="grant-blank-reason"),
    pytest.param("/v1/grants/999/revoke", _REVOKE, 404, "not_found", id="revoke-unknown-grant"),
    pytest.param("/v1/grants/1/revoke", {"reason": ""}, 400, "invalid_request", id="revoke-empty-reason"),
    pytest.param("/v1/grants/1/revoke", {"reason": "  "}, 400, "invalid_request", id="revoke-blank-reason"),
    pytest.param("/v1/delegations", _DELEGATION | {"to_person_id": "P999"}, 404, "not_found",
                 id="delegation-unknown-deputy"),
    pytest.param("/v1/delegations", _DELEGATION | {"role": "finance_director"}, 409, "conflict",
                 id="delegation-of-a-role-not-held"),
    pytest.param("/v1/delegations", _DELEGATION | {"to_person_id": "P003"}, 400, "invalid_request",
                 id="delegation-to-oneself"),
    pytest.param("/v1/delegations", _DELEGATION | _BACKWARDS, 400, "invalid_request",
                 id="delegation-until-before-from"),
    pytest.param("/v1/delegations", _DELEGATION | {"valid_from": "2030-01-01T00:00:00"}, 400, "invalid_request",
                 id="delegation-naive-datetime"),
    pytest.param("/v1/delegations", _DELEGATION | {"reason": ""}, 400, "invalid_request",
                 id="delegation-empty-reason"),
    pytest.param("/v1/delegations", _DELEGATION | {"reason": "  "}, 400, "invalid_request",
                 id="delegation-blank-reason"),
    pytest.param("/v1/policy/changes", _CHANGE | {"add": ["q, not, a, rule"]}, 422, "invalid_policy",
                 id="policy-not-a-policy-line"),
    pytest.param("/v1/policy/changes", _CHANGE | {"add": ["p, astronaut, *, crm.customer, read, all, -, allow"]},
                 422, "invalid_policy", id="policy-unknown-role"),
    pytest.param("/v1/policy/changes", _CHANGE | {"add": ["p, sales, *, crm.customer, read, all, record.x ==, "
                                                          "allow"]}, 422, "invalid_policy",
                 id="policy-unreadable-condition"),
    pytest.param("/v1/policy/changes", _CHANGE | {"remove": ["p, sales, *, crm.customer, delete, all, -, allow"]},
                 422, "invalid_policy", id="policy-remove-a-line-that-is-not-there"),
    pytest.param("/v1/policy/changes", _CHANGE | {"add": [], "remove": [SALES_READ_OWN]}, 422, "invalid_policy",
                 id="policy-change-breaks-policy-tests"),
    pytest.param("/v1/policy/changes", _CHANGE | {"reason": ""}, 400, "invalid_request", id="policy-empty-reason"),
    pytest.param("/v1/policy/changes", _CHANGE | {"reason": " "}, 400, "invalid_request", id="policy-blank-reason"),
    pytest.param("/v1/policy/changes", _CHANGE | {"add": [], "remove": []}, 400, "invalid_request",
                 id="policy-empty-change"),
    pytest.param("/v1/policy/rollback", _ROLLBACK | {"to_version": 99}, 404, "not_found",
                 id="rollback-unknown-version"),
    pytest.param("/v1/policy/rollback", _ROLLBACK | {"reason": ""}, 400, "invalid_request",
                 id="rollback-empty-reason"),
    pytest.param("/v1/policy/rollback", _ROLLBACK | {"reason": "  "}, 400, "invalid_request",
                 id="rollback-blank-reason"),
    pytest.param("/v1/policy/rollback", _ROLLBACK | {"to_version": 2**31}, 400, "invalid_request",
                 id="rollback-to-version-beyond-int4"),
    pytest.param("/v1/grants/2147483648/revoke", _REVOKE, 400, "invalid_request", id="revoke-id-beyond-int4"),
    pytest.param("/v1/grants/99999999999999999999/revoke", _REVOKE, 400, "invalid_request",
                 id="revoke-id-beyond-int64"),
]


@pytest.mark.parametrize(("path", "body", "status", "code"), REFUSED_WRITES)
def test_refused_write_changes_nothing(api: TestClient, path: str, body: dict[str, Any], status: int,
                                       code: str) -> None:
    before = snapshot(api)

    response = post(api, path, body)

    assert_error(response, status, code)
    assert snapshot(api) == before


def test_policy_change_that_fails_policy_tests_names_them_and_keeps_the_old_rules(api: TestClient) -> None:
    error = assert_error(post(api, "/v1/policy/changes", _CHANGE | {"add": [], "remove": [SALES_READ_OWN]}),
                         422, "invalid_policy")

    assert any("sales.yaml" in line for line in error["details"]), error
    assert post(api, "/access/v1/evaluation", EVALUATION).json()["decision"] is True


def test_snapshot_sees_a_successful_write(fresh_api: TestClient) -> None:
    """The snapshot above would notice a change (else 'nothing changed' would prove nothing)."""
    before = snapshot(fresh_api)

    assert post(fresh_api, "/v1/grants", _GRANT).status_code == 201
    assert snapshot(fresh_api) != before


# -- search page tokens -----------------------------------------------------------------------------

SUBJECT_SEARCH = VALID["/access/v1/search/subject"] | {"page": {"limit": 1}}


def _first_page_token(api: TestClient) -> str:
    token = post(api, "/access/v1/search/subject", SUBJECT_SEARCH).json()["page"]["next_token"]
    assert token, "the mini org must have more than one page of subjects"
    return str(token)


def _with_token(body: dict[str, Any], token: str) -> dict[str, Any]:
    return body | {"page": {"limit": 1, "next_token": token}}


def test_page_token_continues_its_own_query(api: TestClient) -> None:
    response = post(api, "/access/v1/search/subject", _with_token(SUBJECT_SEARCH, _first_page_token(api)))

    assert response.status_code == 200


@pytest.mark.parametrize("tamper", [
    pytest.param(lambda t: t[:-6] + "AAAAAA", id="bytes-changed"),
    pytest.param(lambda t: t[: len(t) // 2], id="truncated"),
    pytest.param(lambda _: "!!!", id="not-base64"),
    pytest.param(lambda t: base64.urlsafe_b64encode(t.encode()).decode(), id="encoded-twice"),
    pytest.param(lambda _: base64.urlsafe_b64encode(b'["P001"]').decode(), id="wrong-json-shape"),
])
def test_tampered_page_token_is_400(api: TestClient, tamper: Callable[[str], str]) -> None:
    body = _with_token(SUBJECT_SEARCH, tamper(_first_page_token(api)))

    assert_error(post(api, "/access/v1/search/subject", body), 400, "invalid_request")


def test_page_token_of_another_query_is_400(api: TestClient) -> None:
    other_query = changed(SUBJECT_SEARCH, "action", {"name": "update"})

    error = assert_error(post(api, "/access/v1/search/subject", _with_token(other_query, _first_page_token(api))),
                         400, "invalid_request")

    assert "another query" in error["message"]


# -- undecidable questions are answered "no" (fail closed), not refused ------------------------------


@pytest.mark.parametrize(("subject_id", "resource", "action", "code"), [
    pytest.param("crm:zhangwei01", {"type": "crm.spaceship", "id": "S-1"}, "read", "unknown_resource_type",
                 id="unknown-resource-type"),
    pytest.param("crm:zhangwei01", RESOURCE, "teleport", "unknown_action", id="unknown-action"),
    pytest.param("crm:nobody", RESOURCE, "read", "unknown_subject", id="unknown-subject"),
    pytest.param("crm:test01", RESOURCE, "read", "orphan_account", id="orphan-account"),
    pytest.param("P006", RESOURCE, "read", "subject_inactive", id="person-who-left"),
    pytest.param("oa:1001", {"type": "oa.expense", "id": "EXP-1"}, "read", "account_disabled",
                 id="disabled-account"),
    pytest.param("crm:zhangwei01", {"type": "crm.customer", "id": "CUS-404"}, "read", "unknown_department",
                 id="record-without-department-not-in-registry"),
])
def test_undecidable_evaluation_is_denied_not_refused(api: TestClient, subject_id: str, resource: dict[str, Any],
                                                      action: str, code: str) -> None:
    body = {"subject": {"type": "user", "id": subject_id}, "action": {"name": action}, "resource": resource}

    response = post(api, "/access/v1/evaluation", body)

    assert response.status_code == 200, response.text
    assert response.json()["decision"] is False
    assert response.json()["context"]["reason"]["code"] == code


# -- what PostgreSQL cannot store is refused up front ------------------------------------------------

@pytest.mark.parametrize(("text", "status"), [
    pytest.param("a\x00", 400, id="nul"),
    pytest.param("a\\\x00", 400, id="nul-after-a-backslash"),
    pytest.param("C:\\ud800", 200, id="backslash-then-ud800-text"),
])
def test_only_a_real_nul_or_surrogate_is_refused(api: TestClient, text: str, status: int) -> None:
    response = post(api, "/v1/explain", changed(EVALUATION, "resource.id", text))

    assert response.status_code == status, response.text[:300]


@pytest.mark.postgres
@pytest.mark.parametrize(("path", "body", "code"), [
    pytest.param("/v1/grants/3000000000/revoke", _REVOKE, "invalid_request", id="id-beyond-int4"),
    pytest.param("/v1/grants", _GRANT | {"reason": "cover\x00"}, "invalid_unicode", id="nul-in-reason"),
    pytest.param("/v1/delegations", _DELEGATION | {"to_person_id": "P\x00001"}, "invalid_unicode",
                 id="nul-in-person-id"),
    pytest.param("/v1/explain", changed(EVALUATION, "resource.id", "CUS-\x00"), "invalid_unicode",
                 id="nul-in-registry-lookup"),
    pytest.param("/v1/explain", changed(EVALUATION, "resource.id", "CUS-\\\x00"), "invalid_unicode",
                 id="nul-after-a-backslash"),
])
def test_postgres_refuses_what_it_cannot_store_with_a_400(postgres_api: TestClient, path: str,
                                                          body: dict[str, Any], code: str) -> None:
    assert_error(post(postgres_api, path, body), 400, code)


# -- never a 500: every member replaced by edge values, then seeded random bodies ---------------------

EDGE_VALUES: list[Any] = [
    None, True, False, 0, -1, 2**31, 2**63, -(2**64), 0.5, 1e308, "", " ", "\x00", "\ud800", "\u202e\ufeff",
    "中文🙂", "x" * 65, "x" * 301, "x" * 100_000, ":", "crm:", "P006", "crm:test01", "2030-01-01T00:00:00",
    [], [None], ["name", 7], {}, {"fields": {"name": 1}, "department": ["D-EAST"], "owner": 5}, [[[[[[[]]]]]]] * 2,
]
# The evaluation and explain bodies of the sweep carry properties, so fields/owner/department are swept too.
RICH_EVALUATION = changed(EVALUATION, "resource.properties",
                          {"owner": "P001", "department": "D-EAST", "fields": ["name", "phone"]})
SWEPT = VALID | {"/access/v1/evaluation": RICH_EVALUATION, "/v1/explain": RICH_EVALUATION}


def member_paths(body: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths (tuples of keys and list indexes) of every member of body, nested ones included."""
    items = body.items() if isinstance(body, dict) else enumerate(body) if isinstance(body, list) else []
    for key, value in items:
        yield (*prefix, key)
        yield from member_paths(value, (*prefix, key))


def assert_not_a_server_error(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what} -> {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        error_of(response)


@pytest.mark.parametrize("path", list(SWEPT))
def test_any_member_set_to_an_edge_value_is_never_a_server_error(api_for: Callable[[str], TestClient],
                                                                  path: str) -> None:
    app = api_for(path)
    for member in member_paths(SWEPT[path]):
        for value in EDGE_VALUES:
            body = changed(SWEPT[path], member, value)
            assert_not_a_server_error(post(app, path, body), f"{path} {member} = {value!r:.60}")


FUZZ_SEED = 20240501
FUZZ_BODIES_PER_ENDPOINT = 300
_KEYS = ["subject", "action", "resource", "context", "type", "id", "name", "properties", "fields", "owner",
         "department", "evaluations", "options", "evaluations_semantic", "page", "next_token", "token", "limit",
         "person_id", "role", "department_id", "include_subtree", "reason", "valid_from", "valid_until",
         "from_person_id", "to_person_id", "add", "remove", "to_version", "rows"]
_TEXT = "aZ09 _-:.,*|'\"\\/\n\t\x00é中文🙂\u202e\ufeff\ud800\udc00"
_SCALARS: list[Any] = [*EDGE_VALUES[:17], "P001", "crm:zhangwei01", "crm.customer", "oa.expense", "read",
                       "export", "D-EAST", "user", "2030-01-01T00:00:00+08:00", SALES_READ_OWN, "deny_on_first_deny"]


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth >= 4 or roll < 0.45:
        return rng.choice(_SCALARS)
    if roll < 0.6:
        return "".join(rng.choice(_TEXT) for _ in range(rng.randint(0, 12)))
    if roll < 0.8:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(_KEYS) if rng.random() < 0.7 else _value(rng, 4): _value(rng, depth + 1)
            for _ in range(rng.randint(0, 5))}


def _mutate(rng: random.Random, body: Any) -> Any:
    """Replace, delete or add a member at a random place of body (changed in place), or replace it all."""
    paths = list(member_paths(body))
    if not paths or rng.random() < 0.1:
        return _value(rng)
    member = rng.choice(paths)
    roll = rng.random()
    if roll < 0.6:
        return changed(body, member, _value(rng))
    if roll < 0.8:
        return changed(body, member, DELETE)
    return changed(body, (*member[:-1], rng.choice(_KEYS)), _value(rng))


def _fuzz_bodies(path: str) -> Iterator[Any]:
    rng = random.Random(f"{FUZZ_SEED}:{path}")
    for _ in range(FUZZ_BODIES_PER_ENDPOINT):
        body = SWEPT[path]
        for _ in range(rng.randint(1, 4)):
            body = _mutate(rng, body)
        yield body


@pytest.mark.parametrize("path", list(SWEPT))
def test_random_bodies_never_cause_a_server_error(api_for: Callable[[str], TestClient], path: str) -> None:
    app = api_for(path)
    for body in _fuzz_bodies(path):
        assert_not_a_server_error(post(app, path, body), f"{path} {json.dumps(body)[:300]}")
