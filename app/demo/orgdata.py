"""Deterministic demo company (演示科技有限公司 / "Demo Corp") for accessgov.

Builds an org chart of ~290 people, their CRM/OA/IdP accounts and source roles, a few direct
grants and delegations, CRM/OA records, 90 days of request history and a set of planted
access-governance problems (listed in ``DemoOrg.anomalies``).

Every random choice comes from a ``random.Random`` seeded with ``f"{seed}:{stream}"``, one stream
per concern (people, anomalies, records, activity, ...), so tweaking one part does not reshuffle
the others.  All datetimes are timezone-aware China Standard Time (UTC+08:00).
Standard library only; nothing here touches the database or the rest of ``app``.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from itertools import accumulate
from typing import Any

from . import names as N

CST = timezone(timedelta(hours=8))
EMAIL_DOMAIN = "demo-corp.cn"
COMPANY_NAME = "演示科技有限公司"
HISTORY_DAYS = 90

CRM_ROLES = ("销售代表", "销售经理", "大区总监", "大客户经理", "客服专员", "客服主管", "市场专员",
             "财务专员", "法务专员", "CRM管理员")
OA_ROLES = ("普通员工", "部门经理", "财务总监", "会计", "出纳", "人事专员", "HRBP", "法务专员",
            "IT管理员", "OA管理员", "总经理", "副总经理", "审计专员", "外包人员")
CENTRAL_ROLES = ("employee", "sales", "sales_manager", "key_account_manager", "cs_agent",
                 "cs_manager", "marketing", "finance", "finance_director", "dept_manager", "hr",
                 "legal", "it_admin", "executive", "auditor", "contractor", "crm_admin", "oa_admin")
RESOURCE_ACTIONS: dict[str, tuple[str, ...]] = {
    "crm.customer": ("create", "read", "update", "delete", "export", "transfer"),
    "crm.contact": ("create", "read", "update", "delete", "export"),
    "crm.opportunity": ("create", "read", "update", "delete", "close"),
    "crm.contract": ("create", "read", "update", "delete", "approve", "export"),
    "oa.approval": ("create", "read", "approve", "reject"),
    "oa.expense": ("create", "read", "update", "approve", "pay"),
    "oa.leave": ("create", "read", "approve"),
    "oa.document": ("create", "read", "update", "delete", "share"),
}
ANOMALY_KINDS = ("leaver_still_active", "mover_kept_grants", "sod_conflict", "unused_admin",
                 "orphan_account", "peer_outlier", "expired_temporary_grant", "expiring_grant",
                 "dormant_account")
ADMIN_ACTIONS = frozenset({"delete", "export", "transfer"})


@dataclass(frozen=True)
class DemoDepartment:
    id: str
    code: str
    name: str
    parent_id: str | None
    crm_id: str
    oa_id: str


@dataclass(frozen=True)
class DemoPerson:
    id: str
    employee_no: str
    name: str
    email: str
    mobile: str
    department_id: str
    position: str
    manager_id: str | None
    status: str
    hired_on: date
    left_on: date | None
    idp_subject: str


@dataclass(frozen=True)
class DemoAccount:
    system: str
    local_id: str
    person_id: str | None
    status: str
    last_login_at: datetime | None
    employee_no: str | None
    mobile: str | None
    email: str | None
    display_name: str


@dataclass(frozen=True)
class DemoSourceRole:
    system: str
    local_id: str
    source_role: str
    department_id: str | None
    include_subtree: bool
    valid_from: date
    valid_until: date | None


@dataclass(frozen=True)
class DemoGrant:
    person_id: str
    role: str
    department_id: str | None
    include_subtree: bool
    granted_by: str
    reason: str
    valid_from: date
    valid_until: date | None


@dataclass(frozen=True)
class DemoDelegation:
    from_person_id: str
    to_person_id: str
    role: str
    valid_from: date
    valid_until: date
    reason: str


@dataclass(frozen=True)
class DemoRecord:
    type: str
    id: str
    owner_id: str
    department_id: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class DemoActivity:
    at: datetime
    person_id: str
    resource_type: str
    record_id: str | None
    action: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class DemoAnomaly:
    kind: str
    subject: str
    summary_zh: str
    summary_en: str


@dataclass
class DemoOrg:
    today: date
    departments: list[DemoDepartment]
    people: list[DemoPerson]
    accounts: list[DemoAccount]
    source_roles: list[DemoSourceRole]
    grants: list[DemoGrant]
    delegations: list[DemoDelegation]
    records: list[DemoRecord]
    activity: list[DemoActivity]
    anomalies: list[DemoAnomaly]


# --------------------------------------------------------------------------- company layout

# (id, code, name, parent id); crm_id / oa_id are derived from the position in this table.
_DEPARTMENTS = (
    ("D-HQ", "hq", "总公司", None),
    ("D-MGMT", "mgmt", "总经办", "D-HQ"),
    ("D-SALES", "sales", "销售中心", "D-HQ"),
    ("D-SALES-EAST", "east", "华东大区", "D-SALES"),
    ("D-SALES-NORTH", "north", "华北大区", "D-SALES"),
    ("D-SALES-SOUTH", "south", "华南大区", "D-SALES"),
    ("D-SALES-WEST", "west", "西部大区", "D-SALES"),
    ("D-SALES-KA", "ka", "大客户部", "D-SALES"),
    ("D-CS", "cs", "客户服务部", "D-HQ"),
    ("D-MKT", "mkt", "市场部", "D-HQ"),
    ("D-FIN", "fin", "财务中心", "D-HQ"),
    ("D-FIN-ACCT", "acct", "会计部", "D-FIN"),
    ("D-FIN-TREASURY", "treasury", "资金部", "D-FIN"),
    ("D-HR", "hr", "人力资源部", "D-HQ"),
    ("D-LEGAL", "legal", "法务部", "D-HQ"),
    ("D-IT", "it", "信息技术部", "D-HQ"),
    ("D-PROC", "proc", "采购部", "D-HQ"),
    ("D-ADMIN", "admin", "行政部", "D-HQ"),
)
_REGION_CODE = {"D-SALES-EAST": "east", "D-SALES-NORTH": "north",
                "D-SALES-SOUTH": "south", "D-SALES-WEST": "west"}

# Department -> ((position, headcount), ...); the first entry is the department head.
# 总公司 has no staff of its own: the CEO (总经办) heads it.
_STAFFING: dict[str, tuple[tuple[str, int], ...]] = {
    "D-MGMT": (("总经理", 1), ("副总经理", 2), ("总经理助理", 1), ("审计专员", 2)),
    "D-SALES": (("销售中心总监", 1), ("销售运营专员", 2)),
    "D-SALES-EAST": (("大区总监", 1), ("销售经理", 3), ("销售代表", 39), ("外包销售", 2)),
    "D-SALES-NORTH": (("大区总监", 1), ("销售经理", 3), ("销售代表", 36)),
    "D-SALES-SOUTH": (("大区总监", 1), ("销售经理", 3), ("销售代表", 33), ("外包销售", 1)),
    "D-SALES-WEST": (("大区总监", 1), ("销售经理", 2), ("销售代表", 27)),
    "D-SALES-KA": (("大客户部总监", 1), ("大客户经理", 19)),
    "D-CS": (("客服主管", 1), ("客服专员", 25), ("外包客服", 2)),
    "D-MKT": (("市场总监", 1), ("市场专员", 14)),
    "D-FIN": (("财务总监", 1), ("财务分析师", 2)),
    "D-FIN-ACCT": (("会计主管", 1), ("会计", 11)),
    "D-FIN-TREASURY": (("资金经理", 1), ("出纳", 4)),
    "D-HR": (("人力资源总监", 1), ("HRBP", 3), ("人事专员", 6)),
    "D-LEGAL": (("法务总监", 1), ("法务专员", 5)),
    "D-IT": (("IT总监", 1), ("系统管理员", 2), ("CRM系统管理员", 2), ("OA系统管理员", 1),
             ("开发工程师", 4), ("运维工程师", 4)),
    "D-PROC": (("采购经理", 1), ("采购专员", 8)),
    "D-ADMIN": (("行政经理", 1), ("行政专员", 6), ("前台", 2)),
}

_FIN_CRM = ("crm", "财务专员", "company")
_LEGAL = (("oa", "法务专员", "company"), ("crm", "法务专员", "company"))
# position -> (activity profile, source roles beyond 普通员工/部门经理 as (system, role, scope)).
# scope: "company" = whole company, "dept" = own department only, "subtree" = own department
# and below, or an explicit department id.
_POSITIONS: dict[str, tuple[str, tuple[tuple[str, str, str], ...]]] = {
    "总经理": ("exec", (("oa", "总经理", "company"),)),
    "副总经理": ("exec", (("oa", "副总经理", "company"),)),
    "总经理助理": ("staff", ()),
    "审计专员": ("auditor", (("oa", "审计专员", "company"),)),
    "销售中心总监": ("sales_dir", (("crm", "大区总监", "subtree"),)),
    "销售运营专员": ("staff", (("crm", "销售代表", "dept"),)),
    "大区总监": ("sales_dir", (("crm", "大区总监", "subtree"),)),
    "销售经理": ("sales_mgr", (("crm", "销售经理", "dept"),)),
    "销售代表": ("sales", (("crm", "销售代表", "dept"),)),
    "外包销售": ("contractor", (("crm", "销售代表", "dept"),)),
    "大客户部总监": ("sales_dir", (("crm", "大区总监", "subtree"),)),
    "大客户经理": ("sales", (("crm", "大客户经理", "D-SALES-KA"),)),
    "客服主管": ("cs", (("crm", "客服主管", "company"),)),
    "客服专员": ("cs", (("crm", "客服专员", "company"),)),
    "外包客服": ("contractor_cs", (("crm", "客服专员", "company"),)),
    "市场总监": ("mkt", (("crm", "市场专员", "company"),)),
    "市场专员": ("mkt", (("crm", "市场专员", "company"),)),
    "财务总监": ("fin_dir", (("oa", "财务总监", "company"), _FIN_CRM)),
    "财务分析师": ("finance", (_FIN_CRM,)),
    "会计主管": ("accountant", (("oa", "会计", "company"), _FIN_CRM)),
    "会计": ("accountant", (("oa", "会计", "company"), _FIN_CRM)),
    "资金经理": ("cashier", (("oa", "出纳", "company"), _FIN_CRM)),
    "出纳": ("cashier", (("oa", "出纳", "company"), _FIN_CRM)),
    "人力资源总监": ("hr", (("oa", "HRBP", "company"),)),
    "HRBP": ("hr", (("oa", "HRBP", "company"),)),
    "人事专员": ("hr", (("oa", "人事专员", "company"),)),
    "法务总监": ("legal", _LEGAL),
    "法务专员": ("legal", _LEGAL),
    "IT总监": ("it_admin", (("oa", "IT管理员", "company"),)),
    "系统管理员": ("it_admin", (("oa", "IT管理员", "company"),)),
    "CRM系统管理员": ("crm_admin", (("crm", "CRM管理员", "company"),)),
    "OA系统管理员": ("oa_admin", (("oa", "OA管理员", "company"),)),
    "开发工程师": ("it", ()),
    "运维工程师": ("it", ()),
    "采购经理": ("staff", ()),
    "采购专员": ("staff", ()),
    "行政经理": ("staff", ()),
    "行政专员": ("staff", ()),
    "前台": ("staff", ()),
}
_CONTRACTOR_POSITIONS = frozenset({"外包销售", "外包客服"})
_ROUTINE_LEAVERS = (("D-SALES-EAST", "销售代表"), ("D-SALES-SOUTH", "销售代表"),
                    ("D-SALES-KA", "大客户经理"), ("D-CS", "客服专员"), ("D-ADMIN", "行政专员"),
                    ("D-IT", "开发工程师"))
_NEW_HIRE_POSITIONS = frozenset({"销售代表", "客服专员", "市场专员", "会计", "开发工程师",
                                 "采购专员", "行政专员", "大客户经理", "人事专员"})

# --------------------------------------------------------------------------- activity menus

_C, _T, _O, _K = "crm.customer", "crm.contact", "crm.opportunity", "crm.contract"
_A, _E, _L, _D = "oa.approval", "oa.expense", "oa.leave", "oa.document"
_Entry = tuple[float, str, str, str, float]
_Menu = tuple[_Entry, ...]

# Menu entry: (weight, resource type, action, scope, share of reads asking for sensitive fields).
# Scopes: new (create), own, dept, subtree, dept_others (subtree minus own), any, other_region,
# other_dept, public, confidential_other, big (>=5000, not own), huge (>50000, not own),
# payable, fin_others (finance staff's, not own), in:<dept id> (that subtree).
_OA_BASICS = (
    (3, _E, "create", "new", 0), (3, _E, "read", "own", .1), (1, _E, "update", "own", 0),
    (1.5, _L, "create", "new", 0), (1, _L, "read", "own", 0), (1.5, _A, "create", "new", 0),
    (1.5, _A, "read", "own", 0), (3, _D, "read", "dept", 0), (2, _D, "read", "public", 0),
    (1, _D, "create", "new", 0), (1, _D, "update", "own", 0), (.5, _D, "share", "own", 0),
)
_SALES = (
    (14, _C, "read", "own", .3), (4, _C, "update", "own", 0), (2, _C, "create", "new", 0),
    (4, _C, "read", "dept", .25), (10, _T, "read", "own", .3), (3, _T, "update", "own", 0),
    (2, _T, "create", "new", 0), (6, _O, "read", "own", .2), (4, _O, "update", "own", 0),
    (1.5, _O, "create", "new", 0), (.8, _O, "close", "own", 0), (3, _K, "read", "own", .2),
    (1, _K, "create", "new", 0), (1, _K, "update", "own", 0),
    # strays a sane policy denies: another region's customers, bulk export, deletes
    (2.5, _C, "read", "other_region", .3), (.5, _C, "export", "own", 0),
    (.4, _C, "delete", "own", 0),
)
_SALES_MGR = (
    *_SALES,
    (6, _C, "read", "dept", .3), (4, _O, "read", "dept", .3), (3, _K, "read", "dept", .3),
    (.8, _C, "export", "dept", 0), (.8, _C, "transfer", "dept", 0),
)
_SALES_DIR = (
    (10, _C, "read", "subtree", .25), (8, _O, "read", "subtree", .3), (6, _K, "read", "subtree", .3),
    (3, _T, "read", "subtree", .25), (2, _O, "update", "subtree", 0),
    (1, _C, "export", "subtree", 0), (1, _C, "transfer", "subtree", 0),
)
_CS = (
    (20, _C, "read", "any", .55), (14, _T, "read", "any", .45), (2, _T, "update", "any", 0),
    (1, _C, "export", "any", 0),
)
_IT = ((4, _D, "read", "dept", 0), (2, _D, "update", "own", 0))
_MENUS: dict[str, _Menu] = {
    "sales": _SALES,
    "sales_mgr": _SALES_MGR,
    "sales_dir": _SALES_DIR,
    "contractor": (*_SALES, (3, _C, "export", "dept", 0)),
    "cs": _CS,
    "contractor_cs": (*_CS, (2, _C, "export", "any", 0)),
    "mkt": ((10, _C, "read", "any", .05), (4, _T, "read", "any", .1), (4, _D, "create", "new", 0),
            (3, _D, "update", "own", 0), (3, _D, "share", "own", 0), (1.2, _C, "export", "any", 0)),
    "finance": ((8, _K, "read", "any", .15), (8, _E, "read", "any", .1), (3, _C, "read", "any", .05)),
    "accountant": ((10, _E, "read", "any", .1), (3, _E, "update", "any", 0),
                   (4, _K, "read", "any", .1)),
    "cashier": ((8, _E, "pay", "payable", 0), (6, _E, "read", "payable", .2),
                (2, _K, "read", "any", .2)),
    "fin_dir": ((8, _E, "approve", "big", 0), (4, _K, "approve", "any", 0),
                (6, _K, "read", "any", .1), (4, _E, "read", "any", 0)),
    "legal": ((10, _K, "read", "any", .1), (5, _K, "approve", "any", 0), (2, _K, "update", "any", 0),
              (2, _C, "read", "any", .05)),
    "hr": ((10, _L, "read", "any", 0), (3, _D, "create", "new", 0), (1, _E, "read", "other_dept", 0)),
    "exec": ((6, _A, "approve", "any", 0), (1, _A, "reject", "any", 0), (3, _E, "approve", "huge", 0),
             (4, _K, "read", "any", .1), (3, _D, "read", "any", 0)),
    "auditor": ((6, _K, "read", "any", .1), (8, _E, "read", "any", .1), (3, _C, "read", "any", .1),
                (2, _D, "read", "any", 0)),
    "it": _IT,
    "it_admin": (*_IT, (.8, _D, "delete", "any", 0)),
    "crm_admin": (*_IT, (4, _C, "read", "any", 0), (1.5, _T, "delete", "any", 0),
                  (1, _C, "export", "any", 0), (1, _C, "transfer", "any", 0),
                  (.5, _C, "delete", "any", 0)),
    "oa_admin": (*_IT, (2, _D, "delete", "any", 0), (4, _D, "read", "any", 0)),
    "staff": ((.8, _D, "read", "confidential_other", 0), (.8, _E, "read", "other_dept", 0)),
}
_HEAD_MENU = (
    (3, _E, "approve", "dept_others", 0), (3, _L, "approve", "dept_others", 0),
    (2, _A, "approve", "dept_others", 0), (.4, _A, "reject", "dept_others", 0),
    (2, _E, "read", "dept_others", 0), (1, _L, "read", "dept_others", 0),
)
# Requests per working day by profile; scaled afterwards so the total lands on _TARGET_EVENTS.
_RATES = {"sales": 3.0, "sales_mgr": 3.0, "sales_dir": 2.4, "contractor": 2.4, "cs": 3.4,
          "contractor_cs": 3.0, "mkt": 1.6, "finance": 1.6, "accountant": 1.8, "cashier": 1.6,
          "fin_dir": 1.6, "legal": 1.6, "hr": 1.1, "exec": 1.0, "auditor": 1.5, "it": .7,
          "it_admin": .9, "crm_admin": 1.0, "oa_admin": 1.0, "staff": .8}
_HEAD_BONUS = .5
_WEEKEND_FACTOR = .04
_TARGET_EVENTS = 25_000
_HOURS = tuple(range(9, 19))
_HOUR_CUM = tuple(accumulate((6, 10, 10, 5, 7, 10, 10, 9, 6, 3)))
_FIELD_CHOICES = {
    _C: (("phone",), ("phone",), ("phone", "id_number"), ("credit_limit",), ("phone", "credit_limit")),
    _T: (("phone",), ("phone", "email"), ("wechat",), ("phone", "wechat")),
    _O: (("amount",),),
    _K: (("amount",), ("amount", "bank_account"), ("bank_account",)),
    _E: (("bank_account",),),
}
# Planted behaviour on top of the normal menus.
_SOD_CONTRACT_EXTRAS = ((2, _K, "approve", "any", 0), (1.5, _K, "create", "new", 0))
_SOD_EXPENSE_EXTRAS = ((4, _E, "approve", "fin_others", 0), (2, _E, "create", "new", 0))
_OUTLIER_EXTRAS = ((5, _C, "read", "in:D-SALES-NORTH", .3), (2, _O, "read", "in:D-SALES-NORTH", 0),
                   (2, _K, "read", "any", .3))
_MOVER_EXTRAS = ((9, _C, "read", "in:D-SALES-EAST", .3), (2, _C, "update", "in:D-SALES-EAST", 0),
                 (3, _T, "read", "in:D-SALES-EAST", .3))
_EAST_LEAD_EXTRAS = ((4, _C, "read", "in:D-SALES-EAST", .1), (1, _T, "read", "in:D-SALES-EAST", .1))
_AFTER_EXIT_MENU = ((1, _C, "read", "dept", .8), (1, _T, "read", "dept", .8), (.4, _C, "export", "dept", 0))
_DELEGATE_MENU = ((1, _L, "approve", "dept_others", 0), (1, _E, "approve", "dept_others", 0))

# --------------------------------------------------------------------------- records

_COUNTS = {_C: 600, _T: 900, _O: 300, _K: 150, _E: 400, _L: 300, _A: 150, _D: 200}
_PREFIX = {_C: "CUS", _T: "CTT", _O: "OPP", _K: "CTR", _E: "EXP", _L: "LEV", _A: "APV", _D: "DOC"}
_SELLER_WEIGHT = {"sales": 1.0, "sales_mgr": .7, "sales_dir": .25, "contractor": .4}
_ALL_CITIES = tuple(c for region in N.CITIES.values() for c in region)
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_Meta = dict[str, tuple[str, str, bool]]  # customer id -> (short name, e-mail domain stem, key account)

# CRM logins nobody owns: (local_id, display name, days since last login, source role, scope).
_ORPHANS = (
    ("test01", "测试账号", 2, "销售代表", "D-SALES-EAST"),
    ("sales_temp", "销售部临时账号", 18, "销售代表", "D-SALES-SOUTH"),
    ("hxsoft_impl", "华信软件-实施顾问", 140, "CRM管理员", None),
    ("kefu", "客服公共账号", 1, "客服专员", None),
)
_EXPIRING_GRANT_DAYS = (-50, 10)


# --------------------------------------------------------------------------- internal state

@dataclass
class _Draft:
    """Mutable person while the lifecycle (leavers, movers, hires) is still being planned."""
    id: str
    name: str
    pinyin: tuple[str, str]
    department_id: str
    position: str
    is_head: bool
    hired_on: date
    mobile: str
    idp_subject: str
    status: str = "active"
    left_on: date | None = None
    manager_id: str | None = None
    employee_no: str = ""
    email: str = ""


@dataclass
class _Plan:
    """Who carries which planted problem (plus a few benign specials)."""
    leavers: list[str]          # [1] keeps using the CRM after leaving
    mover: str
    delegate: str               # east sales manager covering for the region head
    ka_grantee: str
    sod: list[str]              # [mgr + CRM 法务专员, mgr + finance_director grant, 会计 + grant]
    unused_admins: list[str]    # [CRM管理员 source role, direct oa_admin grant]
    active_crm_admin: str
    peer_outlier: str
    dormant: list[str]
    expired_grantee: str
    expiring_grantee: str
    acting_cs_lead: str
    hr_deputy: str
    other_leavers: list[str]
    disabled: list[str]
    new_hires: list[str]
    moved_on: date


@dataclass(frozen=True)
class _RoleSpec:
    system: str
    role: str
    department_id: str | None
    include_subtree: bool
    valid_from: date
    valid_until: date | None = None


@dataclass(frozen=True)
class _Phase:
    """A stretch of days in which one person behaves one way."""
    start: date
    end: date                   # exclusive
    dept_id: str
    rate: float
    entries: _Menu
    cum: tuple[float, ...]


class _Ctx:
    """Shared state while building one org."""

    def __init__(self, today: date, seed: int) -> None:
        self.today = today
        self.seed = seed
        self.window_start = today - timedelta(days=HISTORY_DAYS)
        self.departments = [DemoDepartment(i, code, name, parent, str(1001 + n), str(50 + n))
                            for n, (i, code, name, parent) in enumerate(_DEPARTMENTS)]
        self.dept = {d.id: d for d in self.departments}
        self.people: list[DemoPerson] = []
        self.person: dict[str, DemoPerson] = {}
        self.pinyin: dict[str, tuple[str, str]] = {}
        self.heads: set[str] = set()
        self.head: dict[str, str] = {}
        self.profile: dict[str, str] = {}
        self.plan: _Plan  # set by build_demo_org once the people are drafted
        self.delegations: list[DemoDelegation] = []
        self._subtrees: dict[str, frozenset[str]] = {}

    def rng(self, stream: str) -> random.Random:
        return random.Random(f"{self.seed}:{stream}")

    def day(self, offset: int) -> date:
        return self.today + timedelta(days=offset)

    def subtree(self, dept_id: str) -> frozenset[str]:
        if dept_id not in self._subtrees:
            found, frontier = {dept_id}, [dept_id]
            while frontier:
                parent = frontier.pop()
                kids = [d.id for d in self.departments if d.parent_id == parent]
                found.update(kids)
                frontier.extend(kids)
            self._subtrees[dept_id] = frozenset(found)
        return self._subtrees[dept_id]


# --------------------------------------------------------------------------- entry point

def build_demo_org(*, today: date, seed: int = 20261125) -> DemoOrg:
    """Build the whole demo company deterministically from ``seed`` as of ``today``."""
    ctx = _Ctx(today, seed)
    drafts = _draft_people(ctx)
    ctx.plan = _plan_people(ctx, drafts)
    _apply_plan(ctx, drafts)
    _finish_people(ctx, drafts)
    specs = _role_specs(ctx)
    crm_logins, oa_ids = _assign_logins(ctx, specs)
    source_roles = _source_roles(ctx, specs, crm_logins, oa_ids)
    ctx.delegations = _delegations(ctx)
    records = _records(ctx)
    activity = _activity(ctx, records)
    accounts = _accounts(ctx, crm_logins, oa_ids, activity)
    orphan_accounts, orphan_roles = _orphans(ctx)
    return DemoOrg(
        today=today, departments=list(ctx.departments), people=list(ctx.people),
        accounts=accounts + orphan_accounts, source_roles=source_roles + orphan_roles,
        grants=_grants(ctx), delegations=list(ctx.delegations), records=records,
        activity=activity, anomalies=_anomalies(ctx, crm_logins),
    )


# --------------------------------------------------------------------------- people

class _NameMaker:
    """Draws realistic Chinese names and unique mobile numbers from one RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used_names: set[str] = set()
        self.used_mobiles: set[str] = set()
        self._cum = tuple(accumulate(w for _, _, w in N.SURNAMES))

    def any_name(self) -> tuple[str, str, str]:
        """(name, surname pinyin, given-name pinyin); names may repeat."""
        surname, surname_py, _ = self.rng.choices(N.SURNAMES, cum_weights=self._cum)[0]
        chars = self.rng.sample(N.GIVEN_CHARS, 1 if self.rng.random() < .3 else 2)
        return surname + "".join(c for c, _ in chars), surname_py, "".join(p for _, p in chars)

    def unique_name(self) -> tuple[str, str, str]:
        while True:
            got = self.any_name()
            if got[0] not in self.used_names:
                self.used_names.add(got[0])
                return got

    def mobile(self) -> str:
        """An 11-digit mainland mobile number, unique per maker."""
        while True:
            number = self.rng.choice(N.MOBILE_PREFIXES) + f"{self.rng.randrange(10 ** 8):08d}"
            if number not in self.used_mobiles:
                self.used_mobiles.add(number)
                return number


def _between(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, max(0, (last - first).days)))


def _draft_people(ctx: _Ctx) -> list[_Draft]:
    rng = ctx.rng("people")
    maker = _NameMaker(rng)
    drafts: list[_Draft] = []
    for dept_id, staffing in _STAFFING.items():
        for rank, (position, count) in enumerate(staffing):
            for _ in range(count):
                drafts.append(_new_draft(ctx, maker, len(drafts) + 1, dept_id, position, rank == 0))
    return drafts


def _new_draft(ctx: _Ctx, maker: _NameMaker, n: int, dept_id: str, position: str,
               is_head: bool) -> _Draft:
    rng = maker.rng
    name, surname_py, given_py = maker.unique_name()
    first = date(2010, 3, 1) if is_head else date(2013, 1, 1)
    last = date(2019, 12, 31) if is_head else ctx.day(-120)
    return _Draft(
        id=f"P{n:05d}", name=name, pinyin=(surname_py, given_py), department_id=dept_id,
        position=position, is_head=is_head, hired_on=_between(rng, first, last),
        mobile="+86 " + maker.mobile(),
        idp_subject="idp|" + uuid.UUID(int=rng.getrandbits(128), version=4).hex,
    )


class _Picker:
    """Picks distinct non-head people by department and position."""

    def __init__(self, rng: random.Random, drafts: list[_Draft]) -> None:
        self.rng = rng
        self.drafts = drafts
        self.taken: set[str] = set()

    def one(self, dept_id: str, position: str) -> str:
        return self._take([d for d in self.drafts
                           if d.department_id == dept_id and d.position == position])

    def among(self, positions: frozenset[str]) -> str:
        return self._take([d for d in self.drafts if d.position in positions])

    def _take(self, pool: list[_Draft]) -> str:
        chosen = self.rng.choice([d for d in pool if not d.is_head and d.id not in self.taken])
        self.taken.add(chosen.id)
        return chosen.id


def _plan_people(ctx: _Ctx, drafts: list[_Draft]) -> _Plan:
    pick = _Picker(ctx.rng("anomalies"), drafts)
    one = pick.one
    crm_admins = [one("D-IT", "CRM系统管理员"), one("D-IT", "CRM系统管理员")]
    return _Plan(
        leavers=[one("D-SALES-EAST", "销售代表"), one("D-SALES-NORTH", "销售代表"),
                 one("D-CS", "客服专员")],
        mover=one("D-SALES-EAST", "销售经理"),
        delegate=one("D-SALES-EAST", "销售经理"),
        ka_grantee=one("D-SALES-EAST", "销售经理"),
        sod=[one("D-SALES-NORTH", "销售经理"), one("D-SALES-SOUTH", "销售经理"),
             one("D-FIN-ACCT", "会计")],
        unused_admins=[crm_admins[0], one("D-IT", "运维工程师")],
        active_crm_admin=crm_admins[1],
        peer_outlier=one("D-SALES-WEST", "销售代表"),
        dormant=[one("D-SALES-WEST", "销售代表"), one("D-PROC", "采购专员"),
                 one("D-ADMIN", "行政专员")],
        expired_grantee=one("D-FIN", "财务分析师"),
        expiring_grantee=one("D-MKT", "市场专员"),
        acting_cs_lead=one("D-CS", "客服专员"),
        hr_deputy=one("D-HR", "HRBP"),
        other_leavers=[one(dept, position) for dept, position in _ROUTINE_LEAVERS],
        disabled=[one("D-SALES-SOUTH", "销售代表"), one("D-HR", "人事专员")],
        new_hires=[pick.among(_NEW_HIRE_POSITIONS) for _ in range(8)],
        moved_on=ctx.day(-30),
    )


def _apply_plan(ctx: _Ctx, drafts: list[_Draft]) -> None:
    rng, plan, by_id = ctx.rng("lifecycle"), ctx.plan, {d.id: d for d in drafts}
    for pid, (lo, hi) in zip(plan.leavers, ((10, 20), (30, 40), (50, 60)), strict=True):
        _leave(rng, by_id[pid], ctx.day(-rng.randint(lo, hi)))
    for pid in plan.other_leavers:
        _leave(rng, by_id[pid], ctx.day(-rng.randint(5, 300)))
    for pid in plan.disabled:
        by_id[pid].status = "disabled"
        _hired_before(rng, by_id[pid], ctx.day(-400))
    for pid in plan.new_hires:
        by_id[pid].hired_on = ctx.day(-rng.randint(14, 60))
    # Anomaly subjects need a history that predates the 90-day window.
    veterans = [plan.mover, plan.delegate, plan.ka_grantee, plan.peer_outlier, plan.expired_grantee,
                plan.expiring_grantee, *plan.sod, *plan.unused_admins, *plan.dormant]
    for pid in veterans:
        _hired_before(rng, by_id[pid], ctx.day(-400))
    mover = by_id[plan.mover]
    mover.department_id, mover.position = "D-MKT", "市场专员"


def _leave(rng: random.Random, draft: _Draft, left_on: date) -> None:
    draft.status, draft.left_on = "left", left_on
    _hired_before(rng, draft, left_on - timedelta(days=180))


def _hired_before(rng: random.Random, draft: _Draft, limit: date) -> None:
    if draft.hired_on > limit:
        draft.hired_on = limit - timedelta(days=rng.randint(0, 900))


def _finish_people(ctx: _Ctx, drafts: list[_Draft]) -> None:
    heads = {d.department_id: d.id for d in drafts if d.is_head}
    heads["D-HQ"] = heads["D-MGMT"]  # the CEO heads the company as a whole
    ctx.head = heads
    per_year: dict[int, int] = defaultdict(int)
    emails: set[str] = set()
    for d in drafts:
        d.manager_id = _manager_of(ctx, d, heads)
        per_year[d.hired_on.year] += 1
        d.employee_no = f"E{d.hired_on.year}{per_year[d.hired_on.year]:03d}"
        d.email = _unique_email(d.pinyin, emails)
    ctx.people = [DemoPerson(d.id, d.employee_no, d.name, d.email, d.mobile, d.department_id,
                             d.position, d.manager_id, d.status, d.hired_on, d.left_on,
                             d.idp_subject) for d in drafts]
    ctx.person = {p.id: p for p in ctx.people}
    ctx.pinyin = {d.id: d.pinyin for d in drafts}
    ctx.heads = {d.id for d in drafts if d.is_head}
    ctx.profile = {d.id: _POSITIONS[d.position][0] for d in drafts}


def _manager_of(ctx: _Ctx, draft: _Draft, heads: dict[str, str]) -> str | None:
    """Members report to their head; a head reports to the nearest head above (CEO: nobody)."""
    dept = ctx.dept[draft.department_id].parent_id if draft.is_head else draft.department_id
    while dept is not None:
        boss = heads.get(dept)
        if boss is not None and boss != draft.id:
            return boss
        dept = ctx.dept[dept].parent_id
    return None


def _unique_email(pinyin: tuple[str, str], used: set[str]) -> str:
    base, n = f"{pinyin[0]}.{pinyin[1]}", 1
    local = base
    while local in used:
        n += 1
        local = f"{base}{n}"
    used.add(local)
    return f"{local}@{EMAIL_DOMAIN}"


# --------------------------------------------------------------------------- roles and accounts

def _role_specs(ctx: _Ctx) -> dict[str, list[_RoleSpec]]:
    specs = {p.id: _base_specs(ctx, p) for p in ctx.people}
    for pid, extra in _planted_specs(ctx).items():
        specs[pid].extend(extra)
    return specs


def _base_specs(ctx: _Ctx, p: DemoPerson) -> list[_RoleSpec]:
    since = ctx.plan.moved_on if p.id == ctx.plan.mover else p.hired_on
    wanted = [("oa", "外包人员" if p.position in _CONTRACTOR_POSITIONS else "普通员工", "dept")]
    if p.id in ctx.heads:
        wanted.append(("oa", "部门经理", "subtree"))
    wanted.extend(_POSITIONS[p.position][1])
    return [_RoleSpec(system, role, *_scope(scope, p.department_id), since)
            for system, role, scope in wanted]


def _scope(scope: str, dept_id: str) -> tuple[str | None, bool]:
    if scope == "company":
        return None, False
    if scope == "dept":
        return dept_id, False
    if scope == "subtree":
        return dept_id, True
    return scope, False


def _planted_specs(ctx: _Ctx) -> dict[str, list[_RoleSpec]]:
    plan, mover = ctx.plan, ctx.person[ctx.plan.mover]
    since = ctx.day(-210)
    return {
        # The CRM never dropped the mover's old regional role when HR moved them.
        plan.mover: [_RoleSpec("crm", "销售经理", "D-SALES-EAST", False, mover.hired_on)],
        # "Helping legal" lets this sales manager draft and sign off the same contract.
        plan.sod[0]: [_RoleSpec("crm", "法务专员", None, False, ctx.day(-150))],
        plan.peer_outlier: [_RoleSpec("crm", "大区总监", "D-SALES-NORTH", True, since),
                            _RoleSpec("crm", "财务专员", None, False, since)],
        # Benign: a temporary acting lead while the CS head is on leave.
        plan.acting_cs_lead: [_RoleSpec("crm", "客服主管", None, False, ctx.day(-20), ctx.day(40))],
    }


def _assign_logins(ctx: _Ctx, specs: dict[str, list[_RoleSpec]]
                   ) -> tuple[dict[str, str], dict[str, str]]:
    rng = ctx.rng("logins")
    crm: dict[str, str] = {}
    oa: dict[str, str] = {}
    used = {o[0] for o in _ORPHANS}
    next_oa = 1000
    for p in ctx.people:
        next_oa += rng.randint(1, 3)  # OA ids have gaps: deleted test users, imports
        oa[p.id] = str(next_oa)
        if any(s.system == "crm" for s in specs[p.id]):
            base, n = "".join(ctx.pinyin[p.id]), 1
            while f"{base}{n:02d}" in used:
                n += 1
            crm[p.id] = f"{base}{n:02d}"
            used.add(crm[p.id])
    return crm, oa


def _source_roles(ctx: _Ctx, specs: dict[str, list[_RoleSpec]], crm: dict[str, str],
                  oa: dict[str, str]) -> list[DemoSourceRole]:
    # Disabled accounts keep their assignments: that is what the source systems report.
    return [DemoSourceRole(s.system, crm[p.id] if s.system == "crm" else oa[p.id], s.role,
                           s.department_id, s.include_subtree, s.valid_from, s.valid_until)
            for p in ctx.people for s in specs[p.id]]


def _grants(ctx: _Ctx) -> list[DemoGrant]:
    plan, head, day = ctx.plan, ctx.head, ctx.day
    last_month = ctx.today.replace(day=1) - timedelta(days=10)
    exp_from, exp_until = (day(n) for n in _EXPIRING_GRANT_DAYS)
    return [
        DemoGrant(plan.expired_grantee, "auditor", None, False, head["D-FIN"],
                  "配合年度外部审计，临时查看合同与费用", last_month - timedelta(days=60), last_month),
        DemoGrant(plan.expiring_grantee, "sales", "D-SALES-EAST", True, head["D-SALES"],
                  "新品推广期间协同跟进华东线索", exp_from, exp_until),
        DemoGrant(plan.ka_grantee, "key_account_manager", "D-SALES-KA", False, head["D-SALES"],
                  "战略客户联合跟进项目", day(-45), day(120)),
        DemoGrant(head["D-ADMIN"], "hr", None, False, head["D-HR"],
                  "年会筹备期间核对员工信息", day(-12), day(90)),
        DemoGrant(plan.sod[1], "finance_director", None, False, head["D-MGMT"],
                  "季度末合同集中审批提速（临时授权，未设到期日）", day(-160), None),
        DemoGrant(plan.sod[2], "finance_director", None, False, head["D-FIN"],
                  "财务总监休假期间代为审批费用（事后未回收）", day(-120), None),
        DemoGrant(plan.unused_admins[1], "oa_admin", None, False, head["D-IT"],
                  "OA系统升级项目期间协助配置流程", day(-200), None),
    ]


def _delegations(ctx: _Ctx) -> list[DemoDelegation]:
    head, day = ctx.head, ctx.day
    return [
        DemoDelegation(head["D-SALES-EAST"], ctx.plan.delegate, "dept_manager", day(-6), day(4),
                       "大区总监休年假期间代为审批请假和费用"),
        DemoDelegation(head["D-FIN"], head["D-FIN-ACCT"], "finance_director", day(-40), day(-30),
                       "财务总监出差期间代为审批大额费用"),
        DemoDelegation(head["D-HR"], ctx.plan.hr_deputy, "hr", day(5), day(12),
                       "人力资源总监外出培训期间代理人事审批"),
    ]


def _accounts(ctx: _Ctx, crm: dict[str, str], oa: dict[str, str],
              activity: list[DemoActivity]) -> list[DemoAccount]:
    rng = ctx.rng("accounts")
    seen = _last_seen(ctx, rng, activity)
    out: list[DemoAccount] = []
    for p in ctx.people:
        out.append(_account(ctx, rng, seen, p, "idp", p.idp_subject))
        out.append(_account(ctx, rng, seen, p, "oa", oa[p.id]))
        if p.id in crm:
            out.append(_account(ctx, rng, seen, p, "crm", crm[p.id]))
    return out


def _account(ctx: _Ctx, rng: random.Random, seen: dict[tuple[str, str], datetime], p: DemoPerson,
             system: str,
             local_id: str) -> DemoAccount:
    # Planted: HR off-boarded these leavers in the IdP and OA but nobody told the CRM.
    active = p.status == "active" or (system == "crm" and p.id in ctx.plan.leavers)
    last = seen.get((p.id, system)) or _fallback_login(ctx, rng, p)
    reported: tuple[str | None, str | None, str | None]
    if system == "crm":  # the CRM stores bare numbers and often lacks the employee number
        reported = (None if rng.random() < .2 else p.employee_no, p.mobile.removeprefix("+86 "),
                    p.email)
    elif system == "oa":
        reported = (p.employee_no, p.mobile, None if rng.random() < .1 else p.email)
    else:
        reported = (p.employee_no, p.mobile, p.email)
    employee_no, mobile, email = reported
    return DemoAccount(system, local_id, p.id, "active" if active else "disabled", last,
                       employee_no, mobile, email, p.name)


def _last_seen(ctx: _Ctx, rng: random.Random, activity: list[DemoActivity]
               ) -> dict[tuple[str, str], datetime]:
    """(person, system) -> login time: shortly before the first request of the last active day."""
    first_of_day: dict[tuple[str, str], datetime] = {}
    for a in activity:
        left_on = ctx.person[a.person_id].left_on
        keys = [(a.person_id, a.resource_type.split(".")[0])]
        if left_on is None or a.at.date() < left_on:  # the IdP was switched off on exit
            keys.append((a.person_id, "idp"))
        for key in keys:
            current = first_of_day.get(key)
            if current is None or current.date() != a.at.date():
                first_of_day[key] = a.at
    return {k: v - timedelta(minutes=rng.randint(2, 25)) for k, v in first_of_day.items()}


def _fallback_login(ctx: _Ctx, rng: random.Random, p: DemoPerson) -> datetime:
    if p.left_on is not None:
        return _clock(rng, p.left_on - timedelta(days=rng.randint(1, 5)))
    if p.id in ctx.plan.dormant:
        back = rng.randint(95, 200)  # planted: nobody has logged in for months
    elif p.status == "disabled":
        back = rng.randint(150, 300)
    else:
        back = rng.randint(1, 20)  # logged in, but made no request we recorded
    return _clock(rng, ctx.day(-back))


def _orphans(ctx: _Ctx) -> tuple[list[DemoAccount], list[DemoSourceRole]]:
    rng = ctx.rng("orphans")
    accounts, roles = [], []
    for local_id, display, days, role, dept in _ORPHANS:
        email = f"{local_id}@{EMAIL_DOMAIN}" if local_id == "kefu" else None
        accounts.append(DemoAccount("crm", local_id, None, "active", _clock(rng, ctx.day(-days)),
                                    None, None, email, display))
        roles.append(DemoSourceRole("crm", local_id, role, dept, False,
                                    ctx.day(-rng.randint(200, 800)), None))
    return accounts, roles


# --------------------------------------------------------------------------- records

def _records(ctx: _Ctx) -> list[DemoRecord]:
    rng = ctx.rng("records")
    maker = _NameMaker(rng)
    sellers = [p for p in ctx.people
               if p.status == "active" and ctx.profile[p.id] in _SELLER_WEIGHT]
    weights = [_SELLER_WEIGHT[ctx.profile[p.id]] for p in sellers]
    customers, meta = _customers(rng, sellers, weights)
    records = list(customers)
    for n in range(1, _COUNTS[_T] + 1):
        records.append(_contact(rng, maker, n, rng.choice(customers), meta))
    for n in range(1, _COUNTS[_O] + 1):
        records.append(_opportunity(rng, n, rng.choice(customers), meta))
    for n in range(1, _COUNTS[_K] + 1):
        records.append(_contract(ctx, rng, n, rng.choice(customers), meta))
    return records + _oa_records(ctx, rng)


def _customers(rng: random.Random, sellers: list[DemoPerson], weights: list[float]
               ) -> tuple[list[DemoRecord], _Meta]:
    used: set[str] = set()
    out: list[DemoRecord] = []
    meta: _Meta = {}
    for n, owner in enumerate(rng.choices(sellers, weights, k=_COUNTS[_C]), 1):
        region = _REGION_CODE.get(owner.department_id)
        city, area, admin = rng.choice(N.CITIES[region] if region else _ALL_CITIES)
        name, brand, brand_py = _company_name(rng, city, region is None, used)
        cid = f"CUS-{n:06d}"
        meta[cid] = (city + brand, brand_py, region is None)
        scale = 5 if region is None else 1  # key accounts are bigger
        props = {"name": name, "phone": _landline(rng, area), "id_number": _uscc(rng, admin),
                 "credit_limit": scale * rng.choice((50_000, 100_000, 200_000, 300_000, 500_000,
                                                     1_000_000)),
                 "level": rng.choices("ABC", (60, 30, 10) if region is None else (20, 45, 35))[0],
                 "status": "lost" if rng.random() < .1 else "active"}
        out.append(DemoRecord(_C, cid, owner.id, owner.department_id, props))
    return out, meta


def _company_name(rng: random.Random, city: str, key_account: bool, used: set[str]
                  ) -> tuple[str, str, str]:
    while True:
        brand, brand_py = rng.choice(N.BRANDS)
        suffix = "集团股份有限公司" if key_account and rng.random() < .5 else "有限公司"
        name = f"{city}{brand}{rng.choice(N.INDUSTRIES)}{suffix}"
        if name not in used:
            used.add(name)
            return name, brand, brand_py


def _landline(rng: random.Random, area: str) -> str:
    digits = 8 if len(area) == 3 else 7
    return f"{area}-{rng.randint(2, 8)}{rng.randrange(10 ** (digits - 1)):0{digits - 1}d}"


def _uscc(rng: random.Random, admin_code: str) -> str:
    """A unified social credit code (GB 32100) with valid org-code and final check characters."""
    body = [rng.randrange(10) for _ in range(8)]
    org_check = 11 - sum(v * w for v, w in zip(body, _ORG_CODE_WEIGHTS, strict=True)) % 11
    org_char = {10: "X", 11: "0"}.get(org_check, str(org_check))
    code17 = "91" + admin_code + "".join(map(str, body)) + org_char
    total = sum(_USCC_CHARS.index(ch) * w for ch, w in zip(code17, _USCC_WEIGHTS, strict=True))
    return code17 + _USCC_CHARS[(31 - total % 31) % 31]


def _bank_account(rng: random.Random) -> str:
    return rng.choice(N.BANK_PREFIXES) + f"{rng.randrange(10 ** 13):013d}"


def _contact(rng: random.Random, maker: _NameMaker, n: int, customer: DemoRecord,
             meta: _Meta) -> DemoRecord:
    name, surname_py, given_py = maker.any_name()
    wechat = (f"wxid_{rng.getrandbits(40):010x}" if rng.random() < .5
              else f"{surname_py}{given_py}{rng.randint(1, 999)}")
    props = {"name": name, "phone": maker.mobile(),
             "email": f"{surname_py}.{given_py}@{meta[customer.id][1]}.com.cn",
             "wechat": wechat, "customer_id": customer.id}
    return DemoRecord(_T, f"CTT-{n:06d}", customer.owner_id, customer.department_id, props)


def _opportunity(rng: random.Random, n: int, customer: DemoRecord, meta: _Meta) -> DemoRecord:
    short, _, key_account = meta[customer.id]
    amount = rng.randrange(30_000, 800_000, 1_000) * (4 if key_account else 1)
    props = {"name": f"{short}{rng.choice(N.PRODUCTS)}项目", "amount": amount,
             "stage": rng.choices(("lead", "qualified", "proposal", "won", "lost"),
                                  (25, 25, 25, 15, 10))[0],
             "customer_id": customer.id}
    return DemoRecord(_O, f"OPP-{n:06d}", customer.owner_id, customer.department_id, props)


def _contract(ctx: _Ctx, rng: random.Random, n: int, customer: DemoRecord, meta: _Meta
              ) -> DemoRecord:
    short, _, key_account = meta[customer.id]
    props = {"name": f"{short}{ctx.today.year}年度{rng.choice(N.PRODUCTS)}合同",
             "amount": rng.randrange(20_000, 600_000, 100) * (5 if key_account else 1),
             "status": rng.choices(("draft", "submitted", "approved", "signed"), (15, 20, 20, 45))[0],
             "customer_id": customer.id, "bank_account": _bank_account(rng)}
    return DemoRecord(_K, f"CTR-{n:06d}", customer.owner_id, customer.department_id, props)


def _oa_records(ctx: _Ctx, rng: random.Random) -> list[DemoRecord]:
    # Dormant people and contractors file nothing; sellers travel, so they file more expenses.
    staff = [p for p in ctx.people if p.status == "active" and p.id not in ctx.plan.dormant
             and p.position not in _CONTRACTOR_POSITIONS]
    makers = ((_E, _expense), (_L, _leave_request), (_A, _approval), (_D, _document))
    out = []
    for rtype, make in makers:
        weights = [2 if rtype == _E and ctx.profile[p.id] in _SELLER_WEIGHT else 1 for p in staff]
        owners = rng.choices(staff, weights, k=_COUNTS[rtype])
        out += [DemoRecord(rtype, f"{_PREFIX[rtype]}-{n:06d}", o.id, o.department_id,
                           make(ctx, rng, o)) for n, o in enumerate(owners, 1)]
    return out


def _expense(ctx: _Ctx, rng: random.Random, _owner: DemoPerson) -> dict[str, Any]:
    roll = rng.random()
    if roll < .03:
        amount, kind = rng.randrange(50_001, 180_000), rng.choice(N.LARGE_EXPENSE_KINDS)
    elif roll < .2:
        amount = rng.randrange(5_000, 50_001)
        kind = rng.choice((*N.LARGE_EXPENSE_KINDS, "差旅报销", "客户招待"))
    else:
        amount, kind = rng.randrange(80, 5_000), rng.choice(N.EXPENSE_KINDS)
    month = ctx.day(-rng.randint(0, HISTORY_DAYS)).month
    status = rng.choices(("draft", "submitted", "approved", "paid"), (10, 25, 25, 40))[0]
    return {"title": f"{kind}-{month}月", "amount": amount, "status": status,
            "bank_account": _bank_account(rng)}


def _leave_request(_ctx: _Ctx, rng: random.Random, _owner: DemoPerson) -> dict[str, Any]:
    return {"days": rng.choices((1, 2, 3, 5, 7, 10), (30, 25, 20, 12, 8, 5))[0],
            "kind": rng.choices(("年假", "病假", "事假"), (55, 25, 20))[0],
            "status": rng.choices(("pending", "approved"), (20, 80))[0]}


def _approval(_ctx: _Ctx, rng: random.Random, _owner: DemoPerson) -> dict[str, Any]:
    kind = rng.choice(tuple(N.APPROVAL_TITLES))
    return {"title": f"{kind}：{rng.choice(N.APPROVAL_TITLES[kind])}", "kind": kind,
            "status": rng.choices(("pending", "approved", "rejected"), (30, 60, 10))[0]}


def _document(ctx: _Ctx, rng: random.Random, owner: DemoPerson) -> dict[str, Any]:
    title = f"{ctx.dept[owner.department_id].name}-{ctx.today.year}年{rng.choice(N.DOCUMENT_TITLES)}"
    return {"title": title,
            "classification": rng.choices(("public", "internal", "confidential"), (30, 55, 15))[0]}


# --------------------------------------------------------------------------- activity

class _Pools:
    """Record lists by access pattern, cached: the activity loop asks the same questions a lot."""

    _PERSONAL = frozenset({"dept_others", "big", "huge", "fin_others"})

    def __init__(self, ctx: _Ctx, records: list[DemoRecord]) -> None:
        self.ctx = ctx
        self.by_type: dict[str, list[DemoRecord]] = defaultdict(list)
        self.by_owner: dict[tuple[str, str], list[DemoRecord]] = defaultdict(list)
        for r in records:
            self.by_type[r.type].append(r)
            self.by_owner[(r.type, r.owner_id)].append(r)
        self.cache: dict[tuple[str, str, str | None, str], list[DemoRecord]] = {}

    def get(self, rtype: str, scope: str, pid: str, dept_id: str) -> list[DemoRecord]:
        if scope == "own":
            return self.by_owner.get((rtype, pid), [])
        key = (rtype, scope, pid if scope in self._PERSONAL else None, dept_id)
        if key not in self.cache:
            test = self._test(scope, pid, dept_id)
            self.cache[key] = [r for r in self.by_type[rtype] if test(r)]
        return self.cache[key]

    def _test(self, scope: str, pid: str, dept_id: str) -> Callable[[DemoRecord], bool]:
        if scope.startswith("in:"):
            inside = self.ctx.subtree(scope[3:])
            return lambda r: r.department_id in inside
        mine, fin = self.ctx.subtree(dept_id), self.ctx.subtree("D-FIN")
        return {
            "any": lambda _r: True,
            "dept": lambda r: r.department_id == dept_id,
            "subtree": lambda r: r.department_id in mine,
            "dept_others": lambda r: r.department_id in mine and r.owner_id != pid,
            "other_dept": lambda r: r.department_id != dept_id,
            "other_region": lambda r: r.department_id in _REGION_CODE and r.department_id != dept_id,
            "public": lambda r: r.properties["classification"] == "public",
            "confidential_other": lambda r: (r.properties["classification"] == "confidential"
                                             and r.department_id != dept_id),
            "big": lambda r: r.properties["amount"] >= 5_000 and r.owner_id != pid,
            "huge": lambda r: r.properties["amount"] > 50_000 and r.owner_id != pid,
            "payable": lambda r: r.properties["status"] in ("approved", "paid"),
            "fin_others": lambda r: r.department_id in fin and r.owner_id != pid,
        }[scope]


def _activity(ctx: _Ctx, records: list[DemoRecord]) -> list[DemoActivity]:
    rng = ctx.rng("activity")
    pools = _Pools(ctx, records)
    phases = {p.id: _phases(ctx, p) for p in ctx.people}
    expected = sum(ph.rate * _day_weight(ph.start, ph.end) for phs in phases.values() for ph in phs)
    scale = _TARGET_EVENTS / max(expected, 1.0)
    events: list[DemoActivity] = []
    for p in ctx.people:
        for ph in phases[p.id]:
            events += _phase_events(rng, pools, p.id, ph, scale)
    events += _after_exit_events(ctx, rng, pools) + _delegate_events(ctx, rng, pools)
    events += _guaranteed_events(ctx, rng, pools, phases, events)
    events.sort(key=lambda a: (a.at, a.person_id))
    return events


def _phases(ctx: _Ctx, p: DemoPerson) -> list[_Phase]:
    plan = ctx.plan
    if p.status == "disabled" or p.id in plan.dormant:
        return []  # planted for the dormant ones: not a single request in 90 days
    start, end = max(ctx.window_start, p.hired_on), p.left_on or ctx.today
    profile = ctx.profile[p.id]
    if p.id == plan.mover:  # a sales manager in 华东 until the move, marketing afterwards
        phases = [_phase(ctx, p, start, plan.moved_on, "sales_mgr", "D-SALES-EAST", ()),
                  _phase(ctx, p, plan.moved_on, end, profile, p.department_id, _MOVER_EXTRAS)]
    elif p.id == plan.expiring_grantee:  # starts reading 华东 customers once granted
        granted = ctx.day(_EXPIRING_GRANT_DAYS[0])
        phases = [_phase(ctx, p, start, granted, profile, p.department_id, ()),
                  _phase(ctx, p, granted, end, profile, p.department_id, _EAST_LEAD_EXTRAS)]
    else:
        phases = [_phase(ctx, p, start, end, profile, p.department_id, _person_extras(plan, p.id))]
    return [ph for ph in phases if ph.start < ph.end]


def _person_extras(plan: _Plan, pid: str) -> _Menu:
    if pid in plan.sod[:2]:
        extra = ((3, _E, "approve", "big", 0),) if pid == plan.sod[1] else ()
        return _SOD_CONTRACT_EXTRAS + extra
    if pid == plan.sod[2]:
        return _SOD_EXPENSE_EXTRAS
    if pid == plan.peer_outlier:
        return _OUTLIER_EXTRAS
    return ()


def _phase(ctx: _Ctx, p: DemoPerson, start: date, end: date, profile: str, dept_id: str,
           extras: _Menu) -> _Phase:
    entries = list(_MENUS[profile]) + list(_OA_BASICS) + list(extras)
    if p.id in ctx.heads:
        entries += _HEAD_MENU
    if p.id in ctx.plan.unused_admins:
        # The point of this anomaly: admin rights, never an admin-only action.
        entries = [e for e in entries if e[2] not in ADMIN_ACTIONS]
    rate = _RATES[profile] + (_HEAD_BONUS if p.id in ctx.heads else 0)
    return _Phase(start, end, dept_id, rate, tuple(entries), tuple(accumulate(e[0] for e in entries)))


def _fixed_phase(start: date, end: date, dept_id: str, entries: _Menu) -> _Phase:
    return _Phase(start, end, dept_id, 1.0, entries, tuple(accumulate(e[0] for e in entries)))


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day < end:
        yield day
        day += timedelta(days=1)


def _day_weight(start: date, end: date) -> float:
    return sum(1.0 if d.weekday() < 5 else _WEEKEND_FACTOR for d in _days(start, end))


def _phase_events(rng: random.Random, pools: _Pools, pid: str, ph: _Phase, scale: float
                  ) -> list[DemoActivity]:
    out = []
    for day in _days(ph.start, ph.end):
        mean = ph.rate * scale * (1.0 if day.weekday() < 5 else _WEEKEND_FACTOR)
        for _ in range(_draw_count(rng, mean)):
            event = _draw_event(rng, pools, pid, ph, day)
            if event is not None:
                out.append(event)
    return out


def _draw_count(rng: random.Random, mean: float) -> int:
    """Binomial draw with the given mean: cheap, and busy days vary like real ones."""
    trials = int(mean * 2) + 2
    p = mean / trials
    return sum(rng.random() < p for _ in range(trials))


def _draw_event(rng: random.Random, pools: _Pools, pid: str, ph: _Phase, day: date
                ) -> DemoActivity | None:
    for _ in range(4):  # an entry can miss (e.g. "own" with no own records): draw again
        entry = rng.choices(ph.entries, cum_weights=ph.cum)[0]
        event = _make_event(rng, pools, pid, ph.dept_id, entry, day)
        if event is not None:
            return event
    return None


def _make_event(rng: random.Random, pools: _Pools, pid: str, dept_id: str, entry: _Entry,
                day: date) -> DemoActivity | None:
    _, rtype, action, scope, field_rate = entry
    at = _clock(rng, day)
    if scope == "new":
        return DemoActivity(at, pid, rtype, None, action, ())
    pool = pools.get(rtype, scope, pid, dept_id)
    if not pool:
        return None
    record = rng.choice(pool)
    fields: tuple[str, ...] = ()
    if action == "read" and field_rate and rng.random() < field_rate:
        fields = rng.choice(_FIELD_CHOICES[rtype])
    return DemoActivity(at, pid, rtype, record.id, action, fields)


def _clock(rng: random.Random, day: date) -> datetime:
    hour = rng.choices(_HOURS, cum_weights=_HOUR_CUM)[0]
    return datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), CST)


def _after_exit_events(ctx: _Ctx, rng: random.Random, pools: _Pools) -> list[DemoActivity]:
    """Planted: one leaver keeps pulling customer phone numbers through the still-open CRM."""
    p = ctx.person[ctx.plan.leavers[1]]
    if p.left_on is None:
        return []
    start = max(p.left_on + timedelta(days=1), ctx.day(-10))
    ph = _fixed_phase(start, ctx.today, p.department_id, _AFTER_EXIT_MENU)
    out = []
    for day in _days(ph.start, ph.end):
        if day.weekday() < 5:
            out += [e for _ in range(rng.randint(1, 3))
                    if (e := _draw_event(rng, pools, p.id, ph, day)) is not None]
    return out


def _delegate_events(ctx: _Ctx, rng: random.Random, pools: _Pools) -> list[DemoActivity]:
    """The deputy approves 华东 leave and expenses while the region head is away."""
    d = ctx.delegations[0]
    start, end = max(d.valid_from, ctx.window_start), min(d.valid_until, ctx.today)
    ph = _fixed_phase(start, end, "D-SALES-EAST", _DELEGATE_MENU)
    out = []
    for day in _days(ph.start, ph.end):
        if day.weekday() < 5:
            out += [e for _ in range(2)
                    if (e := _draw_event(rng, pools, d.to_person_id, ph, day)) is not None]
    return out


def _guaranteed_events(ctx: _Ctx, rng: random.Random, pools: _Pools, phases: dict[str, list[_Phase]],
                       events: list[DemoActivity]) -> list[DemoActivity]:
    """Make sure the planted behaviour shows (and every working person did something)."""
    plan, east = ctx.plan, "in:D-SALES-EAST"
    must = [(plan.sod[0], _K, "create", "new"), (plan.sod[0], _K, "approve", "any"),
            (plan.sod[1], _K, "create", "new"), (plan.sod[1], _K, "approve", "any"),
            (plan.sod[2], _E, "create", "new"), (plan.sod[2], _E, "approve", "fin_others"),
            (plan.mover, _C, "read", east), (plan.peer_outlier, _C, "read", "in:D-SALES-NORTH")]
    mine: dict[str, list[DemoActivity]] = defaultdict(list)
    for e in events:
        mine[e.person_id].append(e)
    out = []
    for pid, rtype, action, scope in must:
        ph = phases[pid][-1]  # the mover must show it after the move, hence the last phase
        ids = {None} if scope == "new" else {r.id for r in pools.get(rtype, scope, pid, ph.dept_id)}
        if not any(e.resource_type == rtype and e.action == action and e.record_id in ids
                   and e.at.date() >= ph.start for e in mine[pid]):
            out.append(_late_event(rng, pools, pid, ph, (1, rtype, action, scope, 0)))
    for pid, phs in phases.items():
        if phs and not mine[pid]:
            out.append(_late_event(rng, pools, pid, phs[-1], (1, _D, "read", "public", 0)))
    return [e for e in out if e is not None]


def _late_event(rng: random.Random, pools: _Pools, pid: str, ph: _Phase, entry: _Entry
                ) -> DemoActivity | None:
    workdays = [d for d in _days(ph.start, ph.end) if d.weekday() < 5] or [ph.start]
    return _make_event(rng, pools, pid, ph.dept_id, entry, workdays[-1])


# --------------------------------------------------------------------------- anomalies

def _anomalies(ctx: _Ctx, crm: dict[str, str]) -> list[DemoAnomaly]:
    out = [*_leaver_anomalies(ctx, crm), _mover_anomaly(ctx), *_sod_anomalies(ctx)]
    out += _admin_anomalies(ctx) + _orphan_anomalies() + [_outlier_anomaly(ctx)]
    out += _grant_anomalies(ctx) + _dormant_anomalies(ctx)
    return out


def _who(ctx: _Ctx, pid: str) -> tuple[str, str]:
    """('王芳（华东大区）', 'P00012 王芳 (east)') for summaries."""
    p = ctx.person[pid]
    dept = ctx.dept[p.department_id]
    return f"{p.name}（{dept.name}）", f"{pid} {p.name} ({dept.code})"


def _leaver_anomalies(ctx: _Ctx, crm: dict[str, str]) -> list[DemoAnomaly]:
    out = []
    for n, pid in enumerate(ctx.plan.leavers):
        p, (zh, en) = ctx.person[pid], _who(ctx, pid)
        used = n == 1
        out.append(DemoAnomaly(
            "leaver_still_active", pid,
            f"{zh}已于{p.left_on}离职，IdP和OA账号已停用，但CRM账号 {crm[pid]} 仍为启用状态"
            + ("，且离职后仍有登录并查看客户电话、导出客户" if used else ""),
            f"{en} left on {p.left_on}; IdP and OA accounts are disabled but CRM account "
            f"{crm[pid]} is still active" + (" and was used after the exit date" if used else "")))
    return out


def _mover_anomaly(ctx: _Ctx) -> DemoAnomaly:
    pid = ctx.plan.mover
    zh, en = _who(ctx, pid)
    return DemoAnomaly(
        "mover_kept_grants", pid,
        f"{zh}于{ctx.plan.moved_on}从华东大区调至市场部，但CRM仍保留华东大区「销售经理」角色，"
        "调岗后仍在访问华东客户",
        f"{en} moved from east sales to marketing on {ctx.plan.moved_on} but still holds the CRM "
        "销售经理 role scoped to 华东大区 and keeps reading east customers")


def _sod_anomalies(ctx: _Ctx) -> list[DemoAnomaly]:
    texts = (
        ("作为销售经理可创建合同，同时持有CRM「法务专员」角色可审批合同",
         "is a sales manager (creates contracts) and also holds CRM 法务专员 (approves contracts)"),
        ("作为销售经理可创建合同，同时被直接授予 finance_director 可审批合同和大额费用",
         "is a sales manager (creates contracts) with a direct finance_director grant "
         "(approves contracts and large expenses)"),
        ("作为会计处理并提交费用，同时被直接授予 finance_director 可审批财务同事的费用",
         "is an accountant who files expenses and, through a direct finance_director grant, "
         "approves finance colleagues' expenses"),
    )
    out = []
    for pid, (zh_text, en_text) in zip(ctx.plan.sod, texts, strict=True):
        zh, en = _who(ctx, pid)
        out.append(DemoAnomaly("sod_conflict", pid, f"{zh}{zh_text}（职责分离冲突）",
                               f"{en} {en_text} (separation-of-duties conflict)"))
    return out


def _admin_anomalies(ctx: _Ctx) -> list[DemoAnomaly]:
    (crm_zh, crm_en), (oa_zh, oa_en) = (_who(ctx, pid) for pid in ctx.plan.unused_admins)
    return [
        DemoAnomaly("unused_admin", ctx.plan.unused_admins[0],
                    f"{crm_zh}持有「CRM管理员」角色，但90天内从未执行删除、导出或转移等管理操作",
                    f"{crm_en} holds CRM管理员 but made no delete/export/transfer request in 90 days"),
        DemoAnomaly("unused_admin", ctx.plan.unused_admins[1],
                    f"{oa_zh}被直接授予 oa_admin（无到期日），但90天内从未执行任何管理操作",
                    f"{oa_en} has a direct oa_admin grant without end date but made no "
                    "delete/export/transfer request in 90 days"),
    ]


def _orphan_anomalies() -> list[DemoAnomaly]:
    return [DemoAnomaly("orphan_account", f"crm:{local_id}",
                        f"CRM账号 {local_id}（{display}）不对应任何员工，仍为启用状态，"
                        f"最近登录于{days}天前，角色为「{role}」",
                        f"CRM account {local_id} ({display}) belongs to nobody, is active, last "
                        f"logged in {days} days ago and holds {role}")
            for local_id, display, days, role, _ in _ORPHANS]


def _outlier_anomaly(ctx: _Ctx) -> DemoAnomaly:
    pid = ctx.plan.peer_outlier
    zh, en = _who(ctx, pid)
    return DemoAnomaly(
        "peer_outlier", pid,
        f"{zh}是销售代表，却另外持有华北大区「大区总监」和「财务专员」角色，与同岗位同事明显不同",
        f"{en} is a sales rep but also holds 大区总监 over 华北大区 and 财务专员, unlike every peer")


def _grant_anomalies(ctx: _Ctx) -> list[DemoAnomaly]:
    expired, expiring = _grants(ctx)[:2]
    (zh1, en1), (zh2, en2) = _who(ctx, expired.person_id), _who(ctx, expiring.person_id)
    return [
        DemoAnomaly("expired_temporary_grant", expired.person_id,
                    f"{zh1}的临时授权 {expired.role} 已于{expired.valid_until}到期，授权记录仍未清理",
                    f"{en1}: temporary {expired.role} grant expired on {expired.valid_until} "
                    "and was never cleaned up"),
        DemoAnomaly("expiring_grant", expiring.person_id,
                    f"{zh2}的临时授权 {expiring.role}（华东大区）将于{expiring.valid_until}到期",
                    f"{en2}: temporary {expiring.role} grant on 华东大区 expires on "
                    f"{expiring.valid_until}"),
    ]


def _dormant_anomalies(ctx: _Ctx) -> list[DemoAnomaly]:
    out = []
    for pid in ctx.plan.dormant:
        zh, en = _who(ctx, pid)
        out.append(DemoAnomaly("dormant_account", pid,
                               f"{zh}的账号均为启用状态，但超过90天未登录，也没有任何操作记录",
                               f"{en} has active accounts but no login for over 90 days and "
                               "no activity at all"))
    return out
