"""Fxiaoke connector against recorded fixtures.

The Fxiaoke API is replaced by recorded fixtures (tests/fixtures/sync/fxiaoke), written by hand from
the documented field lists, served by a real local HTTP server, because no real Fxiaoke can run here.
The role fixtures are provisional: the reference knows the endpoints but not their answers' shapes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.sync.canonical import Snapshot, SourceAccount, SourceAssignment, SourceDepartment, SourceRole
from app.sync.connectors import SourceError
from app.sync.connectors.fxiaoke import FxiaokeConnector
from tests.support.fixture_server import FIXTURES, FixtureServer, Sleeps, Ticker, serve_fixtures  # noqa: F401

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
HERE = FIXTURES / "fxiaoke"
CREDS = {"appId": "FSAID_test", "appSecret": "fx-app-secret-0001", "permanentCode": "fx-permanent-0001"}
ADMIN_ROLE = "00000000000000000000000000000006"


def connector(server: FixtureServer, admin: str | None = "FSUID_ADMIN") -> FxiaokeConnector:
    creds = {**CREDS, **({"currentOpenUserId": admin} if admin else {})}
    return FxiaokeConnector(base_url=server.url, credentials=creds, source="crm", page_size=2, sleep=Sleeps(),
                            clock=lambda: NOW, monotonic=Ticker())  # fmt: skip


def test_pull_users_departments_and_provisional_roles(server: FixtureServer) -> None:
    """The Fxiaoke API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy")
    snap = connector(server).pull()
    assert snap == Snapshot(
        source="crm",
        departments=(
            SourceDepartment("999999", "全公司"),
            SourceDepartment("1001", "销售部（华东）", parent_key="999999", order=1),
            SourceDepartment("1002", "旧部门", parent_key="999999", status="disabled", order=2),
        ),
        accounts=(
            SourceAccount("FSUID_A1", "张三", login="zhangsan", employee_no="0001", mobile="+8615000150000",
                          email="zs@example.com", department_keys=("1001",), primary_department="1001",
                          position="销售经理"),
            SourceAccount("FSUID_B2", "李四 <Lee>", status="disabled", login="lisi", employee_no="0002",
                          department_keys=("1001", "1002"), primary_department="1002", manager_key="FSUID_A1"),
        ),
        roles=(SourceRole(ADMIN_ROLE, "CRM管理员"), SourceRole("personnelrole", "销售人员")),
        assignments=(
            SourceAssignment("FSUID_A1", "personnelrole"),
            SourceAssignment("FSUID_B2", ADMIN_ROLE),
            SourceAssignment("FSUID_B2", "personnelrole"),
        ),
        taken_at=NOW,
    )  # fmt: skip
    assert server.unmatched() == []
    # The token and corpId travel in every JSON body, never in a header or the query.
    assert all(r.json["corpAccessToken"] == "fx-token-1" for r in server.requests[1:])
    assert all("authorization" not in r.headers and r.query == {} for r in server.requests)


def test_incremental_pull_pages_by_number_and_does_not_claim_accounts_complete(server: FixtureServer) -> None:
    """The Fxiaoke API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy")
    snap = connector(server, admin=None).pull(since=datetime(2025, 2, 1, tzinfo=UTC))
    assert snap.complete == frozenset({"departments"})
    assert [a.key for a in snap.accounts] == ["FSUID_A1", "FSUID_C3", "FSUID_D4"]
    assert snap.accounts[2].status == "disabled"
    pages = [(r.json["pageNumber"], r.json["pageSize"]) for r in server.to("/cgi/user/get/batchByUpdTime")]
    assert pages == [(1, 2), (2, 2)]  # the second page is short: stop
    assert "/cgi/user/list" not in [r.path for r in server.requests]


def test_expired_token_in_the_body_is_refreshed(server: FixtureServer) -> None:
    """The Fxiaoke API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "token_expired.json")
    snap = connector(server, admin=None).pull()
    assert len(snap.departments) == 3
    tokens = [(r.path, (r.json or {}).get("corpAccessToken")) for r in server.requests[:4]]
    assert tokens == [
        ("/cgi/corpAccessToken/get/V2", None),
        ("/cgi/department/list", "fx-token-0"),
        ("/cgi/corpAccessToken/get/V2", None),
        ("/cgi/department/list", "fx-token-1"),
    ]


def test_vendor_error_code_is_a_source_error(server: FixtureServer) -> None:
    """The Fxiaoke API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "vendor_error.json")
    with pytest.raises(SourceError) as caught:
        connector(server).pull()
    assert (caught.value.code, caught.value.vendor_message, caught.value.endpoint) == (
        "10003", "没有权限访问该部门", "/cgi/user/list",
    )  # fmt: skip
    for secret in (*CREDS.values(), "fx-token-1"):
        assert secret not in str(caught.value)
