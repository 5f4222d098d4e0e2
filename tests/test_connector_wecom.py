"""WeCom connector against recorded fixtures.

The WeCom API is replaced by recorded fixtures (tests/fixtures/sync/wecom), written by hand from the
documented field lists, served by a real local HTTP server, because no real WeCom can run here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.sync.canonical import Snapshot, SourceAccount, SourceAssignment, SourceDepartment, SourceRole
from app.sync.connectors import SourceError
from app.sync.connectors.wecom import WecomConnector
from tests.support.fixture_server import FIXTURES, FixtureServer, Sleeps, Ticker, serve_fixtures  # noqa: F401

SECRET = "wx-contacts-secret-0001"
NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
HERE = FIXTURES / "wecom"


def connector(server: FixtureServer, *, tags: bool = True, ticker: Ticker | None = None) -> WecomConnector:
    return WecomConnector(
        base_url=server.url,
        credentials={"corpid": "ww-test-corp", "corpsecret": SECRET},
        page_size=2,
        tags_as_roles=tags,
        sleep=Sleeps(),
        clock=lambda: NOW,
        monotonic=ticker or Ticker(),
    )


DEPARTMENTS = (
    SourceDepartment("1", "演示科技有限公司", order=100000000),
    SourceDepartment("2", "销售中心", parent_key="1", order=99999000),
    SourceDepartment("3", '华东大区 "一部"', parent_key="2", order=99998000),
)
ACCOUNTS = (
    SourceAccount("ZhangWei", "张伟", login="ZhangWei", mobile="+8613800138000", email="zhangwei@demo.example",
                  department_keys=("2", "3"), primary_department="2", position="销售总监"),
    SourceAccount("LiNa", "李娜 🌸", status="disabled", login="LiNa", mobile="+8613900139000", department_keys=("3",),
                  primary_department="3", position='客户经理 "A"', manager_key="ZhangWei"),
    SourceAccount("WangFang", "王芳", status="left", login="WangFang", department_keys=("1",), primary_department="1"),
    SourceAccount("ZhaoLei", "赵磊", login="ZhaoLei", mobile="+85261234567", department_keys=("2",),
                  primary_department="2"),
)  # fmt: skip


def test_pull_with_tags_as_roles(server: FixtureServer) -> None:
    """The WeCom API is replaced by recorded fixtures because no real one can run here.

    A tag given to department 3 reaches every account in it; tag members keep their own assignment.
    """
    server.load(HERE / "happy")
    snap = connector(server).pull()
    assert snap == Snapshot(
        source="wecom",
        departments=DEPARTMENTS,
        accounts=ACCOUNTS,
        roles=(SourceRole("1", "CRM管理员"), SourceRole("2", "华东销售")),
        assignments=(
            SourceAssignment("WangFang", "1"),
            SourceAssignment("ZhaoLei", "2"),
            SourceAssignment("ZhangWei", "2"),
            SourceAssignment("LiNa", "2"),
        ),
        taken_at=NOW,
    )
    assert server.unmatched() == []


def test_outbound_requests_token_in_query_and_cursor_paging(server: FixtureServer) -> None:
    """The WeCom API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy")
    snap = connector(server, tags=False).pull()
    assert snap.complete == frozenset({"departments", "accounts"})
    assert (snap.roles, snap.assignments) == ((), ())
    assert [(r.method, r.path, r.query, r.json) for r in server.requests] == [
        ("GET", "/cgi-bin/gettoken", {"corpid": "ww-test-corp", "corpsecret": SECRET}, None),
        ("GET", "/cgi-bin/department/list", {"access_token": "wx-token-1"}, None),
        ("POST", "/cgi-bin/user/list_id", {"access_token": "wx-token-1"}, {"limit": 2}),
        ("POST", "/cgi-bin/user/list_id", {"access_token": "wx-token-1"}, {"limit": 2, "cursor": "cur-2"}),
        ("POST", "/cgi-bin/user/list_id", {"access_token": "wx-token-1"}, {"limit": 2, "cursor": "cur-3"}),
        ("GET", "/cgi-bin/user/get", {"access_token": "wx-token-1", "userid": "ZhangWei"}, None),
        ("GET", "/cgi-bin/user/get", {"access_token": "wx-token-1", "userid": "LiNa"}, None),
        ("GET", "/cgi-bin/user/get", {"access_token": "wx-token-1", "userid": "WangFang"}, None),
        ("GET", "/cgi-bin/user/get", {"access_token": "wx-token-1", "userid": "ZhaoLei"}, None),
    ]


def test_token_is_cached_for_its_lifetime_then_fetched_again(server: FixtureServer) -> None:
    """The WeCom API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy")
    ticker = Ticker()
    conn = connector(server, tags=False, ticker=ticker)
    conn.pull()
    conn.pull()
    assert [r.path for r in server.requests].count("/cgi-bin/gettoken") == 1
    ticker.now += 7200 - 300  # expires_in less the safety margin
    conn.pull()
    assert [r.path for r in server.requests].count("/cgi-bin/gettoken") == 2


def test_expired_token_is_refreshed_once_and_the_call_retried(server: FixtureServer) -> None:
    """The WeCom API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "token_expired.json")
    snap = connector(server, tags=False).pull()
    assert snap.departments == DEPARTMENTS
    assert [(r.path, r.query.get("access_token")) for r in server.requests[:4]] == [
        ("/cgi-bin/gettoken", None),
        ("/cgi-bin/department/list", "wx-token-0"),  # 42001
        ("/cgi-bin/gettoken", None),
        ("/cgi-bin/department/list", "wx-token-1"),
    ]


def test_token_rejected_after_refresh_is_a_source_error(server: FixtureServer) -> None:
    """The WeCom API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "token_always_rejected.json")
    with pytest.raises(SourceError) as caught:
        connector(server).pull()
    assert caught.value.code == "40014"
    assert [r.path for r in server.requests] == ["/cgi-bin/gettoken", "/cgi-bin/department/list"] * 2
    assert "wx-token-1" not in str(caught.value)


def test_vendor_error_never_shows_the_secret(server: FixtureServer) -> None:
    """The WeCom API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "bad_secret.json")
    with pytest.raises(SourceError) as caught:
        connector(server).pull()
    assert caught.value.code == "40001"
    assert SECRET not in str(caught.value)
    assert SECRET not in (caught.value.vendor_message or "")
    assert "corpsecret *** is wrong" in str(caught.value)


def test_a_cursor_that_comes_back_is_a_source_error(server: FixtureServer) -> None:
    """The WeCom API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "cursor_loops.json")
    with pytest.raises(SourceError, match=r"cursor 'cur-2' came back.*/cgi-bin/user/list_id, page 3"):
        connector(server).pull()


def test_vendor_rate_limit_code_is_retried(server: FixtureServer) -> None:
    """The WeCom API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "freq_limit.json")
    snap = connector(server).pull()
    assert (snap.roles, snap.assignments) == ((), ())
    assert [r.path for r in server.requests].count("/cgi-bin/tag/list") == 2
