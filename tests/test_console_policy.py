"""The console's policy pages on the mini organisation: versions and diffs as the service has them, a change's
impact shown before it goes live (nothing live until confirmed), apply and rollback through the policy service,
the auditor reads but cannot change, CSRF, bad parameters, English."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.conftest import console_env
from tests.support.idp import TestIdP
from tests.test_authzen_api import ask
from tests.test_console_auth import seed, sign_in
from tests.test_console_pages import console_decisions, csrf_of, inline_script

pytestmark = pytest.mark.idp
LINE = "p, sales, hq/sales/east/, crm.opportunity, delete, own, -, allow"
EAST_SALES = {"P001", "P002", "P003"}  # sales in the east (P003 as sales manager); P004 is south, P006 has left


@pytest.fixture
def console(app_factory: Callable[..., TestClient], sqlite_url: str, console_idp: TestIdP,
            monkeypatch: pytest.MonkeyPatch) -> TestClient:
    console_env(monkeypatch, console_idp.issuer)
    return app_factory(sqlite_url, seed=seed)


def version_ids(console: TestClient) -> list[int]:
    services = console.app.state.services
    with services.factory() as session:
        return [v.id for v in services.policy.list_versions(session)]


def may_delete(console: TestClient, person: str) -> bool:
    """The live decision: may ``person`` delete their own opportunity in 华东大区?"""
    return bool(ask(console, person, "delete", "crm.opportunity", "OPP-1", owner=person,
                    department="D-EAST")["decision"])


def confirm_fields(page: str) -> dict[str, list[str]]:
    """The hidden fields of the preview's confirm form, as a browser would send them back."""
    form = page.split('id="confirm"', 1)[1].split("</form>", 1)[0]
    out: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form):
        out.setdefault(name, []).append(html.unescape(value))
    return out


def gainers(page: str, section: str) -> set[str]:
    part = page.split(f'id="{section}"', 1)[1].split("</section>", 1)[0]
    return set(re.findall(r'data-person="([^"]+)"', part))


def test_the_versions_page_shows_the_services_versions_and_the_diff_shows_the_changed_line(
        console: TestClient) -> None:
    first = version_ids(console)[0]
    console.app.state.services.policy.change_rules(actor="test", reason="工单 SEC-1", add=[LINE], remove=[])
    ids = version_ids(console)
    assert sign_in(console, "sunli").status_code == 303
    page = console.get("/console/policy")
    assert page.status_code == 200 and 'id="versions"' in page.text and 'id="diff-form"' in page.text
    table = page.text.split('id="versions"', 1)[1].split("</table>", 1)[0]
    assert [int(i) for i in re.findall(r'<tr id="version-(\d+)"', table)] == ids
    assert "工单 SEC-1" in table and table.count('id="current-version"') == 1
    assert f'id="rollback-{first}"' in page.text and f'id="rollback-{ids[0]}"' not in page.text
    assert 'id="change"' in page.text
    diff = console.get(f"/console/policy/diff?from={first}&to={ids[0]}")
    assert diff.status_code == 200 and 'id="diff"' in diff.text
    assert f'<span class="add">+{LINE}</span>' in diff.text and 'class="del"' not in diff.text
    assert diff.text.count('id="diff-rules-csv"') == 1 and diff.text.count('class="add"') == 1
    back = console.get(f"/console/policy/diff?from={ids[0]}&to={first}")
    assert f'<span class="del">-{LINE}</span>' in back.text
    one = console.get(f"/console/policy/versions/{first}")
    assert one.status_code == 200 and "g, sales_manager, sales, *" in one.text and LINE not in one.text
    for bad in ("from=abc&to=1", "from=&to=", "from=-1&to=1", "from=1&to=99999999999", "to=1", "from=1.5&to=1"):
        r = console.get(f"/console/policy/diff?{bad}")
        assert r.status_code == 422 and 'id="error"' in r.text, bad
    assert console.get(f"/console/policy/diff?from={first}&to=999999").status_code == 404
    assert console.get("/console/policy/versions/abc").status_code == 404
    assert console.get("/console/policy/versions/999999").status_code == 404


def test_a_change_is_previewed_without_going_live_then_applied(console: TestClient) -> None:
    before = version_ids(console)
    assert sign_in(console, "sunli").status_code == 303
    page = console.get("/console/policy")
    preview = console.post("/console/policy/preview", data={"csrf": csrf_of(page.text), "add": LINE, "remove": "",
                                                            "reason": "华东销售可删除自己的商机 (SEC-2)"})
    assert preview.status_code == 200, preview.text
    assert 'id="impact"' in preview.text and 'id="impact-losses"' in preview.text
    assert gainers(preview.text, "impact-gains") == EAST_SALES
    assert gainers(preview.text, "impact-losses") == set()
    assert "crm.opportunity" in preview.text and "hq/sales/east/" in preview.text
    # Nothing is live yet.
    assert version_ids(console) == before
    assert not may_delete(console, "P001")
    confirmed = console.post("/console/policy/apply", data=confirm_fields(preview.text), follow_redirects=False)
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/console/policy?saved=1"
    after = version_ids(console)
    assert len(after) == len(before) + 1
    services = console.app.state.services
    with services.factory() as session:
        newest = services.policy.active_version(session)
        assert newest.created_by == "P901" and "SEC-2" in newest.reason and LINE in newest.files["rules.csv"]
    assert may_delete(console, "P001") and may_delete(console, "P003")
    assert not may_delete(console, "P004")  # the south was never in the change
    assert 'id="saved"' in console.get("/console/policy?saved=1").text


def test_a_rollback_is_previewed_then_restores_the_older_version(console: TestClient) -> None:
    services = console.app.state.services
    first = version_ids(console)[0]
    services.policy.change_rules(actor="test", reason="SEC-3", add=[LINE], remove=[])
    assert may_delete(console, "P002")
    assert sign_in(console, "sunli").status_code == 303
    page = console.get("/console/policy")
    assert f'id="rollback-{first}"' in page.text
    preview = console.get(f"/console/policy/rollback-preview?to={first}")
    assert preview.status_code == 200 and 'id="impact"' in preview.text
    assert gainers(preview.text, "impact-losses") == EAST_SALES and gainers(preview.text, "impact-gains") == set()
    assert may_delete(console, "P002")  # still live
    fields = confirm_fields(preview.text) | {"reason": ["撤销 SEC-3"]}
    done = console.post("/console/policy/rollback", data=fields, follow_redirects=False)
    assert done.status_code == 303, done.text
    with services.factory() as session:
        newest = services.policy.active_version(session)
        assert newest.digest == services.policy.get_version_or_raise(session, first).digest
        assert newest.created_by == "P901" and newest.reason == "撤销 SEC-3"
    assert not may_delete(console, "P002")
    assert console.get("/console/policy/rollback-preview?to=999999").status_code == 404
    assert console.get("/console/policy/rollback-preview?to=x").status_code == 422


def test_a_change_made_meanwhile_or_failing_the_policy_tests_changes_nothing(console: TestClient) -> None:
    services = console.app.state.services
    assert sign_in(console, "sunli").status_code == 303
    page = console.get("/console/policy")
    preview = console.post("/console/policy/preview",
                           data={"csrf": csrf_of(page.text), "add": LINE, "reason": "SEC-4"})
    services.policy.change_rules(actor="test", reason="meanwhile", add=[], remove=[
        "p, marketing, *, crm.opportunity, read, all, -, allow"])
    before = version_ids(console)
    late = console.post("/console/policy/apply", data=confirm_fields(preview.text))
    assert late.status_code == 409 and 'id="error"' in late.text
    assert version_ids(console) == before and not may_delete(console, "P001")
    # The auditor must never change policy (policies/tests/console.yaml): the tests refuse it before any preview.
    refused = console.post("/console/policy/preview", data={
        "csrf": csrf_of(page.text), "reason": "x",
        "add": "p, console_auditor, *, accessgov.console, change_policy, all, -, allow"})
    assert refused.status_code == 422 and 'id="error"' in refused.text and "审计管理员只能查看策略" in refused.text
    junk = console.post("/console/policy/preview", data={"csrf": csrf_of(page.text), "add": "not a line",
                                                         "reason": "x"})
    assert junk.status_code == 422 and 'id="error"' in junk.text
    no_reason = console.post("/console/policy/preview", data={"csrf": csrf_of(page.text), "add": LINE, "reason": " "})
    assert no_reason.status_code == 422
    assert version_ids(console) == before


def test_the_auditor_reads_but_cannot_preview_or_apply_and_csrf_is_checked(console: TestClient) -> None:
    first = version_ids(console)[0]
    assert sign_in(console, "zhouqiang").status_code == 303
    page = console.get("/console/policy")
    assert page.status_code == 200 and 'id="versions"' in page.text
    assert 'id="change"' not in page.text and 'id="rollback-' not in page.text
    assert console.get(f"/console/policy/diff?from={first}&to={first}").status_code == 200
    csrf = csrf_of(page.text)
    for url in ("/console/policy/preview", "/console/policy/apply"):
        r = console.post(url, data={"csrf": csrf, "add": LINE, "reason": "x", "base": str(first)})
        assert r.status_code == 403 and 'id="message-403"' in r.text
    assert console.post("/console/policy/rollback", data={"csrf": csrf, "to": str(first), "reason": "x",
                                                          "base": str(first)}).status_code == 403
    assert console.get(f"/console/policy/rollback-preview?to={first}").status_code == 403
    denied = [r for r in console_decisions(console, "P902") if r.action == "change_policy" and not r.allowed]
    assert len(denied) >= 4
    assert version_ids(console) == [first] and not may_delete(console, "P001")


def test_a_wrong_csrf_token_changes_nothing(console: TestClient) -> None:
    first = version_ids(console)[0]
    assert sign_in(console, "sunli").status_code == 303
    r = console.post("/console/policy/apply", data={"csrf": "wrong", "add": LINE, "reason": "x",
                                                    "base": str(first)})
    assert r.status_code == 403 and 'id="message-csrf"' in r.text
    assert console.post("/console/policy/rollback", data={"to": str(first), "reason": "x",
                                                          "base": str(first)}).status_code == 403
    assert version_ids(console) == [first] and not may_delete(console, "P001")


def test_the_pages_render_in_english_and_other_duties_are_kept_out(console: TestClient) -> None:
    assert sign_in(console, "sunli").status_code == 303
    console.get("/console/lang/en?next=/console/policy")
    page = console.get("/console/policy")
    assert "Policy versions" in page.text and "Preview the impact" in page.text
    preview = console.post("/console/policy/preview", data={"csrf": csrf_of(page.text), "add": LINE,
                                                            "reason": "SEC-5"})
    assert "Permissions gained" in preview.text and "Confirm and apply" in preview.text
    first = version_ids(console)[0]
    diff = console.get(f"/console/policy/diff?from={first}&to={first}")
    assert "The two versions have the same contents." in diff.text
    assert not inline_script(page.text + preview.text + diff.text) and "style=" not in page.text + preview.text
    other = TestClient(console.app)
    assert sign_in(other, "wugang").status_code == 303
    assert other.get("/console/policy").status_code == 403
