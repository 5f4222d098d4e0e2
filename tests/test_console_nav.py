"""The console's navigation shows each duty exactly the sections the policy lets it open (no dead links,
no hidden doors): the table in app/console/pages.py checked against the shipped policy's decisions."""

from __future__ import annotations

from app.authz.policytest import run_tables
from app.console.pages import NAV, nav_for
from tests.test_policy_tables import POLICY

DUTIES = ("console_system_admin", "console_security_admin", "console_auditor")


def test_the_nav_matches_the_policy() -> None:
    people = {duty: {"department": "hq", "grants": [{"role": "employee"}, {"role": duty}]} for duty in DUTIES}
    cases = [{"name": f"{duty} {action} {'shown' if key in dict(nav_for(duty)) else 'hidden'}", "subject": duty,
              "action": action, "resource": {"type": "accessgov.console", "department": "hq"},
              "expect": "allow" if key in dict(nav_for(duty)) else "deny"}
             for duty in DUTIES for key, _href, action, _duties in NAV]
    results = run_tables(POLICY, {"nav.yaml": {"departments": {"hq": "hq/"}, "people": people, "cases": cases}})
    assert len(results) == len(DUTIES) * len(NAV)
    assert [r.name for r in results if not r.passed] == []
