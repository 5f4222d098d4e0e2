"""A full quarterly access audit of a large company, timed end to end as the service runs it.

    python -m bench.audit [--people 100000] [--decisions 10000000] [--db postgres|sqlite] [--reuse]
    python -m bench.audit --url URL --people 300 --decisions 20000     # a database you made (empty)

1. **Setup** (timed step by step, not the figure).  A database (PostgreSQL: the database
   ``bench_audit`` on the local server, dropped and made again; SQLite: a file under
   ``bench/data/audit/``) is migrated with ``app.migrate.upgrade`` and gets the shipped policy through
   ``services.policy.import_baseline``.  Then a seeded company is written in bulk (``COPY`` on
   PostgreSQL, ``executemany`` on SQLite): departments (``hq/v<j>/d<i>/``, about 50 people each, and
   ``hq/mgmt/``), people with positions and managers (1 % left, 0.3 % disabled, 3 % hired within 60
   days), their accounts in the IdP, the OA and the CRM (2 % of people dormant, orphan and
   broken-link accounts, leavers' accounts left active, IdP-disabled people still active elsewhere,
   CRM departments that differ from the OA's), grants mirrored from the sources' role mappings plus
   hand-made, privileged, temporary (expired, ending soon), company-wide, stale-after-a-move,
   suspended, revoked and separation-of-duties ones, delegations and sync conflicts.  Then
   ``--decisions`` ``decision_log`` rows over the last 120 days, written with ``COPY``: each person's
   requests are drawn from the (resource type, action) pairs their live grants allow (a few roles
   left unused), with denies (pairs they do not hold, failed conditions, requests after leaving), and
   the levels of every classified field on most reads (``fields`` JSON).  The log's indexes are
   dropped for the load and made again from their own definitions.  Last, the ``usage`` aggregate
   and ``field_usage`` are computed **from those rows** with ``INSERT ... SELECT ... GROUP BY``: the
   same count, allows, denies, first and last use per (person, resource type, action) that the
   decision-log writer folds in (``app.decisions.recorder._usage_rows``); per (person, resource type,
   field), how often an allowed decision showed the field (``visible`` or ``masked``).  The rows are
   not sealed into the audit trail (``seal`` is NULL, as ``write_rows(seal=False)`` leaves them).
   A marker row (``bench_audit_marker``) records the parameters and the policy's digest: ``--reuse``
   skips the setup when they match and only empties the audit's own tables, so that the first run
   is a first run again.
2. **The audit**, in a fresh process: the services built as ``app.main.build_services`` builds them,
   ``services.policy.reload()``, then ``services.audit.run(trigger="manual", actor="bench")`` twice:
   cold (every finding new) and warm (every finding seen again).  The figure is the wall time of that
   call; the run's own ``counts["seconds"]`` split it into population load, checks and store.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, create_engine, make_url, text

from bench.dbload import POSTGRES_URL, _bulk

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
DATA = Path(__file__).resolve().parent / "data" / "audit"
FORMAT = 1  # bump when the generated data changes: a --reuse of older data then rebuilds
DEFAULT_SEED = 20261125
DAYS = 120  # the decision history
TARGET_SECONDS = 120.0
MARKER = "bench_audit_marker"
DATABASE = "bench_audit"
ACTOR = "bench.audit"
SETUP_STEPS = ("migrate + policy", "directory", "decision_log (COPY)", "decision_log indexes", "usage aggregate",
               "field usage", "analyze")


@dataclass(frozen=True)
class Params:
    people: int = 100_000
    decisions: int = 10_000_000
    seed: int = DEFAULT_SEED

    def key(self) -> str:
        """What a built database is marked with: the parameters, and the policy the data was drawn from."""
        return (f"format={FORMAT} people={self.people} decisions={self.decisions} seed={self.seed} days={DAYS} "
                f"policy={policy_digest()[:12]}")


def policy_digest() -> str:
    from app.authz.policy import bundle_digest, read_bundle

    return bundle_digest(read_bundle(POLICIES))


# -- the company ----------------------------------------------------------------------------------

# (role, system, source role, scope of the grant): how the sources' role mappings give each role.
SOURCE_OF = {
    "employee": ("oa", "普通员工"), "sales": ("crm", "销售代表"), "sales_manager": ("crm", "销售经理"),
    "key_account_manager": ("crm", "大客户经理"), "cs_agent": ("crm", "客服专员"), "cs_manager": ("crm", "客服主管"),
    "marketing": ("crm", "市场专员"), "finance": ("oa", "会计"), "hr": ("oa", "人事专员"), "legal": ("oa", "法务专员"),
    "contractor": ("oa", "外包人员"), "dept_manager": ("oa", "部门经理"), "executive": ("oa", "副总经理"),
    "auditor": ("oa", "审计专员"), "finance_director": ("oa", "财务总监"), "crm_admin": ("crm", "CRM管理员"),
    "oa_admin": ("oa", "OA管理员"), "it_admin": ("oa", "IT管理员"),
}
POSITION_OF = {"sales": "销售代表", "key_account_manager": "大客户经理", "cs_agent": "客服专员",
               "cs_manager": "客服主管", "marketing": "市场专员", "finance": "会计", "hr": "人事专员",
               "legal": "法务专员", None: "专员"}
CRM_ROLES = {"sales", "sales_manager", "key_account_manager", "cs_agent", "cs_manager", "marketing", "finance",
             "legal", "executive", "auditor", "crm_admin", "finance_director"}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"


@dataclass
class Actor:
    """Who makes decisions, when, and what they ask for."""

    pid: str
    start: int  # seconds after the history's first midnight
    end: int
    left_at: int | None = None  # after this, every request is denied (the person left)
    menu: list[tuple[str, str, float]] = field(default_factory=list)  # (type, action, weight) they use
    holds: set[tuple[str, str]] = field(default_factory=set)  # every (type, action) their grants allow
    reasons: dict[tuple[str, str], str] = field(default_factory=dict)  # reason JSON of an allow (menu pairs)
    levels: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, field) -> visible | masked
    weight: float = 1.0


@dataclass
class Company:
    now: datetime
    origin: datetime  # midnight UTC at the start of the decision history
    departments: list[tuple[Any, ...]] = field(default_factory=list)
    people: list[tuple[Any, ...]] = field(default_factory=list)
    accounts: list[tuple[Any, ...]] = field(default_factory=list)
    grants: list[tuple[Any, ...]] = field(default_factory=list)
    delegations: list[tuple[Any, ...]] = field(default_factory=list)
    conflicts: list[tuple[Any, ...]] = field(default_factory=list)
    actors: list[Actor] = field(default_factory=list)


DEPARTMENT_COLUMNS = ("id", "code", "name", "parent_id", "path", "created_at")
PEOPLE_COLUMNS = ("id", "name", "employee_no", "email", "department_id", "position", "manager_id", "status",
                  "hired_on", "left_on", "updated_at")
ACCOUNT_COLUMNS = ("system", "local_id", "person_id", "status", "display_name", "last_login_at", "attributes",
                   "employee_no", "department_id", "position", "link_method", "link_state", "updated_at")
GRANT_COLUMNS = ("id", "person_id", "role", "department_id", "include_subtree", "source_system", "source_role",
                 "granted_by", "reason", "valid_from", "valid_until", "created_at", "revoked_at", "suspended_at",
                 "suspend_reason")
DELEGATION_COLUMNS = ("id", "from_person_id", "to_person_id", "role", "valid_from", "valid_until", "reason",
                      "created_by", "created_at", "revoked_at")
CONFLICT_COLUMNS = ("person_id", "attribute", "master_source", "master_value", "other_source", "other_value",
                    "first_seen", "last_seen")


def _dept_id(path: str) -> str:
    return path.rstrip("/").replace("/", "-")


def make_company(params: Params, now: datetime, policy: Any) -> Company:
    """The seeded company as rows of each table, and who asks for what."""
    from app.audits.population import role_infos

    rng = random.Random(f"audit:{params.people}:{params.seed}")
    n = params.people
    origin = datetime.combine((now - timedelta(days=DAYS)).date(), datetime.min.time(), tzinfo=UTC)
    co = Company(now=now, origin=origin)
    roles = role_infos(policy)
    role_plans = _role_plans(roles)
    days = timedelta(days=1)

    leaves_n = max(2, n // 50)
    divisions_n = max(1, leaves_n // 10)
    divisions = [f"hq/v{j}/" for j in range(divisions_n)]
    leaves = [f"hq/v{i % divisions_n}/d{i}/" for i in range(leaves_n)]
    created = now - 2000 * days
    co.departments.append(("hq", "hq", "总部", None, "hq/", created))
    co.departments.append(("hq-mgmt", "mgmt", "总裁办", "hq", "hq/mgmt/", created))
    co.departments += [(_dept_id(p), p.split("/")[1], f"事业部{j}", "hq", p, created) for j, p in enumerate(divisions)]
    co.departments += [(_dept_id(p), p.split("/")[2], f"部门{i}", _dept_id("/".join(p.split("/")[:2]) + "/"), p,
                        created) for i, p in enumerate(leaves)]

    # -- who is who: (home path, position, [(role, domain path or None, subtree)])
    Plan = tuple[str, str, list[tuple[str, str | None, bool]]]
    plans: list[Plan] = []
    central = [("executive", "副总经理", max(3, n // 20_000)), ("auditor", "审计专员", max(3, n // 10_000)),
               ("finance_director", "财务总监", max(1, n // 20_000)), ("crm_admin", "CRM管理员", 2),
               ("oa_admin", "OA管理员", 2), ("it_admin", "IT管理员", 2)]
    for role, position, count in central:
        plans += [("hq/mgmt/", position, [(role, None, False)])] * count
    plans += [(p, "部门经理", [("dept_manager", p, True)]) for p in divisions]  # managers before their staff
    plans += [(p, "部门经理", [("dept_manager", p, True)]) for p in leaves]
    plans += [(p, "销售经理", [("sales_manager", p, False)]) for p in leaves]
    while len(plans) < n:
        home = leaves[len(plans) % leaves_n]
        r = rng.random()
        role = ("sales" if r < 0.35 else "key_account_manager" if r < 0.39 else "cs_agent" if r < 0.42
                else "cs_manager" if r < 0.423 else "marketing" if r < 0.443 else "finance" if r < 0.463
                else "hr" if r < 0.478 else "legal" if r < 0.485 else None)
        held: list[tuple[str, str | None, bool]] = []
        if role in ("sales", "key_account_manager"):
            held.append((role, home, False))
        elif role == "hr" and rng.random() < 0.5:
            held.append((role, "/".join(home.split("/")[:2]) + "/", True))  # an HRBP of the division
        elif role is not None:
            held.append((role, None, False))
        position = POSITION_OF[role]
        if rng.random() < (0.10 if role in ("sales", "key_account_manager") else 0.025):
            held.append(("contractor", None, False))
            if role is None:
                position = "外包人员"
        plans.append((home, position, held))
    plans = plans[:n]

    manager_of = {}
    for k, (home, position, _) in enumerate(plans):
        if position == "部门经理":
            manager_of[home] = f"P{k:06d}"

    grant_id = 0
    dom_of: dict[tuple[str | None, bool], str] = {}

    def grant(pid: str, role: str, path: str | None, subtree: bool, *, manual: bool = False,
              valid_from: datetime | None = None, valid_until: datetime | None = None, created_at: datetime,
              revoked_at: datetime | None = None, suspended_at: datetime | None = None,
              suspend_reason: str | None = None) -> int:
        nonlocal grant_id
        grant_id += 1
        system, source_role = ("manual", None) if manual else SOURCE_OF[role]
        if role == "hr" and subtree and not manual:
            source_role = "HRBP"
        by = "admin:it-ops" if manual else f"{system}-sync"
        why = "手工授权" if manual else f"{system.upper()} 角色「{source_role}」映射为 {role}"
        co.grants.append((grant_id, pid, role, _dept_id(path) if path else None, subtree, system, source_role, by,
                          why, valid_from, valid_until, created_at, revoked_at, suspended_at, suspend_reason))
        dom_of.setdefault((path, subtree), "*" if path is None else path + "*" if subtree else path)
        return grant_id

    def ago(lo: float, hi: float) -> datetime:
        return now - timedelta(seconds=rng.uniform(lo, hi) * 86400)

    history = (now - origin).total_seconds()
    window = 90 * 86400
    for k, (home, position, held) in enumerate(plans):
        pid = f"P{k:06d}"
        r = rng.random()
        status = "left" if r < 0.01 else "disabled" if r < 0.013 else "active"
        new_hire = status == "active" and rng.random() < 0.03
        dormant = status == "active" and not new_hire and rng.random() < 0.02
        hired = now - timedelta(days=rng.randint(1, 60) if new_hire else rng.randint(200, 4000))
        left_on = (now - timedelta(days=rng.randint(3, 80))).date() if status == "left" else None
        manager = manager_of.get(home)
        if manager == pid:  # a department's manager reports to the division's
            manager = manager_of.get("/".join(home.split("/")[:2]) + "/")
        manager = None if manager == pid else manager
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        co.people.append((pid, name, f"E{k:06d}", f"{pid.lower()}@example.com", _dept_id(home), position, manager,
                          status, hired.date(), left_on, now))

        # grants: employee for everyone, the plan's roles, then the exceptions
        live: list[tuple[int, str, str]] = []  # (grant id, role, domain) the person may use
        gid = grant(pid, "employee", None, False, created_at=hired if new_hire else ago(100, 1500))
        live.append((gid, "employee", "*"))
        for role, path, subtree in held:
            young = not new_hire and rng.random() < 0.03
            gpath = path
            x = rng.random()
            if role == "sales" and x < 0.005:
                gpath = rng.choice(leaves)  # moved department, the CRM grant stayed behind
            elif role == "sales" and x < 0.007:
                gpath = None  # held company-wide: broader than the CRM ever gives it
            manual = role in ("crm_admin", "it_admin") and rng.random() < 0.5
            gid = grant(pid, role, gpath, subtree, manual=manual,
                        created_at=ago(1, 60) if young else hired if new_hire else ago(100, 1500))
            live.append((gid, role, dom_of[(gpath, subtree)]))
        x = rng.random()
        if status == "active" and position not in ("副总经理", "审计专员") and x < 0.02:  # temporary access
            role = rng.choice(["cs_agent", "marketing", "finance", "legal", "auditor"])
            y = rng.random()
            until = ago(1, 60) if y < 0.4 else now + timedelta(days=rng.uniform(1, 13)) if y < 0.6 \
                else now + timedelta(days=rng.uniform(30, 180))
            start = ago(100, 200)
            gid = grant(pid, role, None, False, manual=True, valid_from=start, valid_until=until, created_at=start)
            if until > now:
                live.append((gid, role, "*"))
        elif x < 0.025:  # a standing hand-made grant
            role = rng.choice(["cs_agent", "marketing", "legal"])
            gid = grant(pid, role, None, False, manual=True, created_at=ago(100, 900))
            live.append((gid, role, "*"))
        elif x < 0.0255 and position == "销售代表":  # creates contracts in the CRM, pays in the OA
            gid = grant(pid, "finance", None, False, manual=True, created_at=ago(100, 900))
            live.append((gid, "finance", "*"))
        elif x < 0.0275 and position == "部门经理":  # approves expenses, and pays them through finance
            gid = grant(pid, "finance", None, False, created_at=ago(100, 900))
            live.append((gid, "finance", "*"))
        elif x < 0.0375:  # an old grant, revoked
            gid = grant(pid, rng.choice(["marketing", "cs_agent"]), None, False, created_at=ago(400, 900),
                        revoked_at=ago(100, 300))
        elif x < 0.039 and held and held[0][1] is not None and status == "active":  # suspended by the sync
            role, path, subtree = held[0]
            other = rng.choice(leaves)
            grant(pid, role, other, subtree, created_at=ago(200, 900), suspended_at=ago(1, 30),
                  suspend_reason=f"department changed: {other} -> {home}")

        # accounts
        last = (ago(120, 400) if dormant else ago(0, 10)) if status == "active" else ago(80, 200)
        idp_status = "active" if status == "active" and rng.random() >= 0.002 else "disabled"
        crm_home = rng.choice(leaves) if rng.random() < 0.005 else home
        systems = ["idp", "oa"]
        if any(role in CRM_ROLES for _, role, _ in live) or rng.random() < 0.1:
            systems.append("crm")
        for system in systems:
            st = "active" if status == "active" else "disabled"
            if system == "idp":
                st = idp_status
            elif status == "left" and rng.random() < 0.4:
                st = "active"  # never disabled after the person left
            elif status == "active" and rng.random() < 0.003:
                st = "disabled"
            attrs = {"last_sign_in_at": last.isoformat()} if system == "idp" else {}
            dept = None if system == "idp" else _dept_id(crm_home if system == "crm" else home)
            link_state = "broken" if system != "idp" and rng.random() < 0.0005 else "confirmed"
            co.accounts.append((system, f"{system}-{pid}", pid, st, name, last if system != "idp" else None, attrs,
                                f"E{k:06d}", dept, position, "employee_no", link_state, now))

        if rng.random() < 0.002:
            attribute = rng.choice(["mobile", "email", "position"])
            co.conflicts.append((pid, attribute, "hr", f"hr-{attribute}-{k}", rng.choice(["crm", "oa"]),
                                 f"other-{attribute}-{k}", ago(30, 60), ago(0, 5)))

        # decisions: who asks, when
        if status == "disabled" or (dormant and rng.random() < 0.5):
            continue
        first = max(0.0, (hired - origin).total_seconds())
        end = history if not dormant else history - window - 5 * 86400
        actor = Actor(pid, int(first), int(end), weight=math.exp(rng.gauss(0, 0.7)))
        if left_on is not None:
            left_at = int((datetime.combine(left_on, datetime.min.time(), tzinfo=UTC) - origin).total_seconds())
            actor.end = left_at if rng.random() < 0.5 else min(int(history), left_at + 20 * 86400)
            actor.left_at = left_at
        if actor.end <= actor.start:
            continue
        _menu(rng, actor, live, roles, role_plans)
        co.actors.append(actor)

    # orphan accounts: in the CRM or the OA, linked to nobody
    for k in range(max(1, n * 3 // 1000)):
        system = rng.choice(["crm", "oa"])
        co.accounts.append((system, f"{system}-orphan-{k}", None, "active", f"共享账号{k}", ago(0, 200), {}, None,
                            _dept_id(rng.choice(leaves)), None, None, "auto", now))

    # delegations: a department manager hands the role to someone of the department
    managers = [(f"P{k:06d}", home) for k, (home, position, _) in enumerate(plans) if position == "部门经理"]
    in_dept: dict[str, list[str]] = {}
    for k, (home, _, _) in enumerate(plans):
        in_dept.setdefault(home, []).append(f"P{k:06d}")
    for d in range(max(1, n // 200)):
        frm, home = rng.choice(managers)
        to = rng.choice(in_dept.get(home) or [frm])
        if to == frm:
            continue
        y = rng.random()
        until = ago(1, 30) if y < 0.3 else now + timedelta(days=rng.uniform(1, 13)) if y < 0.5 \
            else now + timedelta(days=rng.uniform(20, 90))
        start = until - timedelta(days=rng.uniform(20, 60))
        co.delegations.append((d + 1, frm, to, "dept_manager", start, until, "休假期间代理审批", frm, start,
                               ago(0, 10) if rng.random() < 0.1 else None))
    return co


def _role_plans(roles: dict[str, Any]) -> dict[str, list[tuple[tuple[str, str], str]]]:
    """Per role: each (type, action) it allows, with the start of the reason JSON an allow through
    its first allowing rule is logged with (the grant is added per person)."""
    plans = {}
    for name, info in roles.items():
        first: dict[tuple[str, str], Any] = {}
        for p in info.perms:
            if p.key not in info.denies:
                first.setdefault((p.resource_type, p.action), p)
        plans[name] = [(key, orjson.dumps({
            "code": "allowed", "rule": {"id": p.rule_id, "effect": "allow", "scope": p.scope, "domain": p.domain,
                                        "condition": None if p.condition == "-" else p.condition},
            "role": name, "via": [name] if p.via == name else [name, p.via]}).decode()[:-1])
            for key, p in first.items()]
    return plans


def _menu(rng: random.Random, actor: Actor, live: list[tuple[int, str, str]], roles: dict[str, Any],
          plans: dict[str, list[tuple[tuple[str, str], str]]]) -> None:
    """What the person asks for: most of what most of their roles allow (some roles not at all)."""
    chosen: dict[tuple[str, str], float] = {}
    through: dict[tuple[str, str], tuple[str, int, str]] = {}  # the first live grant allowing each pair
    for gid, role, dom in live:
        info = roles.get(role)
        if info is None:
            continue
        plan = plans[role]
        for key, head in plan:
            actor.holds.add(key)
            through.setdefault(key, (head, gid, dom))
        for f in info.fields:
            k = (f.resource_type, f.field)
            if actor.levels.get(k) != "visible":
                actor.levels[k] = f.level
        if role != "employee" and rng.random() < 0.07:
            continue  # a role the person never uses
        share = rng.uniform(0.4, 1.0)
        for (rtype, action), _ in plan:
            if info.privileged and action in ("delete", "export", "transfer", "approve", "pay") and rng.random() < 0.5:
                continue
            if action == "read" or rng.random() < share:  # reads of what one works with, some of the rest
                weight = (4.0 if action == "read" else 2.0 if action in ("create", "update") else 1.0)
                chosen[(rtype, action)] = weight * rng.uniform(0.3, 1.7)
    if not chosen and actor.holds:
        chosen[rng.choice(sorted(actor.holds))] = 1.0
    actor.menu = [(rtype, action, w) for (rtype, action), w in sorted(chosen.items())]
    for key in chosen:
        head, gid, dom = through[key]
        actor.reasons[key] = f'{head},"grant":{{"id":{gid},"domain":"{dom}"}}}}'


# -- the decisions ----------------------------------------------------------------------------------

_ID_PREFIX = "00000000-0000-4000-8000-"
_CALLER = {"crm": "crm-backend", "oa": "oa-backend"}
_DENY_NO_RULE = orjson.dumps({"code": "no_matching_rule"}).decode()
_DENY_LEFT = orjson.dumps({"code": "subject_inactive"}).decode()


def decision_lines(co: Company, params: Params, version: str, policy: Any, chunk: int = 20_000) -> Iterator[str]:
    """``params.decisions`` decision_log rows in COPY text format, in chunks of ``chunk`` lines."""
    rng = random.Random(f"audit-decisions:{params.people}:{params.seed}")
    rnd = rng.random
    total = params.decisions
    actors = co.actors
    weights = sum(a.weight for a in actors) or 1.0
    counts = [int(total * a.weight / weights) for a in actors]
    for i in range(total - sum(counts) if actors else 0):
        counts[i % len(counts)] += 1
    every = sorted((rtype, action) for rtype, rt in policy.resources.items() for action in rt.actions)
    classified = {rtype: sorted(fields) for rtype, fields in policy.classification.items()}
    day_prefix = [(co.origin + timedelta(days=d)).strftime("%Y-%m-%d ") for d in range(DAYS + 2)]
    hms = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00" for s in range(86400)]
    left_tail = f"f\t{version}\t{_DENY_LEFT}\t{{}}\n"
    seq = 0
    out: list[str] = []
    for actor, n in zip(actors, counts, strict=True):
        if n == 0:
            continue
        variants, cum = _variants(rng, actor, version, every, classified)
        picks = rng.choices(variants, cum_weights=cum, k=n)
        start, span = actor.start, actor.end - actor.start
        left_at = actor.left_at if actor.left_at is not None else actor.end
        for head, tail in picks:
            t = start + int(rnd() * span)
            if t >= left_at:
                tail = left_tail  # after leaving: every request is denied, no field shown
            d, s = divmod(t, 86400)
            seq += 1
            out.append(f"{_ID_PREFIX}{seq:012x}\t{day_prefix[d]}{hms[s]}\t{head}R{t % 99991}\t{tail}")
            if len(out) >= chunk:
                yield "".join(out)
                out = []
    if out:
        yield "".join(out)


def _variants(rng: random.Random, actor: Actor, version: str, every: list[tuple[str, str]],
              classified: dict[str, list[str]]) -> tuple[list[tuple[str, str]], list[float]]:
    """(head, tail) of each kind of row the person produces, with cumulative weights."""
    pid = actor.pid
    rows: list[tuple[tuple[str, str], float]] = []

    def head(rtype: str, action: str) -> str:
        system = rtype.partition(".")[0]
        return f"{_CALLER.get(system, system)}\tuser:{pid}\t{pid}\t{action}\t{rtype}\t"

    def fields(rtype: str, allowed: bool) -> str:
        names = classified.get(rtype, ())
        return orjson.dumps({f: (actor.levels.get((rtype, f), "hidden") if allowed else "hidden")
                             for f in names}).decode()

    for rtype, action, w in actor.menu:
        h = head(rtype, action)
        allow = f"t\t{version}\t{actor.reasons[(rtype, action)]}\t"
        deny = f"f\t{version}\t{_DENY_NO_RULE}\t"
        if action == "read" and rtype in classified:
            rows.append(((h, allow + fields(rtype, True) + "\n"), w * 0.8))
            rows.append(((h, allow + "{}\n"), w * 0.17))
            rows.append(((h, deny + fields(rtype, False) + "\n"), w * 0.03))
        else:
            rows.append(((h, allow + "{}\n"), w * 0.97))  # a failed condition now and then
            rows.append(((h, deny + "{}\n"), w * 0.03))
    # asking for what the person does not hold: ~5 % of the requests, denied
    total = sum(w for _, w in rows) or 1.0
    missing = [k for k in every if k not in actor.holds]
    for rtype, action in rng.sample(missing, min(2, len(missing))):
        rows.append(((head(rtype, action), f"f\t{version}\t{_DENY_NO_RULE}\t{{}}\n"), total * 0.025))
    variants = [v for v, _ in rows]
    cum, acc = [], 0.0
    for _, w in rows:
        acc += w
        cum.append(acc)
    for h, tl in variants:
        if "\\" in h + tl:
            raise ValueError("a backslash in a COPY line")  # COPY text format would need escaping
    return variants, cum


# -- the database ---------------------------------------------------------------------------------

def managed_url(kind: str, params: Params) -> str:
    """The benchmark's own database of ``kind``: PostgreSQL database ``bench_audit`` or a SQLite file."""
    if kind == "postgres":
        return make_url(POSTGRES_URL).set(database=DATABASE).render_as_string(hide_password=False)
    if kind == "sqlite":
        return f"sqlite:///{DATA / f'audit-{params.people}-{params.decisions}-{params.seed}.db'}"
    raise SystemExit(f"--db postgres|sqlite, not {kind!r}")


def reset_managed(url: str) -> None:
    """Drop and make again the benchmark's own database."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        path = Path(str(u.database))
        path.parent.mkdir(parents=True, exist_ok=True)
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            p.unlink(missing_ok=True)
        return
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{u.database}"'))
    finally:
        admin.dispose()


def marker(url: str) -> dict[str, Any] | None:
    """The marker row of a built database (None: not built, or not reachable as such)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and not Path(str(u.database)).exists():
        return None
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text(f"SELECT params, built_at, setup FROM {MARKER}")).first()  # noqa: S608
    except Exception:
        return None
    finally:
        engine.dispose()
    if row is None:
        return None
    setup = row.setup if isinstance(row.setup, dict) else json.loads(row.setup)
    return {"params": row.params, "built_at": str(row.built_at), "setup": setup}


def _tables_in(conn: Connection) -> int:
    if conn.dialect.name == "postgresql":
        sql = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        return int(conn.execute(text(sql)).scalar_one())
    return int(conn.execute(text("SELECT count(*) FROM sqlite_master WHERE type = 'table'")).scalar_one())


def build(url: str, params: Params, *, log: Any = print) -> dict[str, Any]:
    """Migrate an empty database and fill it (see the module's docstring); the setup's step times."""
    from app.config import AuditSettings, Settings
    from app.db import make_engine
    from app.directory.models import Account, Delegation, Department, Grant, Person
    from app.main import build_services
    from app.migrate import upgrade
    from app.sync.models import SyncConflict

    times: dict[str, float] = {}
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    engine = make_engine(url)
    with engine.connect() as conn:
        if _tables_in(conn):
            raise SystemExit(f"{url}: not empty (the benchmark fills an empty database)")
    engine.dispose()
    services = build_services(Settings(database_url=url, policies_dir=POLICIES, audit=AuditSettings(schedule=False)))
    engine = services.factory.kw["bind"]
    try:
        upgrade(engine)
        services.policy.import_baseline(actor=ACTOR, reason="baseline")
        state = services.policy.reload()
        policy, version = state.engine.policy, state.version
        times["migrate + policy"] = time.perf_counter() - t0
        log(f"  migrate + policy        {times['migrate + policy']:8.1f} s")

        t = time.perf_counter()
        now = datetime.now(UTC)
        co = make_company(params, now, policy)
        with engine.begin() as conn:
            accounts = co.accounts
            if conn.dialect.name == "postgresql":  # COPY takes the JSON column as text
                accounts = [(*a[:6], json.dumps(a[6]), *a[7:]) for a in accounts]
            _bulk(conn, Department.__table__, DEPARTMENT_COLUMNS, co.departments)
            _bulk(conn, Person.__table__, PEOPLE_COLUMNS, co.people)
            _bulk(conn, Account.__table__, ACCOUNT_COLUMNS, accounts)
            _bulk(conn, Grant.__table__, GRANT_COLUMNS, co.grants)
            _bulk(conn, Delegation.__table__, DELEGATION_COLUMNS, co.delegations)
            _bulk(conn, SyncConflict.__table__, CONFLICT_COLUMNS, co.conflicts)
            if conn.dialect.name == "postgresql":  # explicit ids: move the sequences past them
                for table in ("grants", "delegations"):
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                                      f"(SELECT coalesce(max(id), 1) FROM {table}))"))
        counts.update(people=len(co.people), accounts=len(co.accounts), grants=len(co.grants),
                      delegations=len(co.delegations), departments=len(co.departments))
        times["directory"] = time.perf_counter() - t
        log(f"  directory               {times['directory']:8.1f} s   {len(co.people):,} people, "
            f"{len(co.accounts):,} accounts, {len(co.grants):,} grants")

        t = time.perf_counter()
        indexes = _drop_log_indexes(engine)
        _write_decisions(engine, decision_lines(co, params, version, policy))
        times["decision_log (COPY)"] = time.perf_counter() - t
        log(f"  decision_log (COPY)     {times['decision_log (COPY)']:8.1f} s   {params.decisions:,} rows")
        t = time.perf_counter()
        _make_indexes(engine, indexes)
        times["decision_log indexes"] = time.perf_counter() - t
        log(f"  decision_log indexes    {times['decision_log indexes']:8.1f} s")

        t = time.perf_counter()
        counts["usage"] = fold_usage(engine)
        times["usage aggregate"] = time.perf_counter() - t
        log(f"  usage aggregate         {times['usage aggregate']:8.1f} s   {counts['usage']:,} rows")
        t = time.perf_counter()
        counts["field_usage"] = fold_field_usage(engine)
        times["field usage"] = time.perf_counter() - t
        log(f"  field usage             {times['field usage']:8.1f} s   {counts['field_usage']:,} rows")

        t = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if conn.dialect.name == "postgresql":  # what the audit reads, vacuumed (hint bits set once, here)
                conn.execute(text("VACUUM ANALYZE departments, people, accounts, grants, delegations, "
                                  "sync_conflicts, usage, field_usage"))
                conn.execute(text("ANALYZE decision_log"))
            else:
                conn.execute(text("ANALYZE"))
        times["analyze"] = time.perf_counter() - t
        times["total"] = time.perf_counter() - t0
        setup = {"times": times, "counts": counts}
        with engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE {MARKER} (params VARCHAR(200) PRIMARY KEY, built_at VARCHAR(40), "
                              "setup TEXT)"))
            conn.execute(text(f"INSERT INTO {MARKER} VALUES (:p, :b, :s)"),  # noqa: S608
                         {"p": params.key(), "b": now.isoformat(timespec="seconds"), "s": json.dumps(setup)})
        return {"params": params.key(), "built_at": now.isoformat(timespec="seconds"), "setup": setup}
    finally:
        engine.dispose()


def _drop_log_indexes(engine: Any) -> list[str]:
    """Drop decision_log's indexes (and its primary key on PostgreSQL); their DDL, to make them again."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            ddl = [f"ALTER TABLE decision_log ADD CONSTRAINT {name} {definition}" for name, definition in conn.execute(
                text("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                     "WHERE conrelid = 'decision_log'::regclass AND contype = 'p'"))]
            pk = {name for name, in conn.execute(text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'decision_log'::regclass AND contype = 'p'"))}
            rows = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes "
                                     "WHERE tablename = 'decision_log' AND schemaname = current_schema()")).all()
            for name in pk:
                conn.execute(text(f'ALTER TABLE decision_log DROP CONSTRAINT "{name}"'))
            for name, definition in rows:
                if name not in pk:
                    conn.execute(text(f'DROP INDEX "{name}"'))
                    ddl.append(definition)
            return ddl
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                 "AND tbl_name = 'decision_log' AND sql IS NOT NULL")).all()
        for name, _ in rows:
            conn.execute(text(f'DROP INDEX "{name}"'))
        return [sql for _, sql in rows]


def _make_indexes(engine: Any, ddl: Sequence[str]) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        for statement in ddl:
            conn.execute(text(statement))


def _write_decisions(engine: Any, chunks: Iterator[str]) -> None:
    from app.decisions.recorder import COLUMNS

    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "postgresql":
            cur.execute("SET synchronous_commit = off")
            with cur.copy(f"COPY decision_log ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for chunk in chunks:
                    copy.write(chunk)
        else:
            sql = f"INSERT INTO decision_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
            for chunk in chunks:
                cur.executemany(sql, [_sqlite_row(line) for line in chunk.splitlines()])
        cur.close()
        raw.commit()
    finally:
        raw.close()


def _sqlite_row(line: str) -> tuple[Any, ...]:
    """A COPY text line as SQLite values (SQLAlchemy's storage: naive UTC text, booleans as 0/1)."""
    v = line.split("\t")
    return (v[0], v[1].removesuffix("+00") + ".000000", v[2], v[3], v[4], v[5], v[6], v[7], 1 if v[8] == "t" else 0,
            v[9], v[10], v[11])


# What the decision-log writer folds into ``usage`` per batch (app.decisions.recorder._usage_rows),
# over the whole log at once.
_USAGE = ("INSERT INTO usage (person_id, resource_type, action, count, allows, denies, first_used, last_used) "
          "SELECT person_id, resource_type, action, count(*), {allows}, {denies}, min(at), max(at) "
          "FROM decision_log WHERE person_id IS NOT NULL GROUP BY person_id, resource_type, action")
# Per person, resource type and field: how often it came back visible or masked in an allowed decision
# (what the writer folds into ``field_usage``: app.decisions.recorder._field_usage_rows).
_FIELD_USAGE = {
    "postgresql": "INSERT INTO field_usage (person_id, resource_type, field, count, first_used, last_used) "
                  "SELECT d.person_id, d.resource_type, f.key, count(*), min(d.at), max(d.at) "
                  "FROM decision_log d CROSS JOIN LATERAL json_each_text(d.fields) f "
                  "WHERE d.person_id IS NOT NULL AND d.allowed AND d.fields::text <> '{}' AND f.value <> 'hidden' "
                  "GROUP BY d.person_id, d.resource_type, f.key",
    "sqlite": "INSERT INTO field_usage (person_id, resource_type, field, count, first_used, last_used) "
              "SELECT d.person_id, d.resource_type, f.key, count(*), min(d.at), max(d.at) "
              "FROM decision_log d, json_each(d.fields) f "
              "WHERE d.person_id IS NOT NULL AND d.allowed AND d.fields <> '{}' AND f.value <> 'hidden' "
              "GROUP BY d.person_id, d.resource_type, f.key",
}


def fold_usage(engine: Any) -> int:
    """The usage aggregate from the whole decision log; its row count."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL work_mem = '512MB'"))
            sql = _USAGE.format(allows="count(*) FILTER (WHERE allowed)", denies="count(*) FILTER (WHERE NOT allowed)")
        else:
            sql = _USAGE.format(allows="sum(allowed)", denies="sum(1 - allowed)")
        return int(conn.execute(text(sql)).rowcount)


def fold_field_usage(engine: Any) -> int:
    """Field usage from the whole decision log; its row count."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL work_mem = '512MB'"))
        return int(conn.execute(text(_FIELD_USAGE[conn.dialect.name])).rowcount)


def clear_audit(url: str) -> None:
    """Forget every audit run and finding, so that the next run is a first run."""
    from audit import tables as at

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table in (at.finding_events, at.findings, at.runs):
                conn.execute(table.delete())
    finally:
        engine.dispose()


# -- the audit, in a fresh process -------------------------------------------------------------------

def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(url: str, runs: int = 2) -> dict[str, Any]:
    """What the fresh process reports: ``runs`` audit runs, each timed end to end, and RSS."""
    from app.config import AuditSettings, Settings
    from app.main import build_services

    services = build_services(Settings(database_url=url, policies_dir=POLICIES, audit=AuditSettings(schedule=False)))
    try:
        t = time.perf_counter()
        services.policy.reload()
        out: dict[str, Any] = {"reload_s": time.perf_counter() - t, "rss_before_mb": rss_mb(),
                               "peak_before_mb": peak_rss_mb(), "runs": []}
        for _ in range(runs):
            t = time.perf_counter()
            run = services.audit.run(trigger="manual", actor="bench")
            wall = time.perf_counter() - t
            if run is None or run["status"] != "done":
                raise RuntimeError(f"the audit run did not finish: {run}")
            out["runs"].append({"wall_s": wall, "counts": run["counts"], "population": run["population"],
                                "rss_mb": rss_mb(), "peak_rss_mb": peak_rss_mb()})
        return out
    finally:
        services.factory.kw["bind"].dispose()


def measure_in_child(url: str, runs: int = 2) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.audit", "--measure", url, "--runs", str(runs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise RuntimeError(f"the audit process failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# -- the run --------------------------------------------------------------------------------------

def run(url: str, params: Params, *, reuse: bool = False, managed: bool = False, runs: int = 2,
        log: Any = print) -> dict[str, Any]:
    """Build (or reuse) the company in ``url``, then time ``runs`` audits in a fresh process."""
    found = marker(url) if reuse else None
    if found is not None and found["params"] == params.key():
        log(f"reusing the company built {found['built_at']} ({found['params']}); audit tables emptied")
        clear_audit(url)
        built, reused = found, True
    else:
        if found is not None:
            log(f"the database was built as {found['params']}: building it again")
        if managed:
            reset_managed(url)
        log(f"setup: {params.people:,} people, {params.decisions:,} decisions on {make_url(url).get_backend_name()}")
        built, reused = build(url, params, log=log), False
    result = measure_in_child(url, runs)
    return {"params": params, "db": make_url(url).get_backend_name(), "url": make_url(url).render_as_string(),
            "reused": reused, "built_at": built["built_at"], "setup": built["setup"], **result}


def report(result: dict[str, Any]) -> str:
    """Setup times, the audit runs (population load, checks, store, total), findings by kind, RSS."""
    p: Params = result["params"]
    setup, runs = result["setup"], result["runs"]
    counts = setup["counts"]
    lines = [f"audit benchmark: {p.people:,} people, {p.decisions:,} decisions over {DAYS} days on {result['db']} "
             f"(seed {p.seed})", ""]
    state = f"reused, built {result['built_at']}" if result["reused"] else f"built {result['built_at']}"
    lines.append(f"setup ({state}; not part of the figure):")
    for step in (*SETUP_STEPS, "total"):
        lines.append(f"  {step:<24}{setup['times'].get(step, 0.0):>8.1f} s")
    lines.append(f"  rows: {counts.get('people', 0):,} people, {counts.get('accounts', 0):,} accounts, "
                 f"{counts.get('grants', 0):,} grants, {counts.get('delegations', 0):,} delegations, "
                 f"{counts.get('usage', 0):,} usage, {counts.get('field_usage', 0):,} field usage")
    pop = runs[0]["population"]
    lines += ["", "population: " + ", ".join(f"{k} {v:,}" for k, v in pop.items()),
              f"policy reload before the runs: {result['reload_s']:.1f} s, "
              f"RSS after it {result['rss_before_mb']:,.0f} MB",
              ""]
    names = ["cold (first run)", "warm (seen again)"] + [f"run {i + 1}" for i in range(2, len(runs))]
    head = f"{'audit run':<22}" + "".join(f"{names[i]:>20}" for i in range(len(runs)))
    lines += [head, "-" * len(head)]

    def row(label: str, values: list[str]) -> None:
        lines.append(f"{label:<22}" + "".join(f"{v:>20}" for v in values))

    for step in ("load", "checks", "store"):
        label = {"load": "population load", "checks": "checks", "store": "store"}[step]
        row(label + " s", [f"{r['counts']['seconds'][step]:.1f}" for r in runs])
    row("other s", [f"{r['wall_s'] - sum(r['counts']['seconds'].values()):.1f}" for r in runs])
    row("total s", [f"{r['wall_s']:.1f}" for r in runs])
    row("findings", [f"{r['counts']['total']:,}" for r in runs])
    row("new / seen again", [f"{r['counts']['new']:,} / {r['counts']['seen_again']:,}" for r in runs])
    row("resolved", [f"{r['counts']['resolved']:,}" for r in runs])
    row("peak RSS MB", [f"{r['peak_rss_mb']:,.0f}" for r in runs])
    lines += ["", "findings by kind (cold run):"]
    by_kind = runs[0]["counts"]["by_kind"]
    for kind, n in sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {kind:<28}{n:>10,}")
    severities = sorted(runs[0]["counts"]["by_severity"].items())
    lines.append("  by severity: " + ", ".join(f"{k} {v:,}" for k, v in severities))
    worst = max(r["wall_s"] for r in runs)
    lines += ["", f"{'PASS' if worst <= TARGET_SECONDS else 'FAIL'}  audit run <= {TARGET_SECONDS:.0f} s: "
              + ", ".join(f"{names[i]} {r['wall_s']:.1f} s" for i, r in enumerate(runs))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """CLI."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--decisions", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--db", default="postgres", help="postgres (database bench_audit) | sqlite (bench/data/audit/)")
    ap.add_argument("--url", help="an empty database you made instead (or one built with the same parameters, "
                                  "with --reuse)")
    ap.add_argument("--reuse", action="store_true", help="reuse the database if built with the same parameters")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)  # the fresh-process side
    args = ap.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.runs), default=str))
        return
    params = Params(args.people, args.decisions, args.seed)
    url = args.url or managed_url(args.db, params)
    result = run(url, params, reuse=args.reuse, managed=not args.url, runs=args.runs)
    print()
    print(report(result))
    if any(r["wall_s"] > TARGET_SECONDS for r in result["runs"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
