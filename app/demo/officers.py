"""The console's three officers for trying the demo locally (``accessgov demo-officers``, ``make console``).

Each is linked to an account of the test IdP (``tests/idp/fixture.json``) by ``person.idp_subject`` and
holds one console duty company-wide, granted through the grant service like any role. Development only:
the test IdP's passwords are public.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db import transaction
from app.directory.models import Person

# person id, name, employee no., department, the test IdP's login and subject, the duty
OFFICERS = (
    ("P09001", "孙丽", "C9001", "D-IT", "sunli", "u-console-secadmin", "console_security_admin"),
    ("P09002", "周强", "C9002", "D-LEGAL", "zhouqiang", "u-console-auditor", "console_auditor"),
    ("P09003", "吴刚", "C9003", "D-IT", "wugang", "u-console-sysadmin", "console_system_admin"),
)


def add_officers(services: Any) -> list[dict[str, str]]:
    """Add the officers who are missing (idempotent); their logins, whether added now or before."""
    added = []
    with transaction(services.factory) as session:
        for pid, name, employee_no, department, _login, subject, _duty in OFFICERS:
            if session.get(Person, pid) is None and not session.scalars(
                    select(Person).where(Person.idp_subject == subject)).first():
                session.add(Person(id=pid, name=name, employee_no=employee_no, department_id=department,
                                   status="active", idp_subject=subject, position="控制台演示"))
                added.append(pid)
    for pid, _name, _no, _dept, _login, _subject, duty in OFFICERS:
        if pid in added:
            services.grants.create_grant(actor="demo", person_id=pid, role=duty, department_id=None,
                                         include_subtree=False, reason="控制台演示职责", valid_from=None,
                                         valid_until=None)
    return [{"person_id": pid, "name": name, "login": login, "password": f"{login}-test-pw", "duty": duty,
             "added": str(pid in added).lower()} for pid, name, _no, _dept, login, _sub, duty in OFFICERS]
