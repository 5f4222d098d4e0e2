"""The connector machinery shared by every system: mappings, transforms, HTTP failures, boundaries.

Where HTTP is involved the vendor API is replaced by recorded fixtures on a real local HTTP server,
because no real vendor API can run here.
"""

from __future__ import annotations

import ast
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from urllib.error import HTTPError

import pytest

from app.sync.connectors import CONNECTORS, SourceError
from app.sync.connectors.auth import kingdee_signature
from app.sync.connectors.jiandaoyun import JiandaoyunConnector
from app.sync.connectors.mapping import (
    DEFAULT_MAPPING_DIR,
    MappingError,
    SystemMapping,
    load_mapping,
    normalise_mobile,
    to_datetime,
)
from tests.support.fixture_server import FixtureServer, Sleeps, serve_fixtures  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("0086 13800138000", "+8613800138000"),
        ("(+86)13800138000", "+8613800138000"),
        (13800138000, "+8613800138000"),
        ("+852 6123 4567", "+85261234567"),
        ("010-62345678", "01062345678"),  # a landline stays as dialled
        ("", None),
    ],
)
def test_mobile_normalisation(raw: object, expected: str | None) -> None:
    assert normalise_mobile(raw) == expected


def test_mobile_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(MappingError):
        normalise_mobile("call me")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1740816000, datetime(2025, 3, 1, 8, 0, tzinfo=UTC)),
        (1740816000123, datetime(2025, 3, 1, 8, 0, 0, 123000, tzinfo=UTC)),
        ("1740816000", datetime(2025, 3, 1, 8, 0, tzinfo=UTC)),
        ("2025-03-01 16:00:00", datetime(2025, 3, 1, 8, 0, tzinfo=UTC)),  # naive = China time
        ("2025/03/01 16:00", datetime(2025, 3, 1, 8, 0, tzinfo=UTC)),
        ("2025-03-01T08:00:00Z", datetime(2025, 3, 1, 8, 0, tzinfo=UTC)),
        ("2025-03-01T10:00:00+02:00", datetime(2025, 3, 1, 8, 0, tzinfo=UTC)),
    ],
)
def test_timestamps_become_aware_utc(raw: object, expected: datetime) -> None:
    got = to_datetime(raw)
    assert got == expected
    assert got.tzinfo is UTC


def _mapping(fields: dict[str, object], kind: str = "accounts") -> SystemMapping:
    return SystemMapping.parse({"system": "t", kind: {"fields": fields}})


def test_field_specs_paths_lists_maps_defaults_and_guards() -> None:
    rules = _mapping({
        "key": "user.id",
        "name": {"from": ["nick", "user.name"], "transform": "strip"},
        "status": {"from": "state", "map": {1: "active", "2": "left"}, "default": "disabled"},
        "email": "mail",
        "department_keys": {"from": "depts", "item": "id"},
        "position": {"if_present": "title", "from": "title", "template": "[{}]"},
        "manager_key": {"when": {"kind": ["boss", "lead"]}, "from": "user.id"},
    }).kinds["accounts"]  # fmt: skip
    got = rules.apply({"user": {"id": 7, "name": "  张三  "}, "state": 1, "mail": " A@B.CN ",
                       "depts": [{"id": 1}, {"id": 2}, {}], "kind": "staff", "ignored": True})  # fmt: skip
    assert got == {"key": "7", "name": "张三", "status": "active", "email": "a@b.cn", "department_keys": ("1", "2")}
    got = rules.apply({"user": {"id": 8}, "nick": "x", "title": "经理", "kind": "lead"})
    assert (got["status"], got["position"], got["manager_key"]) == ("disabled", "[经理]", "8")


def test_a_value_the_map_does_not_know_is_an_error_unless_else() -> None:
    strict = _mapping({"key": "k", "name": "n", "status": {"from": "s", "map": {"1": "active"}}}).kinds["accounts"]
    with pytest.raises(MappingError, match="not in the map"):
        strict.apply({"k": 1, "n": "x", "s": 9})
    lenient = _mapping({"key": "k", "name": "n", "status": {"from": "s", "map": {"1": "active"}, "else": "disabled"}})
    assert lenient.kinds["accounts"].apply({"k": 1, "n": "x", "s": 9})["status"] == "disabled"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"system": "t", "accounts": {"fields": {"key": "k", "name": "n", "nickname": "x"}}}, "no canonical field"),
        ({"system": "t", "accounts": {"fields": {"key": "k"}}}, r"must map \['name'\]"),
        ({"system": "t", "roles": {"fields": {"key": {"form": "k"}, "name": "n"}}}, r"unknown keys \['form'\]"),
        ({"system": "t", "roles": {"fields": {"key": {"from": "k", "transform": "md5"}, "name": "n"}}}, "transform"),
        ({"roles": {}}, "'system' key"),
    ],
)
def test_malformed_mapping_files_are_refused(doc: dict[str, object], message: str) -> None:
    with pytest.raises(MappingError, match=message):
        SystemMapping.parse(doc)


SHIPPED = ("jiandaoyun", "fxiaoke", "ecology", "wecom", "dingtalk", "feishu", "kingdee", "u8cloud", "file")


@pytest.mark.parametrize("system", SHIPPED)
def test_every_shipped_mapping_file_loads(system: str) -> None:
    mapping = load_mapping(DEFAULT_MAPPING_DIR / f"{system}.yaml")
    assert mapping.system == system
    assert {"departments", "accounts"} <= set(mapping.kinds)


def test_connector_registry_names_every_system() -> None:
    assert set(CONNECTORS) == {"jiandaoyun", "fxiaoke", "ecology", "wecom", "dingtalk", "feishu", "http", "file"}


def test_kingdee_signature_golden_vector() -> None:
    """Computed independently with `openssl dgst -sha256 -hmac` over the documented string, hex, base64."""
    path = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc"
    assert kingdee_signature(path, "nonce-0001", "1740816000", "kd-client-secret-0001") == (
        "ZTc5NmU4OWY0ZGYwMjk1ZmE5YTE1MmFmMjJlM2EwOTFiOGZhYWJjMzczNmE5YzYyNDZmNzNhZTc5ODYyZDk4Yg=="
    )
    assert kingdee_signature(path, "nonce-0002", "1740816000", "kd-client-secret-0001") != kingdee_signature(
        path, "nonce-0001", "1740816000", "kd-client-secret-0001"
    )


def test_fixture_server_answers_unknown_requests_with_a_clear_404(server: FixtureServer) -> None:
    server.add({"method": "GET", "path": "/a"}, responses=[{"json": {"n": 1}}])
    with urllib.request.urlopen(server.url + "/a") as first:  # noqa: S310 - loopback
        assert first.read() == b'{"n": 1}'
    with pytest.raises(HTTPError) as gone:
        urllib.request.urlopen(server.url + "/a")  # noqa: S310
    assert gone.value.code == 410
    gone.value.close()
    with pytest.raises(HTTPError) as missing:
        urllib.request.urlopen(server.url + "/b?x=1")  # noqa: S310
    assert missing.value.code == 404
    assert b"no fixture matches GET /b query={'x': '1'}" in missing.value.read()
    missing.value.close()
    assert [(r.path, r.matched) for r in server.requests] == [("/a", True), ("/a", True), ("/b", False)]


def _jiandaoyun(url: str) -> JiandaoyunConnector:
    return JiandaoyunConnector(base_url=url, credentials={"api_key": "secret-key-123"}, sleep=Sleeps(), timeout=2)


def test_unreachable_source_is_a_source_error() -> None:
    """Nothing listens on the port: a SourceError naming the endpoint, not a raw httpx exception."""
    with FixtureServer() as gone:
        url = gone.url
    with pytest.raises(
        SourceError, match=r"^jiandaoyun: request failed: ConnectError.*\[endpoint /v6/corp/department/list"
    ):
        _jiandaoyun(url).pull()


def test_an_item_list_of_the_wrong_type_is_a_source_error(server: FixtureServer) -> None:
    """The Jiandaoyun API is replaced by a recorded fixture because no real one can run here."""
    server.add({"method": "POST", "path": "/v6/corp/department/list", "json": {"dept_no": 1, "has_child": True}},
               {"json": {"departments": {"1": "not a list"}}})  # fmt: skip
    with pytest.raises(SourceError, match=r"the item list at 'departments' is a dict, not a list"):
        _jiandaoyun(server.url).pull()


def test_an_unknown_request_answered_404_is_a_source_error(server: FixtureServer) -> None:
    """The Jiandaoyun API is replaced by recorded fixtures (here: none) because no real one can run here."""
    with pytest.raises(
        SourceError, match=r"HTTP 404: fixture server: no fixture matches POST /v6/corp/department/list"
    ):
        _jiandaoyun(server.url).pull()
    assert server.requests[0].headers["authorization"] == "Bearer secret-key-123"


def test_errors_redact_credentials() -> None:
    err = SourceError("x", "bad key secret-key-123 for secret-key-1234", secrets=["secret-key-123", "secret-key-1234"])
    assert str(err) == "x: bad key *** for ***"


FORBIDDEN = ("fastapi", "starlette", "sqlalchemy", "app.db", "app.main", "app.deps", "app.directory")


def test_connectors_import_no_web_framework_and_no_database() -> None:
    """The connectors are plain Python over httpx: no FastAPI, no ORM, no database session."""
    imported: set[str] = set()
    for file in (ROOT / "app" / "sync" / "connectors").glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
    assert "httpx" in imported
    assert sorted(m for m in imported if m.startswith(FORBIDDEN)) == []
