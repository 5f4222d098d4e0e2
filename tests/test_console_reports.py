"""The console's reports: audit runs and campaigns listed with their downloads, the files the API makes
(PDF, XLSX, CSV, HTML, the evidence pack), in the reader's language or the one chosen; the system
administrator refused and logged; bad formats and languages a 422 page, unknown reports a 404 page."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.test_console_auth import sign_in
from tests.test_console_pages import console_decisions

pytestmark = pytest.mark.idp
MAGIC = {"pdf": b"%PDF", "xlsx": b"PK\x03\x04", "csv": b"PK\x03\x04"}
API = {"runs": "/v1/audit/runs/{id}/report", "campaigns": "/v1/audit/campaigns/{id}/report"}


@pytest.fixture
def console(audited_console: TestClient) -> TestClient:
    """After an audit run, with a review campaign launched over everyone."""
    client = audited_console
    audit = audit_of(client)
    audit.launch_campaign(name="2026年第四季度访问复核", scope={}, due_at=datetime.now(UTC) + timedelta(days=14),
                          no_response="keep", auto_revoke_cap=25, actor="test")
    return client


def audit_of(console: TestClient) -> Any:
    return console.app.state.services.audit  # type: ignore[attr-defined]


def ids(console: TestClient) -> tuple[int, int]:
    audit = audit_of(console)
    return audit.list_runs(1)[0]["id"], audit.list_campaigns()[0]["id"]


def check_download(console: TestClient, kind: str, ref: int, fmt: str, lang: str) -> httpx.Response:
    """The console's file is the API's: content type and file name alike, and the body is that format."""
    got: httpx.Response = console.get(f"/console/reports/{kind}/{ref}?format={fmt}&lang={lang}")
    assert got.status_code == 200, got.text[:300]
    api = console.get(API[kind].format(id=ref), params={"format": fmt, "lang": lang}, headers=auth())
    assert api.status_code == 200
    for header in ("content-type", "content-disposition"):
        assert got.headers[header] == api.headers[header], header
    assert got.headers["content-disposition"].startswith("attachment; filename=")
    assert f"-{lang}." in got.headers["content-disposition"]
    if fmt in MAGIC:
        assert got.content.startswith(MAGIC[fmt])
    if fmt in ("csv", "xlsx"):
        names = zipfile.ZipFile(io.BytesIO(got.content)).namelist()
        assert names == zipfile.ZipFile(io.BytesIO(api.content)).namelist() and names
    if fmt == "html":
        assert "<html" in got.text.lower() and got.headers["content-type"].startswith("text/html")
        assert "content-security-policy" in got.headers  # served under the console's CSP, as a download
    return got


def check_pack(console: TestClient, kind: str, ref: int) -> None:
    got = console.get(f"/console/reports/{kind}/{ref}/evidence-pack")
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    singular = kind.removesuffix("s")
    assert got.headers["content-disposition"] == f'attachment; filename="accessgov-{singular}-{ref}-evidence.zip"'
    archive = zipfile.ZipFile(io.BytesIO(got.content))
    manifest = archive.read("manifest.json")
    assert hashlib.sha256(manifest).hexdigest() == got.headers["x-evidence-digest"]
    listed = {p["path"] for p in json.loads(manifest)["parts"]}
    assert {"zh-CN/report.pdf", "en/report.pdf"} <= listed and set(archive.namelist()) >= listed


def test_the_security_admin_lists_reports_and_downloads_a_runs_files(console: TestClient) -> None:
    run_id, campaign_id = ids(console)
    assert sign_in(console, "sunli").status_code == 303
    page = console.get("/console/reports")
    assert page.status_code == 200 and 'id="report-runs"' in page.text and 'id="report-campaigns"' in page.text
    runs = page.text.split('id="report-runs"')[1].split("</table>")[0]
    listed = {int(i) for i in re.findall(r'href="/console/reports/runs/(\d+)/evidence-pack"', runs)}
    assert listed == {r["id"] for r in audit_of(console).list_runs(100)}
    for fmt in ("html", "csv", "xlsx", "pdf"):
        assert f'href="/console/reports/runs/{run_id}?format={fmt}&amp;lang=zh-CN"' in runs
    assert f'href="/console/reports/campaigns/{campaign_id}?format=pdf&amp;lang=zh-CN"' in page.text
    assert "2026年第四季度访问复核" in page.text
    english_links = console.get("/console/reports?lang=en").text
    assert f'href="/console/reports/runs/{run_id}?format=pdf&amp;lang=en"' in english_links
    assert "lang=zh-CN" not in english_links.split('id="report-runs"')[1]

    for fmt in ("pdf", "xlsx", "csv", "html"):
        check_download(console, "runs", run_id, fmt, "zh-CN")
    html = check_download(console, "runs", run_id, "html", "en")
    assert "Access audit report" in html.text
    default = console.get(f"/console/reports/runs/{run_id}?format=pdf")  # the reader's language
    assert default.status_code == 200 and "-zh-CN.pdf" in default.headers["content-disposition"]
    check_pack(console, "runs", run_id)


def test_the_auditor_downloads_a_campaigns_files_in_english(console: TestClient) -> None:
    _run_id, campaign_id = ids(console)
    assert sign_in(console, "zhouqiang").status_code == 303
    assert console.get("/console/lang/en?next=/console/reports", follow_redirects=False).status_code == 303
    page = console.get("/console/reports")
    assert page.status_code == 200 and "Review campaigns" in page.text
    campaigns = page.text.split('id="report-campaigns"')[1].split("</table>")[0]
    assert f'href="/console/reports/campaigns/{campaign_id}?format=xlsx&amp;lang=en"' in campaigns
    for fmt in ("pdf", "xlsx", "csv", "html"):
        check_download(console, "campaigns", campaign_id, fmt, "en")
    default = console.get(f"/console/reports/campaigns/{campaign_id}?format=csv")
    assert "-en.csv.zip" in default.headers["content-disposition"]  # the reader's language now
    check_pack(console, "campaigns", campaign_id)
    allowed = [r for r in console_decisions(console, "P902") if r.action == "view_reports"]
    assert f"report:campaign:{campaign_id}" in {r.resource_id for r in allowed} and all(r.allowed for r in allowed)


def test_the_system_admin_is_refused_reports_and_the_refusal_is_logged(console: TestClient) -> None:
    run_id, campaign_id = ids(console)
    assert sign_in(console, "wugang").status_code == 303
    for path in ("/console/reports", f"/console/reports/runs/{run_id}?format=pdf",
                 f"/console/reports/campaigns/{campaign_id}/evidence-pack"):
        refused = console.get(path)
        assert refused.status_code == 403 and 'id="message-403"' in refused.text, path
        assert "%PDF" not in refused.text
    denied = [r for r in console_decisions(console, "P903") if r.action == "view_reports"]
    assert len(denied) == 3 and not any(r.allowed for r in denied)
    assert f"report:run:{run_id}" in {r.resource_id for r in denied}


BAD = [
    ("/console/reports/runs/{run}?format=docx", 422),
    ("/console/reports/runs/{run}?format=pdf&lang=fr", 422),
    ("/console/reports/campaigns/{campaign}?format=", 422),
    ("/console/reports/runs/999999?format=pdf", 404),
    ("/console/reports/campaigns/999999?format=html", 404),
    ("/console/reports/runs/999999/evidence-pack", 404),
    ("/console/reports/campaigns/abc?format=pdf", 404),
    ("/console/reports/runs/0?format=pdf", 404),
    ("/console/reports/runs/99999999999999999999999?format=pdf", 404),
    ("/console/reports/grants/{run}?format=pdf", 404),
    ("/console/reports?lang=xx", 200),
]


def test_bad_requests_get_a_page_not_an_error(console: TestClient) -> None:
    run_id, campaign_id = ids(console)
    assert sign_in(console, "zhouqiang").status_code == 303
    for path, status in BAD:
        got = console.get(path.format(run=run_id, campaign=campaign_id))
        assert got.status_code == status and got.headers["content-type"].startswith("text/html"), path
        if status == 422:
            assert 'id="error"' in got.text and 'id="report-runs"' in got.text
        if status == 404:
            assert 'id="message-404"' in got.text


def test_both_languages_render(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    chinese = console.get("/console/reports")
    assert "审计运行" in chinese.text and "证据包" in chinese.text
    console.get("/console/lang/en?next=/console/reports")
    english: Any = console.get("/console/reports")
    assert "Audit runs" in english.text and "Evidence pack" in english.text and 'lang="en"' in english.text
