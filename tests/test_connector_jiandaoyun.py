"""Jiandaoyun connector against recorded fixtures.

The Jiandaoyun API is replaced by recorded fixtures (tests/fixtures/sync/jiandaoyun), written by hand
from the documented field lists, served by a real local HTTP server, because no real Jiandaoyun can
run here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.sync.canonical import Snapshot, SourceAccount, SourceAssignment, SourceDepartment, SourceRole
from app.sync.connectors import SourceError
from app.sync.connectors.jiandaoyun import JiandaoyunConnector
from tests.support.fixture_server import FIXTURES, FixtureServer, Sleeps, serve_fixtures  # noqa: F401

KEY = "jdy-test-key-0001"
NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
HERE = FIXTURES / "jiandaoyun"


def connector(server: FixtureServer, sleeps: Sleeps | None = None) -> JiandaoyunConnector:
    return JiandaoyunConnector(
        base_url=server.url,
        credentials={"api_key": KEY},
        source="crm",
        page_size=2,
        sleep=sleeps or Sleeps(),
        clock=lambda: NOW,
    )


EXPECTED = Snapshot(
    source="crm",
    departments=(
        SourceDepartment("1", "演示科技有限公司"),
        SourceDepartment("2", '销售中心 "East" 🚀', parent_key="1", order=10),
        SourceDepartment("3", "华东大区", parent_key="2", order=20),
        SourceDepartment("7", "已撤销项目组", parent_key="2", status="disabled", order=30),
    ),
    accounts=(
        SourceAccount("zhangwei01", "张伟", login="zhangwei01", department_keys=("2", "3")),
        SourceAccount("li.na", "李娜 'Nana' 😀", login="li.na", department_keys=("3",)),
        SourceAccount("wangfang", "王芳", status="disabled", login="wangfang"),
    ),
    roles=(SourceRole("11", "销售经理"), SourceRole("12", "大区总监"), SourceRole("13", "CRM管理员")),
    assignments=(
        SourceAssignment("zhangwei01", "11", "subtree", ("2",)),
        SourceAssignment("li.na", "11"),
        SourceAssignment("li.na", "12", "listed", ("3", "7")),
    ),
    taken_at=NOW,
)


def test_pull_makes_the_canonical_snapshot_with_scoped_role_members(server: FixtureServer) -> None:
    """The Jiandaoyun API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy")
    snap = connector(server).pull()
    assert snap == EXPECTED
    assert snap.accounts[1].raw["avatar"] == "https://example.invalid/a.png"  # the untouched record is kept
    assert server.unmatched() == []


def test_outbound_requests_paging_and_auth(server: FixtureServer) -> None:
    """The Jiandaoyun API is replaced by recorded fixtures because no real one can run here.

    Roles page with skip/limit until a short page; each role's members until an empty or short page.
    """
    server.load(HERE / "happy")
    connector(server).pull()
    sent = [(r.path, r.json) for r in server.requests]
    assert sent == [
        ("/v6/corp/department/list", {"dept_no": 1, "has_child": True}),
        ("/v5/corp/department/user/list", {"dept_no": 1, "has_child": True}),
        ("/v5/corp/role/list", {"has_internal": True, "has_sync": True, "skip": 0, "limit": 2}),
        ("/v5/corp/role/list", {"has_internal": True, "has_sync": True, "skip": 2, "limit": 2}),  # short: stop
        ("/v5/corp/role/user/list", {"has_manage_range": True, "role_no": 11, "skip": 0, "limit": 2}),
        ("/v5/corp/role/user/list", {"has_manage_range": True, "role_no": 11, "skip": 2, "limit": 2}),  # empty
        ("/v5/corp/role/user/list", {"has_manage_range": True, "role_no": 12, "skip": 0, "limit": 2}),  # short
        ("/v5/corp/role/user/list", {"has_manage_range": True, "role_no": 13, "skip": 0, "limit": 2}),  # empty
    ]
    assert {r.method for r in server.requests} == {"POST"}
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {KEY}"}
    assert {r.headers["content-type"] for r in server.requests} == {"application/json; charset=utf-8"}


def test_rate_limit_code_and_429_are_retried_honouring_retry_after(server: FixtureServer) -> None:
    """The Jiandaoyun API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "rate_limited_then_ok.json")
    sleeps = Sleeps()
    snap = connector(server, sleeps).pull()
    assert snap.departments == (SourceDepartment("1", "演示科技有限公司"),)
    assert sleeps.waits == [1.0, 2.0]  # backoff for 8303, then the 429's Retry-After: 2
    assert [r.path for r in server.requests][:3] == ["/v6/corp/department/list"] * 3


def test_rate_limit_that_does_not_clear_is_a_source_error(server: FixtureServer) -> None:
    """The Jiandaoyun API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "always_rate_limited.json")
    sleeps = Sleeps()
    with pytest.raises(SourceError) as caught:
        connector(server, sleeps).pull()
    assert len(sleeps.waits) == 3
    assert len(server.requests) == 4
    assert caught.value.code == "8303"
    assert "still rate limited after 3 retries" in str(caught.value)
    assert "/v6/corp/department/list" in str(caught.value)


def test_vendor_error_code_is_a_source_error_naming_endpoint(server: FixtureServer) -> None:
    """The Jiandaoyun API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "vendor_error.json")
    with pytest.raises(SourceError) as caught:
        connector(server).pull()
    err = caught.value
    assert (err.system, err.code, err.vendor_message, err.endpoint) == (
        "jiandaoyun",
        "1010",
        "成员不存在",
        "/v5/corp/department/user/list",
    )
    assert KEY not in str(err)


def test_truncated_json_is_a_source_error_naming_the_page(server: FixtureServer) -> None:
    """The Jiandaoyun API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "truncated_body.json")
    with pytest.raises(SourceError, match=r"not valid JSON.*endpoint /v5/corp/role/list, page 2"):
        connector(server).pull()
