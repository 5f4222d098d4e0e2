"""The AuthZEN decision API and its extensions, over HTTP, on the mini organisation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth

EVAL = "/access/v1/evaluation"
BATCH = "/access/v1/evaluations"


def ask(client: TestClient, subject: str, action: str, rtype: str, rid: str = "", **props: Any) -> dict[str, Any]:
    body = {"subject": {"type": "user", "id": subject}, "action": {"name": action},
            "resource": {"type": rtype, "id": rid, "properties": props}}
    r = client.post(EVAL, json=body, headers=auth())
    assert r.status_code == 200, r.text
    return r.json()


def test_metadata_names_every_endpoint(client: TestClient) -> None:
    meta = client.get("/.well-known/authzen-configuration").json()
    assert meta["policy_decision_point"] == "http://127.0.0.1:8000"
    for key, path in [("access_evaluation_endpoint", EVAL), ("access_evaluations_endpoint", BATCH),
                      ("search_subject_endpoint", "/access/v1/search/subject"),
                      ("search_resource_endpoint", "/access/v1/search/resource"),
                      ("search_action_endpoint", "/access/v1/search/action")]:
        assert meta[key].endswith(path)


def test_an_allowed_decision_carries_id_version_reason_and_fields(client: TestClient) -> None:
    out = ask(client, "crm:zhangwei01", "read", "crm.customer", "CUS-1", fields=["name", "phone", "id_number"])
    ctx = out["context"]
    assert out["decision"] is True
    uuid.UUID(ctx["decision_id"])
    assert ctx["policy_version"] == client.get("/readyz").json()["policy_version"]
    reason = ctx["reason"]
    assert reason["code"] == "allowed" and reason["role"] == "sales"
    assert reason["rule"]["text"] == "p, sales, *, crm.customer, read, own, -, allow"
    assert reason["grant"]["source"] == "crm" and reason["grant"]["domain"] == "hq/sales/east/"
    assert ctx["fields"] == {"name": "visible", "phone": "visible", "id_number": "hidden"}


def test_masked_fields_say_how_to_mask(client: TestClient) -> None:
    out = ask(client, "P003", "read", "crm.customer", "CUS-2", fields=["phone", "id_number"])
    assert out["decision"] is True
    assert out["context"]["fields"] == {"phone": "visible", "id_number": "masked"}
    assert out["context"]["masks"] == {"id_number": "id"}


def test_denials_say_why_and_hide_fields(client: TestClient) -> None:
    out = ask(client, "P001", "read", "crm.customer", "CUS-2", fields=["phone"])
    assert out["decision"] is False
    assert out["context"]["reason"]["code"] == "no_matching_rule"
    assert out["context"]["fields"] == {"phone": "hidden"}
    assert "zh-403" in out["context"]["reason_user"]


def test_caller_properties_override_the_registry_and_conditions_read_them(client: TestClient) -> None:
    small = ask(client, "P005", "approve", "oa.expense", "X", owner="P001", department="D-EAST",
                amount=48000, status="submitted")
    large = ask(client, "P005", "approve", "oa.expense", "X", owner="P001", department="D-EAST",
                amount=52000, status="submitted")
    assert small["decision"] is True and large["decision"] is False
    by_source_id = ask(client, "P005", "approve", "oa.expense", "X", owner="oa:1005", department="oa:21",
                       amount=10, status="submitted")
    assert by_source_id["decision"] is False  # own expense: explicit deny (owner resolved from the OA account)
    assert by_source_id["context"]["reason"]["code"] == "explicit_deny"


def test_an_untrusted_caller_cannot_assert_the_subjects_department(client: TestClient) -> None:
    body = {"subject": {"type": "user", "id": "P004", "properties": {"department": "D-EAST"}},
            "action": {"name": "read"}, "resource": {"type": "oa.document", "id": "",
            "properties": {"owner": "P001", "department": "D-EAST", "classification": "internal"}}}
    out = client.post(EVAL, json=body, headers=auth("crm-backend")).json()
    assert out["decision"] is False
    assert "not trusted" in out["context"]["notes"][0]


def test_a_trusted_caller_may_assert_the_subjects_department(app_factory, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    client = app_factory(sqlite_url, trusted_callers={"oa-backend": ["department"]})
    body = {"subject": {"type": "user", "id": "P004", "properties": {"department": "D-EAST"}},
            "action": {"name": "read"}, "resource": {"type": "oa.document", "id": "",
            "properties": {"owner": "P001", "department": "D-EAST", "classification": "internal"}}}
    assert client.post(EVAL, json=body, headers=auth("oa-backend")).json()["decision"] is True
    assert client.post(EVAL, json=body, headers=auth("crm-backend")).json()["decision"] is False


def _batch(client: TestClient, semantic: str | None, ids: list[str]) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"subject": {"type": "user", "id": "P001"}, "action": {"name": "read"},
                            "evaluations": [{"resource": {"type": "crm.customer", "id": i}} for i in ids]}
    if semantic:
        body["options"] = {"evaluations_semantic": semantic}
    r = client.post(BATCH, json=body, headers=auth())
    assert r.status_code == 200, r.text
    return [e["decision"] for e in r.json()["evaluations"]]


def test_batch_keeps_order_and_honours_semantics(client: TestClient) -> None:
    ids = ["CUS-1", "CUS-2", "CUS-4", "CUS-3"]
    assert _batch(client, None, ids) == [True, False, True, False]
    assert _batch(client, "execute_all", ids) == [True, False, True, False]
    assert _batch(client, "deny_on_first_deny", ids) == [True, False]
    assert _batch(client, "permit_on_first_permit", ["CUS-2", "CUS-3", "CUS-1", "CUS-4"]) == [False, False, True]


def test_batch_items_override_defaults(client: TestClient) -> None:
    body = {"subject": {"type": "user", "id": "P001"}, "action": {"name": "read"},
            "evaluations": [{"resource": {"type": "crm.customer", "id": "CUS-1"}},
                            {"action": {"name": "delete"}, "resource": {"type": "crm.customer", "id": "CUS-1"}},
                            {"subject": {"type": "user", "id": "P003"}, "resource": {"type": "crm.customer",
                                                                                      "id": "CUS-2"}}]}
    out = client.post(BATCH, json=body, headers=auth()).json()["evaluations"]
    assert [e["decision"] for e in out] == [True, False, True]
    assert len({e["context"]["decision_id"] for e in out}) == 3


def test_batch_without_evaluations_is_a_single_evaluation(client: TestClient) -> None:
    body = {"subject": {"type": "user", "id": "P001"}, "action": {"name": "read"},
            "resource": {"type": "crm.customer", "id": "CUS-1"}}
    assert client.post(BATCH, json=body, headers=auth()).json()["decision"] is True


def test_subject_search_pages_through_everyone_allowed(client: TestClient) -> None:
    body: dict[str, Any] = {"subject": {"type": "user"}, "action": {"name": "read"},
                            "resource": {"type": "crm.customer", "id": "CUS-1"}, "page": {"limit": 1}}
    seen = []
    for _ in range(10):
        out = client.post("/access/v1/search/subject", json=body, headers=auth()).json()
        seen += [s["id"] for s in out["results"]]
        if not out["page"]["next_token"]:
            break
        body["page"] = {"next_token": out["page"]["next_token"], "limit": 1}
    # owner (sales), the east sales manager, finance (reads every customer); P007's grant expired
    assert seen == ["P001", "P003", "P005"]
    for pid in seen:
        assert ask(client, pid, "read", "crm.customer", "CUS-1")["decision"] is True


def test_resource_and_action_search(client: TestClient) -> None:
    body = {"subject": {"type": "user", "id": "P001"}, "action": {"name": "read"},
            "resource": {"type": "crm.customer"}}
    out = client.post("/access/v1/search/resource", json=body, headers=auth()).json()
    assert [r["id"] for r in out["results"]] == ["CUS-1", "CUS-4"]
    body = {"subject": {"type": "user", "id": "P001"}, "resource": {"type": "crm.customer", "id": "CUS-4"}}
    actions = [a["name"] for a in client.post("/access/v1/search/action", json=body, headers=auth()).json()["results"]]
    assert actions == ["create", "read"]  # CUS-4 is a lost customer: sales may not update it


def _matches(cond: dict[str, Any] | None, rec: dict[str, Any]) -> bool:
    """A tiny interpreter of the filter language, as a CRM would translate it to SQL."""
    if cond is None:
        return False
    if "or" in cond:
        return any(_matches(c, rec) for c in cond["or"])
    if "and" in cond:
        return all(_matches(c, rec) for c in cond["and"])
    if "not" in cond:
        return not _matches(cond["not"], rec)
    value = rec.get(cond["field"].removeprefix("record."))
    op, want = cond["op"], cond["value"]
    return {"in": lambda: value in want, "eq": lambda: value == want, "==": lambda: value == want,
            "not_in": lambda: value not in want, "<=": lambda: value is not None and value <= want}[op]()


@pytest.mark.parametrize(("subject", "action"), [("P001", "read"), ("P001", "update"), ("P003", "read"),
                                                 ("P004", "read"), ("P005", "read"), ("P006", "read")])
def test_the_filter_selects_exactly_the_records_decisions_allow(client: TestClient, subject: str, action: str) -> None:
    from tests.factories import RECORDS

    body = {"subject": {"type": "user", "id": subject}, "action": {"name": action},
            "resource": {"type": "crm.customer"}}
    out = client.post("/v1/filter", json=body, headers=auth()).json()
    assert out["decision"] in ("always", "never", "conditional")
    for rtype, rid, owner, dep, props in RECORDS:
        if rtype != "crm.customer":
            continue
        row = {"department": dep, "owner": owner, **props}
        expected = ask(client, subject, action, rtype, rid)["decision"]
        assert _matches(out["condition"], row) == expected, (rid, out)


def test_explain_lists_grants_roles_and_every_candidate_rule(client: TestClient) -> None:
    body = {"subject": {"type": "user", "id": "P007"}, "action": {"name": "read"},
            "resource": {"type": "crm.customer", "id": "CUS-1"}}
    out = client.post("/v1/explain", json=body, headers=auth()).json()
    assert out["decision"] is False
    expired = [g for g in out["grants"] if g["role"] == "sales_manager"]
    assert expired and expired[0]["why"] == "expired"
    outcomes = {r["text"]: r["outcome"] for r in out["rules"]}
    manager_rule = outcomes["p, sales_manager, *, crm.customer, read, all, -, allow"]
    assert manager_rule.startswith("skipped: subject does not hold")


def test_effective_permissions_show_the_path(client: TestClient) -> None:
    out = client.get("/v1/people/P003/effective-permissions", headers=auth()).json()
    perms = out["permissions"]
    read_all = [p for p in perms if p["resource_type"] == "crm.customer" and p["action"] == "read"
                and p["scope"] == "all"]
    assert read_all and read_all[0]["via"] == ["sales_manager"] and read_all[0]["held_in"] == "hq/sales/east/"
    inherited = [p for p in perms if p["via"] == ["sales_manager", "sales", "employee"]]
    assert inherited, "inherited employee permissions carry their chain"
    assert client.get("/v1/people/P006/effective-permissions", headers=auth()).json()["permissions"] == []
    assert client.get("/v1/people/nobody/effective-permissions", headers=auth()).status_code == 404


def test_every_decision_is_logged_and_counted(client: TestClient) -> None:
    out = ask(client, "P001", "read", "crm.customer", "CUS-1", fields=["phone"])
    assert client.app.state.services.recorder.flush(timeout=10)
    logged = client.get("/v1/decisions", params={"person_id": "P001"}, headers=auth()).json()["decisions"]
    entry = next(d for d in logged if d["decision_id"] == out["context"]["decision_id"])
    assert entry["allowed"] is True and entry["fields"] == {"phone": "visible"}
    assert entry["reason"]["rule"]["text"].startswith("p, sales, *, crm.customer, read")
    assert entry["caller"] == "crm-backend" and entry["subject"] == "user:P001"
    metrics = client.get("/metrics").text
    assert 'accessgov_decisions_total{effect="allow",system="crm"}' in metrics
    assert "accessgov_decision_log_queue_depth" in metrics


def test_grants_take_effect_at_once_and_bump_the_version(client: TestClient) -> None:
    before = ask(client, "P004", "read", "crm.customer", "CUS-2")
    assert before["decision"] is False
    r = client.post("/v1/grants", headers=auth(), json={
        "person_id": "P004", "role": "sales_manager", "department_id": "D-EAST", "reason": "代理华东经理"})
    assert r.status_code == 201, r.text
    after = ask(client, "P004", "read", "crm.customer", "CUS-2")
    assert after["decision"] is True
    assert after["context"]["reason"]["grant"]["id"] == r.json()["id"]
    assert int(after["context"]["policy_version"]) > int(before["context"]["policy_version"])
    revoked = client.post(f"/v1/grants/{r.json()['id']}/revoke", json={"reason": "结束代理"}, headers=auth())
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "crm-backend"
    assert ask(client, "P004", "read", "crm.customer", "CUS-2")["decision"] is False
    kinds = [c["kind"] for c in client.get("/v1/changes", headers=auth()).json()[:2]]
    assert kinds == ["grant.revoke", "grant.create"]


def test_policy_changes_go_live_as_new_versions(client: TestClient) -> None:
    line = "p, sales, *, crm.customer, export, own, action.rows <= 100, allow"
    assert ask(client, "P001", "export", "crm.customer", "CUS-1")["decision"] is False
    r = client.post("/v1/policy/changes", json={"add": [line], "reason": "销售可导出自己的客户"}, headers=auth())
    assert r.status_code == 201, r.text
    body = {"subject": {"type": "user", "id": "P001"}, "action": {"name": "export", "properties": {"rows": 50}},
            "resource": {"type": "crm.customer", "id": "CUS-1"}}
    assert client.post(EVAL, json=body, headers=auth()).json()["decision"] is True
    versions = client.get("/v1/policy/versions", headers=auth()).json()
    assert versions[0]["id"] == r.json()["id"] and versions[0]["reason"] == "销售可导出自己的客户"
    files = client.get(f"/v1/policy/versions/{versions[0]['id']}", headers=auth()).json()["files"]
    assert line in files["rules.csv"]


def test_not_ready_until_a_policy_is_loaded(app_factory, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    from app.policy.models import PolicyVersion

    client = app_factory(sqlite_url)
    services = client.app.state.services
    with services.factory() as session, session.begin():  # simulate an empty policy store
        session.query(PolicyVersion).update({"digest": "x"})
    services.holder._state = None
    assert client.get("/readyz").status_code == 503
    out = ask(client, "P001", "read", "crm.customer", "CUS-1")
    assert out["decision"] is False and out["context"]["reason"]["code"] == "policy_not_loaded"


def test_openapi_documents_the_api_with_examples_and_errors(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in (EVAL, BATCH, "/v1/filter", "/v1/explain", "/v1/grants", "/v1/policy/changes"):
        assert path in doc["paths"]
    op = doc["paths"][EVAL]["post"]
    assert {"400", "401", "403"} <= set(op["responses"])
    schema = doc["components"]["schemas"]["EvaluationRequest"]
    assert schema.get("examples"), "evaluation request has an example"
