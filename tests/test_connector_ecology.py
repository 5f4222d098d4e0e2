"""e-cology HRM connector against recorded fixtures.

The e-cology API is replaced by recorded fixtures (tests/fixtures/sync/ecology), written by hand from
the documented field lists, served by a real local HTTP server, because no real e-cology can run here.
The RSA handshake's server key is made per test run and put into the regist fixture.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.sync.canonical import Snapshot, SourceAccount, SourceAssignment, SourceDepartment, SourceRole
from app.sync.connectors import SourceError
from app.sync.connectors.ecology import EcologyConnector
from tests.support.fixture_server import FIXTURES, FixtureServer, Sleeps, Ticker, serve_fixtures  # noqa: F401

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
HERE = FIXTURES / "ecology"
RSA_CREDS = {"appid": "ec-test-app", "userid": "1", "cpk": "CLIENT-PUBLIC-KEY-B64"}
LISTS = "/api/hrm/resful/"


@pytest.fixture(scope="module")
def server_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def ec_server(server: FixtureServer, server_key: rsa.RSAPrivateKey) -> FixtureServer:
    spk = server_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    server.load(HERE / "happy", HERE / "handshake", variables={"spk": base64.b64encode(spk).decode()})
    return server


def decrypt(key: rsa.RSAPrivateKey, b64: str) -> str:
    return key.decrypt(base64.b64decode(b64), padding.PKCS1v15()).decode()


def connector(server: FixtureServer, *, auth: str = "rsa", roles: bool = True, creds: dict[str, str] | None = None,
              ticker: Ticker | None = None) -> EcologyConnector:  # fmt: skip
    return EcologyConnector(
        auth=auth,
        role_members_path="/api/custom/hrm/roleMembers" if roles else None,
        base_url=server.url,
        credentials=creds or RSA_CREDS,
        source="oa",
        page_size=2,
        sleep=Sleeps(),
        clock=lambda: NOW,
        monotonic=ticker or Ticker(),
    )


EXPECTED = Snapshot(
    source="oa",
    departments=(
        SourceDepartment("sub:1", "演示科技总部", order=1),
        SourceDepartment("sub:2", "上海分公司", parent_key="sub:1", order=2),
        SourceDepartment("10", "销售部", parent_key="sub:1", order=1),
        SourceDepartment("11", "华东销售组", parent_key="10", order=2),
        SourceDepartment("20", '上海行政部 "老"', parent_key="sub:2", status="disabled"),
    ),
    accounts=(
        SourceAccount("101", "张伟", login="zhangwei", employee_no="E101", mobile="+8613800138000",
                      email="zhangwei@demo.example", department_keys=("10",), primary_department="10",
                      position="销售经理"),
        SourceAccount("102", "张伟（次账号）", login="zhangwei_sub", department_keys=("11",), primary_department="11",
                      position="销售经理", manager_key="101"),
        SourceAccount("103", "离职员工", status="left", department_keys=("20",), primary_department="20",
                      position="行政专员"),
    ),
    roles=(SourceRole("7", "部门经理"), SourceRole("8", "分部财务"), SourceRole("9", "集团管理员")),
    assignments=(
        SourceAssignment("101", "7", "department", ("10",)),
        SourceAssignment("101", "8", "subtree", ("sub:1",)),
        SourceAssignment("102", "9", "company"),
    ),
    taken_at=NOW,
)  # fmt: skip


def test_pull_with_the_rsa_handshake(ec_server: FixtureServer, server_key: rsa.RSAPrivateKey) -> None:
    """The e-cology API is replaced by recorded fixtures because no real one can run here.

    regist -> applytoken (secret = RSA(spk, secrit)) -> every call with appid, token and RSA(spk, userid).
    """
    snap = connector(ec_server).pull()
    assert snap == EXPECTED
    assert snap.accounts[1].raw["accounttype"] == "1"  # the sub-account flag stays for the audit
    regist, apply, *calls = ec_server.requests
    assert (regist.path, regist.headers["appid"], regist.headers["cpk"]) == (
        "/api/ec/dev/auth/regist", "ec-test-app", "CLIENT-PUBLIC-KEY-B64",
    )  # fmt: skip
    assert apply.path == "/api/ec/dev/auth/applytoken"
    assert (apply.headers["appid"], apply.headers["time"]) == ("ec-test-app", "3600")
    assert decrypt(server_key, apply.headers["secret"]) == "ec-secrit-0001"
    for call in calls:
        assert (call.headers["appid"], call.headers["token"]) == ("ec-test-app", "ec-token-1")
        assert decrypt(server_key, call.headers["userid"]) == "1"
        assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    pages = [(c.path.removeprefix(LISTS), c.form_json("params")) for c in calls]
    assert pages == [
        ("getHrmsubcompanyWithPage", {"curpage": 1, "pagesize": 2}),
        ("getHrmsubcompanyWithPage", {"curpage": 2, "pagesize": 2}),  # full first page: ask again; empty: stop
        ("getHrmdepartmentWithPage", {"curpage": 1, "pagesize": 2}),
        ("getHrmdepartmentWithPage", {"curpage": 2, "pagesize": 2}),  # short: stop
        ("getJobtitleInfoWithPage", {"curpage": 1, "pagesize": 2}),
        ("getJobtitleInfoWithPage", {"curpage": 2, "pagesize": 2}),
        ("getHrmUserInfoWithPage", {"curpage": 1, "pagesize": 2}),
        ("getHrmUserInfoWithPage", {"curpage": 2, "pagesize": 2}),
        ("/api/custom/hrm/roleMembers", {"curpage": 1, "pagesize": 2}),
        ("/api/custom/hrm/roleMembers", {"curpage": 2, "pagesize": 2}),
    ]


def test_stored_registration_skips_regist(ec_server: FixtureServer, server_key: rsa.RSAPrivateKey) -> None:
    """The e-cology API is replaced by recorded fixtures because no real one can run here."""
    spk = base64.b64encode(server_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()  # fmt: skip
    conn = connector(ec_server, roles=False, creds={"appid": "ec-test-app", "userid": "1", "spk": spk,
                                                     "secrit": "ec-secrit-0001"})  # fmt: skip
    assert conn.pull().departments == EXPECTED.departments
    assert [r.path for r in ec_server.requests][:2] == [
        "/api/ec/dev/auth/applytoken",
        LISTS + "getHrmsubcompanyWithPage",
    ]


def test_md5_key_and_timestamp_scheme(ec_server: FixtureServer) -> None:
    """The e-cology API is replaced by recorded fixtures because no real one can run here.

    token = {"key": UPPER(MD5(secret_key + ts)), "ts": ts}, ts in milliseconds.
    """
    conn = connector(ec_server, auth="md5", roles=False, creds={"secret_key": "ec-md5-secret"})
    assert conn.pull().accounts == EXPECTED.accounts
    # Golden vector: `printf 'ec-md5-secret1740816000000' | md5sum`, upper-cased.
    expected = {"key": "C57B509F87A5E555969D0E82EE661BFF", "ts": "1740816000000"}
    assert len(ec_server.requests) == 8  # four lists, two pages each; no handshake
    assert all(json.loads(r.headers["token"]) == expected for r in ec_server.requests)
    assert not any("regist" in r.path or "applytoken" in r.path for r in ec_server.requests)


def test_incremental_pull_filters_by_modified_in_china_time(ec_server: FixtureServer) -> None:
    """The e-cology API is replaced by recorded fixtures because no real one can run here."""
    snap = connector(ec_server, roles=False).pull(since=datetime(2025, 2, 1, 0, 0, tzinfo=UTC))
    assert [a.key for a in snap.accounts] == ["103"]
    assert snap.complete == frozenset({"departments"})
    users = [r.form_json("params") for r in ec_server.to(LISTS + "getHrmUserInfoWithPage")]
    assert users == [{"curpage": 1, "pagesize": 2, "modified": "2025-02-01 08:00:00"}]


def test_token_refused_with_401_is_applied_for_again(ec_server: FixtureServer) -> None:
    """The e-cology API is replaced by recorded fixtures because no real one can run here."""
    ec_server.load(HERE / "errors" / "token_rejected_once.json")
    assert connector(ec_server).pull() == EXPECTED
    paths = [r.path.rsplit("/", 1)[-1] for r in ec_server.requests][:5]
    assert paths == ["regist", "applytoken", "getHrmsubcompanyWithPage", "applytoken", "getHrmsubcompanyWithPage"]
    assert [r.headers.get("token") for r in ec_server.requests][2:5] == ["ec-token-0", None, "ec-token-1"]


def test_code_other_than_1_is_a_source_error(ec_server: FixtureServer) -> None:
    """The e-cology API is replaced by recorded fixtures because no real one can run here."""
    ec_server.load(HERE / "errors" / "vendor_error.json")
    with pytest.raises(SourceError) as caught:
        connector(ec_server).pull()
    assert (caught.value.code, caught.value.vendor_message, caught.value.page) == ("0", "查询失败：参数错误", 2)
    assert caught.value.endpoint == LISTS + "getHrmUserInfoWithPage"
    assert "ec-token-1" not in str(caught.value)
    assert "ec-secrit-0001" not in str(caught.value)


def test_regist_refused_is_a_source_error(ec_server: FixtureServer) -> None:
    """The e-cology API is replaced by recorded fixtures because no real one can run here."""
    ec_server.load(HERE / "errors" / "regist_refused.json")
    with pytest.raises(SourceError) as caught:
        connector(ec_server).pull()
    assert (caught.value.code, caught.value.vendor_message) == ("-1", "appid未注册")
    assert len(ec_server.requests) == 1
