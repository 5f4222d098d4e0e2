"""Checks for the deterministic demo company generator (app/demo/orgdata.py)."""

import hashlib
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta

import pytest

from app.demo.orgdata import (
    ADMIN_ACTIONS,
    ANOMALY_KINDS,
    CENTRAL_ROLES,
    CRM_ROLES,
    OA_ROLES,
    RESOURCE_ACTIONS,
    build_demo_org,
)

TODAY = date(2026, 11, 25)
REGIONS = {"D-SALES-EAST", "D-SALES-NORTH", "D-SALES-SOUTH", "D-SALES-WEST"}


@pytest.fixture(scope="module")
def org():
    return build_demo_org(today=TODAY)


@pytest.fixture(scope="module")
def ix(org):
    """Lookups shared by the checks below."""
    people = {p.id: p for p in org.people}
    depts = {d.id: d for d in org.departments}
    records = {r.id: r for r in org.records}
    accounts = {(a.system, a.person_id): a for a in org.accounts if a.person_id}
    by_local = {(a.system, a.local_id): a for a in org.accounts}
    roles = defaultdict(list)
    for r in org.source_roles:
        account = by_local[(r.system, r.local_id)]
        roles[account.person_id or f"{r.system}:{r.local_id}"].append(r)
    acts = defaultdict(list)
    for a in org.activity:
        acts[a.person_id].append(a)
    anomalies = defaultdict(list)
    for a in org.anomalies:
        anomalies[a.kind].append(a.subject)
    return {"people": people, "depts": depts, "records": records, "accounts": accounts,
                "by_local": by_local, "roles": roles, "acts": acts, "anomalies": anomalies}


def _digest(o) -> str:
    return hashlib.sha256(repr(o).encode()).hexdigest()


# --------------------------------------------------------------------------- determinism, speed

def test_same_seed_same_output(org):
    assert build_demo_org(today=TODAY) == org


def test_different_seed_differs(org):
    other = build_demo_org(today=TODAY, seed=7)
    assert [p.name for p in other.people] != [p.name for p in org.people]
    assert other.activity != org.activity


def test_output_does_not_depend_on_hash_seed(org):
    code = ("import hashlib, datetime; from app.demo.orgdata import build_demo_org; "
            "o = build_demo_org(today=datetime.date(2026, 11, 25)); "
            "print(hashlib.sha256(repr(o).encode()).hexdigest())")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         check=True)
    assert out.stdout.strip() == _digest(org)


# --------------------------------------------------------------------------- org chart

def test_sizes(org):
    assert 280 <= len(org.people) <= 320
    assert 17 <= len(org.departments) <= 22
    sizes = Counter(p.department_id for p in org.people)
    for region in REGIONS:
        assert 25 <= sizes[region] <= 45
    assert max(sizes, key=sizes.get) in REGIONS


def test_department_tree_is_one_acyclic_tree(org, ix):
    depts = ix["depts"]
    roots = [d for d in org.departments if d.parent_id is None]
    assert [r.code for r in roots] == ["hq"]
    for d in org.departments:
        seen, cur = set(), d
        while cur.parent_id is not None:
            assert cur.id not in seen
            seen.add(cur.id)
            cur = depts[cur.parent_id]
        assert cur is roots[0]
    siblings = Counter((d.parent_id, d.code) for d in org.departments)
    assert max(siblings.values()) == 1
    assert all(re.fullmatch(r"[a-z]+", d.code) for d in org.departments)
    for attr in ("id", "crm_id", "oa_id"):
        assert len({getattr(d, attr) for d in org.departments}) == len(org.departments)


@pytest.mark.parametrize("attr", ["id", "employee_no", "name", "email", "mobile", "idp_subject"])
def test_person_fields_unique(org, attr):
    values = [getattr(p, attr) for p in org.people]
    assert len(set(values)) == len(values)


def test_person_field_formats(org):
    for p in org.people:
        assert re.fullmatch(r"P\d{5}", p.id)
        assert re.fullmatch(r"E\d{7}", p.employee_no)
        assert p.employee_no[1:5] == str(p.hired_on.year)
        assert re.fullmatch(r"[a-z]+\.[a-z]+\d*@demo-corp\.cn", p.email)
        assert re.fullmatch(r"\+86 1\d{10}", p.mobile)
        assert re.fullmatch(r"idp\|[0-9a-f]{32}", p.idp_subject)
        assert 2 <= len(p.name) <= 4
        assert p.status in ("active", "left", "disabled")
        assert (p.left_on is not None) == (p.status == "left")
        assert p.left_on is None or p.hired_on < p.left_on <= TODAY


def test_managers_follow_department_heads(org, ix):
    people, depts = ix["people"], ix["depts"]
    ceos = [p for p in org.people if p.manager_id is None]
    assert len(ceos) == 1
    ceo = ceos[0]
    assert ceo.position == "总经理"
    assert ceo.department_id == "D-MGMT"
    assert all(p.manager_id is None or p.manager_id in people for p in org.people)
    head_of = {"D-HQ": ceo.id}  # 总公司 has no staff of its own; the CEO heads it
    for d in org.departments:
        if d.parent_id is None:
            continue
        inside = {p.manager_id for p in org.people if p.department_id == d.id
                  and p.manager_id and people[p.manager_id].department_id == d.id}
        assert len(inside) == 1, f"{d.name} needs exactly one head"
        head_of[d.id] = inside.pop()
    for p in org.people:
        head = head_of[p.department_id]
        if p.id != head:
            assert p.manager_id == head
        elif p.id != ceo.id:
            assert p.manager_id == head_of[depts[p.department_id].parent_id]


# --------------------------------------------------------------------------- accounts and roles

def test_account_local_ids_unique_per_system(org):
    keys = [(a.system, a.local_id) for a in org.accounts]
    assert len(set(keys)) == len(keys)
    crm = [a for a in org.accounts if a.system == "crm" and a.person_id]
    assert all(re.fullmatch(r"[a-z]+\d{2}", a.local_id) for a in crm)
    assert all(a.local_id.isdigit() for a in org.accounts if a.system == "oa")


def test_every_active_person_has_idp_and_oa(org, ix):
    for p in org.people:
        idp, oa = ix["accounts"][("idp", p.id)], ix["accounts"][("oa", p.id)]
        assert idp.local_id == p.idp_subject
        if p.status == "active":
            assert idp.status == oa.status == "active"
            names = {r.source_role for r in ix["roles"][p.id] if r.system == "oa"}
            assert names & {"普通员工", "外包人员"}
        else:
            assert idp.status == oa.status == "disabled"


def test_source_role_names_and_scopes(org, ix):
    allowed = {"crm": set(CRM_ROLES), "oa": set(OA_ROLES)}
    for r in org.source_roles:
        assert r.source_role in allowed[r.system]
        assert r.department_id is None or r.department_id in ix["depts"]
        assert ix["by_local"].get((r.system, r.local_id)) is not None
        assert r.valid_until is None or r.valid_from < r.valid_until
    people = ix["people"]
    for pid, roles in ix["roles"].items():
        if pid not in people:
            continue
        p = people[pid]
        for r in roles:
            if r.source_role == "部门经理":
                assert r.department_id == p.department_id
                assert r.include_subtree
            if r.source_role in ("财务总监", "总经理", "客服专员", "客服主管", "CRM管理员"):
                assert r.department_id is None
            if r.source_role == "大客户经理":
                assert r.department_id == "D-SALES-KA"
    contractors = [pid for pid, rs in ix["roles"].items() if any(r.source_role == "外包人员" for r in rs)]
    assert 3 <= len(contractors) <= 8
    assert {people[c].department_id for c in contractors} <= REGIONS | {"D-CS"}


def test_grants_and_delegations(org, ix):
    for g in org.grants + org.delegations:
        assert g.role in CENTRAL_ROLES
    for g in org.grants:
        assert g.person_id in ix["people"]
        assert g.granted_by == "system" or g.granted_by in ix["people"]
        assert g.valid_until is None or g.valid_from < g.valid_until
    temporary = [g for g in org.grants if g.valid_until]
    assert any(g.valid_until < TODAY.replace(day=1) for g in temporary)  # expired last month
    assert any(g.valid_until == TODAY + timedelta(days=10) for g in temporary)
    for d in org.delegations:
        assert {d.from_person_id, d.to_person_id} <= set(ix["people"])
        assert d.valid_from < d.valid_until


# --------------------------------------------------------------------------- records and activity

def test_record_counts_and_properties(org, ix):
    counts = Counter(r.type for r in org.records)
    assert counts["crm.customer"] == 600
    assert counts["crm.contact"] == 900
    assert set(counts) == set(RESOURCE_ACTIONS)
    assert len({r.id for r in org.records}) == len(org.records)
    for r in org.records:
        owner = ix["people"][r.owner_id]
        assert r.department_id == owner.department_id
        if r.type.startswith("crm."):
            assert owner.department_id.startswith("D-SALES")
        if "customer_id" in r.properties:
            assert ix["records"][r.properties["customer_id"]].type == "crm.customer"
    customers = [r for r in org.records if r.type == "crm.customer"]
    assert all(re.fullmatch(r"[0-9A-Z]{18}", c.properties["id_number"]) for c in customers)
    assert len({c.properties["name"] for c in customers}) == len(customers)
    amounts = [r.properties["amount"] for r in org.records if r.type == "oa.expense"]
    assert sum(a < 5000 for a in amounts) > len(amounts) / 2
    assert 0 < sum(a > 50000 for a in amounts) < len(amounts) / 10


def test_activity_refers_to_real_records(org, ix):
    window_start = TODAY - timedelta(days=90)
    for a in org.activity:
        assert a.person_id in ix["people"]
        assert a.action in RESOURCE_ACTIONS[a.resource_type]
        if a.action == "create":
            assert a.record_id is None
        else:
            assert ix["records"][a.record_id].type == a.resource_type
        assert window_start <= a.at.date() < TODAY
        assert a.at.utcoffset() == timedelta(hours=8)
        assert 9 <= a.at.hour < 19
        assert not a.fields or a.action == "read"


def test_activity_shape(org, ix):
    assert 22_000 <= len(org.activity) <= 28_000
    assert sum(a.at.weekday() < 5 for a in org.activity) > 0.95 * len(org.activity)
    reads = [a for a in org.activity
             if a.action == "read" and a.resource_type in ("crm.customer", "crm.contact")]
    share = sum(bool(a.fields) for a in reads) / len(reads)
    assert 0.2 < share < 0.4
    people = ix["people"]
    stray = [a for a in org.activity if a.resource_type == "crm.customer" and a.action == "read"
             and people[a.person_id].position == "销售代表"
             and ix["records"][a.record_id].department_id != people[a.person_id].department_id]
    assert stray, "some requests should plausibly be denied (other region's customers)"
    contractors = {pid for pid, p in people.items() if p.position.startswith("外包")}
    assert any(a.person_id in contractors and a.action == "export" for a in org.activity)


def test_nobody_acts_while_gone(org, ix):
    allowed_after_exit = set(ix["anomalies"]["leaver_still_active"])
    for pid, acts in ix["acts"].items():
        p = ix["people"][pid]
        assert p.status != "disabled"
        assert all(a.at.date() >= p.hired_on for a in acts)
        if p.left_on and pid not in allowed_after_exit:
            assert all(a.at.date() < p.left_on for a in acts)
        if p.left_on:
            assert all(a.resource_type.startswith("crm.") for a in acts if a.at.date() >= p.left_on)


# --------------------------------------------------------------------------- planted anomalies

def test_every_anomaly_kind_present_with_real_subject(org, ix):
    assert set(ix["anomalies"]) == set(ANOMALY_KINDS)
    for a in org.anomalies:
        assert a.summary_zh
        assert a.summary_en
        if a.subject.startswith("crm:"):
            assert ("crm", a.subject[4:]) in ix["by_local"]
        else:
            assert a.subject in ix["people"]
    expected = {"leaver_still_active": 3, "mover_kept_grants": 1, "sod_conflict": 3,
                "unused_admin": 2, "orphan_account": 4, "peer_outlier": 1,
                "expired_temporary_grant": 1, "expiring_grant": 1, "dormant_account": 3}
    assert {k: len(v) for k, v in ix["anomalies"].items()} == expected


def test_leavers_keep_active_crm_accounts(ix):
    used_after_exit = 0
    for pid in ix["anomalies"]["leaver_still_active"]:
        p = ix["people"][pid]
        assert p.status == "left"
        assert 10 <= (TODAY - p.left_on).days <= 60
        crm = ix["accounts"][("crm", pid)]
        assert crm.status == "active"
        assert ix["accounts"][("idp", pid)].status == "disabled"
        if crm.last_login_at.date() > p.left_on:
            used_after_exit += 1
            assert any(a.at.date() > p.left_on for a in ix["acts"][pid])
    assert used_after_exit == 1
    others = [p for p in ix["people"].values()
              if p.status == "left" and p.id not in ix["anomalies"]["leaver_still_active"]]
    assert others
    assert all(ix["accounts"].get(("crm", p.id)) is None
                          or ix["accounts"][("crm", p.id)].status == "disabled" for p in others)


def test_mover_keeps_east_role_and_uses_it(org, ix):
    (pid,) = ix["anomalies"]["mover_kept_grants"]
    p = ix["people"][pid]
    assert p.department_id == "D-MKT"
    assert ix["depts"]["D-MKT"].name == "市场部"
    assert p.manager_id is not None
    assert ix["people"][p.manager_id].department_id == "D-MKT"
    crm_roles = {(r.source_role, r.department_id) for r in ix["roles"][pid] if r.system == "crm"}
    assert ("销售经理", "D-SALES-EAST") in crm_roles
    moved_on = TODAY - timedelta(days=30)
    east_after = [a for a in ix["acts"][pid] if a.at.date() >= moved_on
                  and a.resource_type == "crm.customer"
                  and ix["records"][a.record_id].department_id == "D-SALES-EAST"]
    assert east_after


def _source_role_names(ix, pid):
    """Names of the source roles one person holds (CRM and OA)."""
    return {r.source_role for r in ix["roles"][pid]}


def test_sod_conflicts_show_in_roles_and_activity(org, ix):
    subjects = ix["anomalies"]["sod_conflict"]
    grants = defaultdict(set)
    for g in org.grants:
        grants[g.person_id].add(g.role)
    contract_sod, expense_sod = subjects[:2], subjects[2]
    for pid in contract_sod:
        roles = _source_role_names(ix, pid)
        assert "销售经理" in roles
        assert "法务专员" in roles or "finance_director" in grants[pid]
        did = {a.action for a in ix["acts"][pid] if a.resource_type == "crm.contract"}
        assert {"create", "approve"} <= did
    assert "会计" in _source_role_names(ix, expense_sod)
    assert "finance_director" in grants[expense_sod]
    expense_acts = [a for a in ix["acts"][expense_sod] if a.resource_type == "oa.expense"]
    assert any(a.action == "create" for a in expense_acts)
    approved = [ix["records"][a.record_id] for a in expense_acts if a.action == "approve"]
    assert approved
    assert all(r.owner_id != expense_sod and r.department_id.startswith("D-FIN")
                            for r in approved)


def test_unused_admins_never_use_admin_actions(org, ix):
    grants = {(g.person_id, g.role) for g in org.grants}
    for pid in ix["anomalies"]["unused_admin"]:
        roles = _source_role_names(ix, pid)
        assert roles & {"CRM管理员", "OA管理员"} or grants & {(pid, "crm_admin"), (pid, "oa_admin"),
                                                             (pid, "it_admin")}
        assert ix["acts"][pid], "an unused admin still works, just not as admin"
        assert not [a for a in ix["acts"][pid] if a.action in ADMIN_ACTIONS]
    other_crm_admins = [pid for pid, rs in ix["roles"].items() if pid in ix["people"]
                        and any(r.source_role == "CRM管理员" for r in rs)
                        and pid not in ix["anomalies"]["unused_admin"]]
    assert any(a.action in ADMIN_ACTIONS for pid in other_crm_admins for a in ix["acts"][pid])


def test_orphan_accounts(ix):
    for subject in ix["anomalies"]["orphan_account"]:
        account = ix["by_local"][("crm", subject[4:])]
        assert account.person_id is None
        assert ix["roles"][subject]
    recent = [s for s in ix["anomalies"]["orphan_account"]
              if ix["by_local"][("crm", s[4:])].status == "active"
              and (TODAY - ix["by_local"][("crm", s[4:])].last_login_at.date()).days <= 7]
    assert recent
    assert {"crm:test01", "crm:kefu"} <= set(ix["anomalies"]["orphan_account"])


def test_peer_outlier_differs_from_peers(ix):
    (pid,) = ix["anomalies"]["peer_outlier"]
    p = ix["people"][pid]
    assert p.department_id in REGIONS
    assert p.position == "销售代表"
    mine = {(r.source_role, r.department_id) for r in ix["roles"][pid]}
    assert any(role == "大区总监" and dept in REGIONS - {p.department_id} for role, dept in mine)
    assert ("财务专员", None) in mine
    peers = [q for q in ix["people"].values() if q.id != pid and q.department_id == p.department_id
             and q.position == p.position and q.status == "active"]
    assert len(peers) >= 10
    for q in peers:
        assert {r.source_role for r in ix["roles"][q.id]} == {"普通员工", "销售代表"}


def test_expired_and_expiring_grants(org, ix):
    (expired,) = ix["anomalies"]["expired_temporary_grant"]
    (expiring,) = ix["anomalies"]["expiring_grant"]
    first_of_month = TODAY.replace(day=1)
    last_month_start = (first_of_month - timedelta(days=1)).replace(day=1)
    assert any(g.person_id == expired and last_month_start <= g.valid_until < first_of_month
               for g in org.grants)
    assert any(g.person_id == expiring and g.valid_until == TODAY + timedelta(days=10)
               for g in org.grants)


def test_dormant_accounts(ix):
    for pid in ix["anomalies"]["dormant_account"]:
        assert ix["people"][pid].status == "active"
        assert not ix["acts"][pid]
        own = [a for (system, person), a in ix["accounts"].items() if person == pid]
        assert {a.system for a in own} >= {"idp", "oa"}
        for a in own:
            assert a.status == "active"
            assert (TODAY - a.last_login_at.date()).days > 90


def test_everyone_else_active_did_something(org, ix):
    dormant = set(ix["anomalies"]["dormant_account"])
    idle = [p.id for p in org.people
            if p.status == "active" and p.id not in dormant and not ix["acts"][p.id]]
    assert idle == []
    for p in org.people:
        if p.status == "active" and p.id not in dormant:
            assert (TODAY - ix["accounts"][("idp", p.id)].last_login_at.date()).days <= 30
