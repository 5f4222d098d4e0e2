"""DingTalk connector against recorded fixtures.

The DingTalk API is replaced by recorded fixtures (tests/fixtures/sync/dingtalk), written by hand from
the documented field lists, served by a real local HTTP server, because no real DingTalk can run here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.sync.canonical import Snapshot, SourceAccount, SourceAssignment, SourceDepartment, SourceRole
from app.sync.connectors import SourceError
from app.sync.connectors.dingtalk import DingtalkConnector
from tests.support.fixture_server import FIXTURES, FixtureServer, Sleeps, Ticker, serve_fixtures  # noqa: F401

NOW = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
HERE = FIXTURES / "dingtalk"


def connector(server: FixtureServer, sleeps: Sleeps | None = None) -> DingtalkConnector:
    return DingtalkConnector(
        base_url=server.url,
        credentials={"appkey": "ding-test-app", "appsecret": "ding-secret-0001"},
        source="org",
        page_size=2,
        sleep=sleeps or Sleeps(),
        clock=lambda: NOW,
        monotonic=Ticker(),
    )


def test_pull_walks_the_tree_and_reads_scoped_role_members(server: FixtureServer) -> None:
    """The DingTalk API is replaced by recorded fixtures because no real one can run here.

    A person listed in two departments is one account; manageScopes become a listed scope.
    """
    server.load(HERE / "happy")
    snap = connector(server).pull()
    assert snap == Snapshot(
        source="org",
        departments=(
            SourceDepartment("1", "演示科技有限公司"),
            SourceDepartment("100", "销售中心", parent_key="1"),
            SourceDepartment("200", "财务中心 & 审计", parent_key="1"),
            SourceDepartment("101", "华东大区", parent_key="100"),
        ),
        accounts=(
            SourceAccount("manager4521", "周总", login="manager4521", employee_no="E0001", mobile="+8613600136000",
                          department_keys=("1",), position="总经理"),
            SourceAccount("sun01", "孙丽", login="sun01", employee_no="E0102", mobile="+8613700137000",
                          department_keys=("100", "101"), position="销售经理", manager_key="manager4521"),
            SourceAccount("qian02", '钱进 "Jim"', login="qian02", employee_no="E0103", email="qian02@corp.example",
                          department_keys=("100",), position="销售"),
            SourceAccount("wu03", "吴敏", login="wu03", department_keys=("100",)),
        ),
        roles=(SourceRole("10", "主管理员"), SourceRole("11", "子管理员"), SourceRole("20", "财务")),
        assignments=(
            SourceAssignment("manager4521", "10"),
            SourceAssignment("sun01", "11", "listed", ("100", "101")),
        ),
        taken_at=NOW,
    )  # fmt: skip
    assert server.unmatched() == []


def test_outbound_requests(server: FixtureServer) -> None:
    """The DingTalk API is replaced by recorded fixtures because no real one can run here.

    Departments one level at a time; users per department by cursor until has_more is false.
    """
    server.load(HERE / "happy")
    connector(server).pull()
    assert server.requests[0].query == {"appkey": "ding-test-app", "appsecret": "ding-secret-0001"}
    assert all(r.query == {"access_token": "dt-token-1"} for r in server.requests[1:])
    assert [(r.path, r.json) for r in server.requests[1:]] == [
        ("/topapi/v2/department/get", {"dept_id": 1}),
        ("/topapi/v2/department/listsub", {"dept_id": 1}),
        ("/topapi/v2/department/listsub", {"dept_id": 100}),
        ("/topapi/v2/department/listsub", {"dept_id": 200}),
        ("/topapi/v2/department/listsub", {"dept_id": 101}),
        ("/topapi/v2/user/list", {"dept_id": 1, "size": 2, "cursor": 0}),
        ("/topapi/v2/user/list", {"dept_id": 100, "size": 2, "cursor": 0}),
        ("/topapi/v2/user/list", {"dept_id": 100, "size": 2, "cursor": 2}),
        ("/topapi/v2/user/list", {"dept_id": 200, "size": 2, "cursor": 0}),
        ("/topapi/v2/user/list", {"dept_id": 101, "size": 2, "cursor": 0}),
        ("/topapi/role/list", {"offset": 0, "size": 2}),
        ("/topapi/role/list", {"offset": 2, "size": 2}),  # a full page of groups: ask again, empty: stop
        ("/topapi/role/simplelist", {"role_id": 10, "offset": 0, "size": 2}),
        ("/topapi/role/simplelist", {"role_id": 11, "offset": 0, "size": 2}),
        ("/topapi/role/simplelist", {"role_id": 20, "offset": 0, "size": 2}),
    ]


def test_rate_limit_waits_for_the_retry_after_date_then_the_vendor_code(server: FixtureServer) -> None:
    """The DingTalk API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "qps_then_ok.json")
    sleeps = Sleeps()
    snap = connector(server, sleeps).pull()
    assert sleeps.waits == [5.0, 2.0]  # Retry-After as an HTTP date (5 s after now), then backoff 1 * 2**1
    assert snap.roles == ()


def test_vendor_error_on_a_later_page_names_it(server: FixtureServer) -> None:
    """The DingTalk API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "vendor_error.json")
    with pytest.raises(SourceError) as caught:
        connector(server).pull()
    assert str(caught.value) == (
        "dingtalk: the source answered with an error (vendor code 60003: 部门不存在) "
        "[endpoint /topapi/v2/user/list, page 2]"
    )
