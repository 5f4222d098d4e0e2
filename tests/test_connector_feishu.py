"""Feishu connector against recorded fixtures.

The Feishu API is replaced by recorded fixtures (tests/fixtures/sync/feishu), written by hand from the
documented field lists, served by a real local HTTP server, because no real Feishu can run here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.sync.canonical import Snapshot, SourceAccount, SourceAssignment, SourceDepartment, SourceRole
from app.sync.connectors import SourceError
from app.sync.connectors.feishu import FeishuConnector
from tests.support.fixture_server import FIXTURES, FixtureServer, Sleeps, Ticker, serve_fixtures  # noqa: F401

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
HERE = FIXTURES / "feishu"


def connector(server: FixtureServer, roles: bool = True) -> FeishuConnector:
    return FeishuConnector(
        base_url=server.url,
        credentials={"app_id": "cli_test_app", "app_secret": "feishu-secret-0001"},
        functional_roles={"fr-sales-admin": "销售管理员"} if roles else None,
        page_size=2,
        sleep=Sleeps(),
        clock=lambda: NOW,
        monotonic=Ticker(),
    )


def test_pull_maps_status_objects_and_functional_role_scopes(server: FixtureServer) -> None:
    """The Feishu API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy")
    snap = connector(server).pull()
    assert snap == Snapshot(
        source="feishu",
        departments=(
            SourceDepartment("0", "(根部门)"),
            SourceDepartment("D1", "销售中心", parent_key="0", order=10),
            SourceDepartment("D2", "华东大区", parent_key="D1", order=20),
            SourceDepartment("D3", "已删除部门", parent_key="D1", status="disabled", order=30),
        ),
        accounts=(
            SourceAccount("ceo01", "陈总", login="ceo01", mobile="+8613500135000", email="ceo@demo.example",
                          department_keys=("0",), position="CEO"),
            SourceAccount("s001", "林 '小' 芳 ✨", status="disabled", login="s001", employee_no="E2001",
                          department_keys=("D1", "D3"), manager_key="ceo01"),
            SourceAccount("s002", "黄磊", login="s002", department_keys=("D1",), position="销售"),
            SourceAccount("s003", "郑爽", status="left", login="s003", department_keys=("D1",)),
        ),
        roles=(SourceRole("fr-sales-admin", "销售管理员"),),
        assignments=(
            SourceAssignment("ceo01", "fr-sales-admin", "company"),
            SourceAssignment("s002", "fr-sales-admin", "listed", ("D1", "D2")),
        ),
        taken_at=NOW,
    )  # fmt: skip
    assert server.unmatched() == []


def test_outbound_requests_bearer_and_page_tokens(server: FixtureServer) -> None:
    """The Feishu API is replaced by recorded fixtures because no real one can run here.

    Paging stops when has_more is false; a department whose answer has no items is an empty page.
    """
    server.load(HERE / "happy")
    snap = connector(server, roles=False).pull()
    assert snap.complete == frozenset({"departments", "accounts"})
    token_call, *calls = server.requests
    assert token_call.json == {"app_id": "cli_test_app", "app_secret": "feishu-secret-0001"}
    assert {r.headers["authorization"] for r in calls} == {"Bearer t-feishu-1"}
    assert [(r.path.rsplit("/", 2)[-2:], r.query.get("department_id"), r.query.get("page_token")) for r in calls] == [
        (["departments", "0"], None, None),
        (["0", "children"], None, None),
        (["0", "children"], None, "pt-2"),
        (["users", "find_by_department"], "0", None),
        (["users", "find_by_department"], "D1", None),
        (["users", "find_by_department"], "D1", "u-pt"),
        (["users", "find_by_department"], "D2", None),
        (["users", "find_by_department"], "D3", None),
    ]


def test_invalid_token_is_refreshed_once(server: FixtureServer) -> None:
    """The Feishu API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "token_expired.json")
    snap = connector(server).pull()
    assert len(snap.accounts) == 4
    auth = [(r.path.rsplit("/", 1)[-1], r.headers.get("authorization")) for r in server.requests[:4]]
    assert auth == [("internal", None), ("0", "Bearer t-feishu-old"), ("internal", None), ("0", "Bearer t-feishu-1")]


def test_truncated_body_is_a_source_error(server: FixtureServer) -> None:
    """The Feishu API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "truncated.json")
    with pytest.raises(SourceError, match=r"^feishu: the body is not valid JSON .*find_by_department, page 2\]$"):
        connector(server).pull()


def test_has_more_without_a_page_token_is_a_source_error(server: FixtureServer) -> None:
    """The Feishu API is replaced by recorded fixtures because no real one can run here."""
    server.load(HERE / "happy", HERE / "errors" / "has_more_without_token.json")
    with pytest.raises(SourceError, match="has_more is true but there is no next cursor"):
        connector(server).pull()
