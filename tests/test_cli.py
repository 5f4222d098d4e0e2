"""The `accessgov` command line, and the README's run path as a user would take it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from app.cli import main
from tests.conftest import ROOT

ACCESSGOV = str(Path(sys.executable).with_name("accessgov"))


def run(args: list[str], env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_policy_test_passes_on_the_baseline() -> None:
    result = run(["policy", "test", "--dir", str(ROOT / "policies")])
    assert result.exit_code == 0, result.output
    assert " passed, 0 failed" in result.output


def test_policy_test_fails_when_a_rule_breaks_a_table(tmp_path: Path) -> None:
    broken = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", broken)
    rules = (broken / "rules.csv").read_text(encoding="utf-8")
    (broken / "rules.csv").write_text(rules.replace("p, employee, *, oa.expense, approve, own, -, deny\n", ""),
                                      encoding="utf-8")
    result = run(["policy", "test", "--dir", str(broken)])
    assert result.exit_code == 1
    assert "FAIL  oa.yaml: 不能审批自己的报销（显式拒绝）" in result.output


def test_policy_test_reports_invalid_files(tmp_path: Path) -> None:
    broken = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", broken)
    (broken / "rules.csv").write_text("p, nobody, *, crm.customer, read\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "test", "--dir", str(broken)])
    assert result.exit_code == 1
    assert "INVALID" in result.output


def test_dev_tokens_are_refused_in_production() -> None:
    env = {"ACCESSGOV_ENVIRONMENT": "production", "ACCESSGOV_AUTH__ISSUER": "https://idp.example",
           "ACCESSGOV_CONSOLE__SECRET_KEY": "k" * 40}
    result = CliRunner().invoke(main, ["dev-token"], env=env)
    assert result.exit_code != 0
    assert "refused" in result.output


def test_export_writes_back_what_was_imported(tmp_path: Path) -> None:
    env = {"ACCESSGOV_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", "ACCESSGOV_POLICIES_DIR": str(ROOT / "policies")}
    first = run(["policy", "import"], env)
    assert "imported as policy version 1" in first.output
    assert "unchanged" in run(["policy", "import"], env).output
    out = tmp_path / "exported"
    run(["policy", "export", "--out", str(out)], env)
    for name in ("model.conf", "rules.csv", "field_rules.csv", "fields.yaml", "resources.yaml", "roles.yaml"):
        assert (out / name).read_text(encoding="utf-8") == (ROOT / "policies" / name).read_text(encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_readme_run_path_serves_the_demo_organisation(tmp_path: Path) -> None:
    """`make run` = `accessgov demo --if-empty` then `accessgov serve`, with development tokens."""
    db = tmp_path / "accessgov.db"
    env = os.environ | {"ACCESSGOV_DATABASE_URL": f"sqlite:///{db}", "ACCESSGOV_AUTH__DEV_TOKENS": "true",
                        "ACCESSGOV_POLICIES_DIR": str(ROOT / "policies")}
    env.pop("ACCESSGOV_ENVIRONMENT", None)
    demo = subprocess.run([ACCESSGOV, "demo", "--if-empty"], env=env, capture_output=True, text=True, timeout=180)
    assert demo.returncode == 0, demo.stderr
    summary = json.loads(demo.stdout)
    assert 280 <= summary["people"] <= 320 and summary["decisions"] > 20_000
    token = subprocess.run([ACCESSGOV, "dev-token"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    port = _free_port()
    server = subprocess.Popen([ACCESSGOV, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server)
        body = {"subject": {"type": "user", "id": "P00177"}, "action": {"name": "read"},
                "resource": {"type": "crm.customer", "id": "CUS-000001",
                             "properties": {"fields": ["phone", "id_number"]}}}
        answer = httpx.post(f"{base}/access/v1/evaluation", json=body, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["decision"] is True
        assert answer.json()["context"]["fields"] == {"phone": "visible", "id_number": "hidden"}
        assert httpx.post(f"{base}/access/v1/evaluation", json=body).status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if server.stderr:
            server.stderr.close()
    assert _logged(db, answer.json()["context"]["decision_id"])  # flushed by the clean shutdown at the latest


def _logged(db: Path, decision_id: str) -> bool:
    with sqlite3.connect(db) as conn:
        return conn.execute("select 1 from decision_log where id = ?", (decision_id,)).fetchone() is not None


def _wait_ready(base: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"server exited: {server.stderr.read() if server.stderr else ''}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail("server not ready within 60 s")


def test_demo_officers_are_added_once_and_match_the_test_idps_accounts(tmp_path: Path) -> None:
    """`make console`'s officers: one duty each, linked to the test IdP's accounts (fixture.json)."""
    from app.config import Settings
    from app.console.service import resolve_person
    from app.main import build_services

    env = {"ACCESSGOV_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
           "ACCESSGOV_POLICIES_DIR": str(ROOT / "policies")}
    assert run(["demo"], env).exit_code == 0
    first = json.loads(run(["demo-officers"], env).output)
    again = json.loads(run(["demo-officers"], env).output)
    assert [o["added"] for o in first] == ["true"] * 3 and [o["added"] for o in again] == ["false"] * 3
    accounts = {a["login"]: a for a in json.loads((ROOT / "tests/idp/fixture.json").read_text())["accounts"]}
    services = build_services(Settings(database_url=env["ACCESSGOV_DATABASE_URL"], policies_dir=ROOT / "policies"))
    for officer in first:
        account = accounts[officer["login"]]
        assert officer["password"] == account["password"]
        person = resolve_person(services, source="idp", subject=account["claims"]["sub"])
        assert person is not None and person.id == officer["person_id"] and person.duties == [officer["duty"]]
    assert {o["duty"] for o in first} == {"console_security_admin", "console_auditor", "console_system_admin"}
    refused = CliRunner().invoke(main, ["demo-officers"], env={
        **env, "ACCESSGOV_ENVIRONMENT": "production", "ACCESSGOV_AUTH__ISSUER": "https://idp.example",
        "ACCESSGOV_CONSOLE__SECRET_KEY": "k" * 40})
    assert refused.exit_code != 0 and "public passwords: not in production" in refused.output
