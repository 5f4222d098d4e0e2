"""The generic HTTP connector, configured only by policies/sync/kingdee.yaml and u8cloud.yaml.

The Kingdee and U8 Cloud APIs are replaced by recorded fixtures (tests/fixtures/sync/kingdee, u8cloud),
written by hand from the documented field lists, served by a real local HTTP server, because no real
Kingdee or U8 Cloud can run here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.sync.canonical import Snapshot, SourceAccount, SourceDepartment
from app.sync.connectors import SourceError
from app.sync.connectors.generic import GenericHttpConnector
from tests.support.fixture_server import FIXTURES, FixtureServer, Sleeps, Ticker, serve_fixtures  # noqa: F401

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)  # 1740816000
QUERY = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc"
KINGDEE = {
    "client_id": "kd-client-01",
    "client_secret": "kd-client-secret-0001",
    "app_key": "app-key-0001",
    "app_secret": "kd-app-secret-0001",
    "acct_id": "kd-acct-01",
    "username": "accessgov",
}
# Golden vectors, computed with openssl (`openssl dgst -sha256 -hmac <secret>`, hex, then base64) over the
# documented strings for timestamp 1740816000 and nonce "nonce-0001"; not with the code under test.
API_SIGNATURE = "ZTc5NmU4OWY0ZGYwMjk1ZmE5YTE1MmFmMjJlM2EwOTFiOGZhYWJjMzczNmE5YzYyNDZmNzNhZTc5ODYyZDk4Yg=="
KD_SIGNATURE = "ODI5N2YxOTY5MTA3OGM1ZWQ4ZjVkMjEzODNlMDE3NGVlNjFkOGNiMDhmYWVjMzliZjJkMjc3M2E3ZWU3NDA3Zg=="
U8 = {"usercode": "accessgov", "password": "u8-pass-0001", "system": "ACCESSGOV"}


def kingdee(server: FixtureServer) -> GenericHttpConnector:
    return GenericHttpConnector(mapping="kingdee", base_url=server.url, credentials=KINGDEE, source="erp",
                                page_size=2, nonce=lambda: "nonce-0001", sleep=Sleeps(), clock=lambda: NOW,
                                monotonic=Ticker())  # fmt: skip


def u8(server: FixtureServer) -> GenericHttpConnector:
    return GenericHttpConnector(mapping="u8cloud", base_url=server.url, credentials=U8, source="u8",
                                sleep=Sleeps(), clock=lambda: NOW, monotonic=Ticker())  # fmt: skip


def test_kingdee_rows_are_zipped_with_the_field_keys(server: FixtureServer) -> None:
    """The Kingdee API is replaced by recorded fixtures because no real one can run here."""
    server.load(FIXTURES / "kingdee" / "happy")
    snap = kingdee(server).pull()
    assert snap == Snapshot(
        source="erp",
        departments=(
            SourceDepartment("100001", "总经办"),
            SourceDepartment("100002", "销售部 🚀", parent_key="100001"),
            SourceDepartment("100003", "停用部门 'old'", parent_key="100002", status="disabled"),
        ),
        accounts=(SourceAccount("16394", "Administrator"), SourceAccount("100501", '张三 "ZS"', status="disabled")),
        taken_at=NOW,
        complete=frozenset({"departments", "accounts"}),
    )
    assert snap.accounts[1].raw == {"FUserID": 100501, "FName": '张三 "ZS"', "FForbidStatus": "B"}
    assert server.unmatched() == []


def test_kingdee_paging_and_signed_headers(server: FixtureServer) -> None:
    """The Kingdee API is replaced by recorded fixtures because no real one can run here.

    StartRow/Limit until a short or empty page; every request carries the golden-vector signature.
    """
    server.load(FIXTURES / "kingdee" / "happy")
    kingdee(server).pull()
    assert [
        (r.json["data"]["FormId"], r.json["data"]["StartRow"], r.json["data"]["Limit"]) for r in server.requests
    ] == [
        ("BD_Department", 0, 2),
        ("BD_Department", 2, 2),  # 1 row: short page, stop
        ("SEC_User", 0, 2),
        ("SEC_User", 2, 2),  # empty page, stop
    ]
    for req in server.requests:
        assert req.path == QUERY
        assert {k: v for k, v in req.headers.items() if k.startswith("x-")} == {
            "x-api-clientid": "kd-client-01",
            "x-api-auth-version": "2.0",
            "x-api-timestamp": "1740816000",
            "x-api-nonce": "nonce-0001",
            "x-api-signheaders": "x-api-timestamp,x-api-nonce",
            "x-api-signature": API_SIGNATURE,
            "x-kd-appkey": "app-key-0001",
            "x-kd-appdata": "a2QtYWNjdC0wMSxhY2Nlc3Nnb3YsMjA1Miww",  # base64("kd-acct-01,accessgov,2052,0")
            "x-kd-signature": KD_SIGNATURE,
        }


def test_kingdee_error_inside_the_rows_is_a_source_error(server: FixtureServer) -> None:
    """The Kingdee API is replaced by recorded fixtures because no real one can run here."""
    server.load(FIXTURES / "kingdee" / "happy", FIXTURES / "kingdee" / "errors" / "session_lost.json")
    with pytest.raises(SourceError) as caught:
        kingdee(server).pull()
    assert (caught.value.code, caught.value.vendor_message, caught.value.page) == ("500", "签名验证失败", 2)
    assert "kd-client-secret-0001" not in str(caught.value)


def test_kingdee_row_with_the_wrong_width_is_a_source_error(server: FixtureServer) -> None:
    """The Kingdee API is replaced by recorded fixtures because no real one can run here."""
    server.load(FIXTURES / "kingdee" / "happy", FIXTURES / "kingdee" / "errors" / "short_row.json")
    with pytest.raises(SourceError, match=r"does not have the 5 columns"):
        kingdee(server).pull()


def test_u8cloud_json_in_a_string_and_md5_password_header(server: FixtureServer) -> None:
    """The U8 Cloud API is replaced by recorded fixtures because no real one can run here."""
    server.load(FIXTURES / "u8cloud" / "happy")
    snap = u8(server).pull()
    assert snap == Snapshot(
        source="u8",
        departments=(
            SourceDepartment("1001A1", "总部"),
            SourceDepartment("1001A2", '财务部 "FIN"', parent_key="1001A1"),
        ),
        accounts=(
            SourceAccount("0001P1", "刘洋 😊", employee_no="P001", mobile="+8618600001234", email="liuyang@u8.example",
                          department_keys=("1001A2",), primary_department="1001A2"),
            SourceAccount("0001P2", "陈静", status="disabled", employee_no="P002", department_keys=("1001A1",),
                          primary_department="1001A1"),
        ),
        taken_at=NOW,
        complete=frozenset({"departments", "accounts"}),
    )  # fmt: skip
    assert [r.path for r in server.requests] == ["/u8cloud/api/uapbd/bddept/query", "/u8cloud/api/uapbd/bdpsn/query"]
    # md5("u8-pass-0001"), computed with md5sum: the plain password never goes out.
    assert {r.headers["password"] for r in server.requests} == {"f3fa789c2c05a9baa543d39ff7285c9f"}
    assert all(b"u8-pass-0001" not in r.body for r in server.requests)


def test_u8cloud_failure_status_is_a_source_error(server: FixtureServer) -> None:
    """The U8 Cloud API is replaced by recorded fixtures because no real one can run here."""
    server.load(FIXTURES / "u8cloud" / "happy", FIXTURES / "u8cloud" / "errors" / "login_failed.json")
    with pytest.raises(SourceError) as caught:
        u8(server).pull()
    assert (caught.value.code, caught.value.vendor_message) == ("fail", "用户名或密码错误")
    assert "f3fa789c2c05a9baa543d39ff7285c9f" not in str(caught.value)


def test_u8cloud_broken_inner_json_is_a_source_error(server: FixtureServer) -> None:
    """The U8 Cloud API is replaced by recorded fixtures because no real one can run here."""
    server.load(FIXTURES / "u8cloud" / "happy", FIXTURES / "u8cloud" / "errors" / "bad_inner_json.json")
    with pytest.raises(SourceError, match=r"'data' is not a JSON document.*bdpsn/query"):
        u8(server).pull()


def test_a_missing_credential_is_refused_before_any_request(server: FixtureServer) -> None:
    """No vendor is involved: the connector refuses to start."""
    with pytest.raises(SourceError, match="missing credentials: app_secret"):
        GenericHttpConnector(mapping="kingdee", base_url=server.url,
                             credentials={k: v for k, v in KINGDEE.items() if k != "app_secret"})  # fmt: skip
    assert server.requests == []
