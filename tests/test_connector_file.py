"""The file import connector (CSV directory or one JSON document), for systems with no API.

No vendor API is involved: the fixtures are export files written by hand in tests/fixtures/sync/file.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.sync.canonical import Snapshot, SourceAccount, SourceAssignment, SourceDepartment, SourceRole
from app.sync.connectors import FileConnector, SourceError
from tests.support.fixture_server import FIXTURES

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
HERE = FIXTURES / "file"


def test_csv_directory_becomes_a_snapshot_with_transforms_applied() -> None:
    """CSV exports: quotes, commas, emoji, status case, mobile/email normalised, three timestamp styles."""
    snap = FileConnector(HERE / "csv", source="legacy-oa", clock=lambda: NOW).pull()
    assert snap == Snapshot(
        source="legacy-oa",
        departments=(
            SourceDepartment("D0", "总公司"),
            SourceDepartment("D1", "销售中心", parent_key="D0", order=10),
            SourceDepartment("D2", '华东 "一区"', parent_key="D1", status="disabled", order=20),
        ),
        accounts=(
            SourceAccount("P001", '张伟, "老张"', login="zhangwei", employee_no="E001", mobile="+8613800138000",
                          email="zw@example.com", department_keys=("D1", "D2"), primary_department="D1",
                          position="销售经理", last_login_at=datetime(2025, 2, 28, 1, 15, tzinfo=UTC)),
            SourceAccount("P002", "李娜 🎉", status="left", login="lina", employee_no="E002", mobile="+8613900139000",
                          department_keys=("D2",), primary_department="D2", manager_key="P001",
                          last_login_at=datetime(2025, 2, 28, 0, 0, tzinfo=UTC)),
            SourceAccount("P003", "王芳", status="disabled", last_login_at=datetime(2025, 2, 28, 0, 0, tzinfo=UTC)),
        ),
        roles=(SourceRole("R1", "销售经理"), SourceRole("R2", "大区总监")),
        assignments=(
            SourceAssignment("P001", "R1", "subtree", ("D1",)),
            SourceAssignment("P001", "R2", "listed", ("D1", "D2")),
            SourceAssignment("P002", "R1"),
        ),
        taken_at=NOW,
    )  # fmt: skip
    assert snap.accounts[0].raw["remark"] == "extra column is ignored"


def test_only_the_files_present_are_claimed_complete(tmp_path: Path) -> None:
    """A missing file says nothing about that kind."""
    shutil.copy(HERE / "csv" / "accounts.csv", tmp_path / "accounts.csv")
    snap = FileConnector(tmp_path).pull()
    assert snap.complete == frozenset({"accounts"})
    assert [a.key for a in snap.accounts] == ["P001", "P002", "P003"]


def test_json_document() -> None:
    """One JSON document with only some kinds; arrays for lists, numbers for mobiles, ISO times."""
    snap = FileConnector(HERE / "json" / "directory.json", clock=lambda: NOW).pull()
    assert snap == Snapshot(
        source="file",
        departments=(SourceDepartment("D0", "总公司"), SourceDepartment("D1", "销售中心", parent_key="D0", order=10)),
        accounts=(
            SourceAccount("P001", '张伟 "老张"', mobile="+8613800138000", department_keys=("D1",),
                          last_login_at=datetime(2025, 2, 28, 1, 15, tzinfo=UTC)),
        ),
        taken_at=NOW,
        complete=frozenset({"departments", "accounts"}),
    )  # fmt: skip


def test_gb18030_csv_from_chinese_excel(tmp_path: Path) -> None:
    """Excel in a Chinese locale saves CSV as GB18030, not UTF-8."""
    (tmp_path / "roles.csv").write_bytes("key,name\nR9,财务总监\n".encode("gb18030"))
    assert FileConnector(tmp_path).pull().roles == (SourceRole("R9", "财务总监"),)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("accounts.csv", "key,name,status\nP1,张三,on-leave\n", r"accounts record 'accounts.csv:2'.*status 'on-leave'"),
        ("accounts.csv", "key,status\nP1,active\n", r"no value for required field 'name'"),
        ("roles.csv", "key,name\nR1,a,extra\n", r"roles.csv line 2 has more cells than the header"),
        ("roles.csv", "key,name\nR1,甲\nR1,乙\n", r"roles key 'R1' appears twice with different contents"),
        ("assignments.csv", "account_key,role_key,scope_type\nP1,R1,region\n", r"scope_type 'region' is not one of"),
    ],
)
def test_bad_rows_are_source_errors(tmp_path: Path, name: str, content: str, message: str) -> None:
    """A row the mapping cannot place fails the whole import (nothing is applied)."""
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(SourceError, match=message):
        FileConnector(tmp_path).pull()


def test_truncated_json_document_is_a_source_error(tmp_path: Path) -> None:
    """A cut-off export is refused, not half-read."""
    (tmp_path / "d.json").write_text('{"accounts": [{"key": "P1", "name": "张', encoding="utf-8")
    with pytest.raises(SourceError, match=r"d.json is not a readable JSON document"):
        FileConnector(tmp_path / "d.json")


def test_missing_path_is_a_source_error(tmp_path: Path) -> None:
    """Nothing at the path: refused."""
    with pytest.raises(SourceError, match="no such file or directory"):
        FileConnector(tmp_path / "nope")
