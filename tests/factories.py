"""A small, hand-written organisation for API and store tests (the demo org is for the differential test)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from app.directory.models import Account, Delegation, Department, DepartmentSourceId, Grant, Person, Record

NOW = datetime.now(UTC)

DEPARTMENTS = [
    # id, code, name, parent, path, crm id, oa id
    ("D-HQ", "hq", "总公司", None, "hq/", "1", "10"),
    ("D-SALES", "sales", "销售中心", "D-HQ", "hq/sales/", "2", "20"),
    ("D-EAST", "east", "华东大区", "D-SALES", "hq/sales/east/", "3", "21"),
    ("D-SOUTH", "south", "华南大区", "D-SALES", "hq/sales/south/", "4", "22"),
    ("D-FIN", "fin", "财务中心", "D-HQ", "hq/fin/", "5", "30"),
]

PEOPLE = [
    # id, name, department, status
    ("P001", "张伟", "D-EAST", "active"),
    ("P002", "王芳", "D-EAST", "active"),
    ("P003", "李娜", "D-EAST", "active"),
    ("P004", "刘洋", "D-SOUTH", "active"),
    ("P005", "陈静", "D-FIN", "active"),
    ("P006", "杨磊", "D-EAST", "left"),
    ("P007", "赵敏", "D-SALES", "active"),
]

GRANTS = [
    # person, role, department, subtree, source, valid_until offset days
    ("P001", "employee", None, False, "oa", None),
    ("P001", "sales", "D-EAST", False, "crm", None),
    ("P002", "employee", None, False, "oa", None),
    ("P002", "sales", "D-EAST", False, "crm", None),
    ("P003", "employee", None, False, "oa", None),
    ("P003", "sales_manager", "D-EAST", False, "crm", None),
    ("P003", "dept_manager", "D-EAST", True, "oa", None),
    ("P004", "employee", None, False, "oa", None),
    ("P004", "sales", "D-SOUTH", False, "crm", None),
    ("P005", "employee", None, False, "oa", None),
    ("P005", "finance_director", None, False, "oa", None),
    ("P006", "employee", None, False, "oa", None),
    ("P006", "sales", "D-EAST", False, "crm", None),
    ("P007", "employee", None, False, "oa", None),
    ("P007", "sales_manager", "D-SALES", True, "crm", -1),
]

ACCOUNTS = [
    ("crm", "zhangwei01", "P001", "active"),
    ("crm", "wangfang01", "P002", "active"),
    ("crm", "lina01", "P003", "active"),
    ("crm", "liuyang01", "P004", "active"),
    ("crm", "yanglei01", "P006", "active"),
    ("crm", "test01", None, "active"),
    ("oa", "1005", "P005", "active"),
    ("oa", "1001", "P001", "disabled"),
]

RECORDS = [
    ("crm.customer", "CUS-1", "P001", "D-EAST", {"name": "上海华信贸易有限公司", "status": "active", "level": "A"}),
    ("crm.customer", "CUS-2", "P002", "D-EAST", {"name": "杭州云启科技有限公司", "status": "active", "level": "B"}),
    ("crm.customer", "CUS-3", "P004", "D-SOUTH", {"name": "广州南粤物流有限公司", "status": "active", "level": "C"}),
    ("crm.customer", "CUS-4", "P001", "D-EAST", {"name": "苏州恒达机械有限公司", "status": "lost", "level": "C"}),
    ("oa.expense", "EXP-1", "P001", "D-EAST", {"amount": 3200, "status": "submitted"}),
    ("oa.expense", "EXP-2", "P001", "D-EAST", {"amount": 9800, "status": "submitted"}),
]


def seed_org(session: Session) -> None:
    """Insert the mini organisation (roles must exist: import the policy first)."""
    for did, code, name, parent, path, crm, oa in DEPARTMENTS:
        session.add(Department(id=did, code=code, name=name, parent_id=parent, path=path))
        session.flush()
        session.add_all([DepartmentSourceId(department_id=did, system="crm", source_id=crm),
                         DepartmentSourceId(department_id=did, system="oa", source_id=oa)])
    for pid, name, dep, status in PEOPLE:
        session.add(Person(id=pid, name=name, department_id=dep, status=status, employee_no=f"E{pid}",
                           email=f"{pid.lower()}@demo.test", hired_on=date(2020, 1, 1),
                           left_on=date.today() if status == "left" else None))
    session.flush()
    for pid, role, dep, subtree, source, until in GRANTS:
        session.add(Grant(person_id=pid, role=role, department_id=dep, include_subtree=subtree,
                          source_system=source, granted_by="test", reason="test fixture",
                          valid_until=NOW + timedelta(days=until) if until is not None else None))
    for system, local, pid, status in ACCOUNTS:
        session.add(Account(system=system, local_id=local, person_id=pid, status=status, display_name=local))
    for rtype, rid, owner, dep, props in RECORDS:
        session.add(Record(type=rtype, id=rid, owner_id=owner, department_id=dep, properties=props))
    session.add(Delegation(from_person_id="P003", to_person_id="P002", role="dept_manager",
                           valid_from=NOW - timedelta(days=1), valid_until=NOW + timedelta(days=5),
                           reason="休假期间代批", created_by="P003"))
