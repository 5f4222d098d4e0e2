"""One directory from three sources, end to end, and the decision API answering from it.

The OA (泛微 e-cology HRM) is the master of people, status, department and the department tree; the
CRM (简道云 Jiandaoyun) and the IdP are other sources. Every step goes through the service's real
entry points:

- ``POST /v1/sync/sources/{oa,crm}/runs`` pulls through the real connectors configured in a
  ``sources.yaml`` written here (``base_url`` pointing at the local fixture server, credentials read
  from environment variables set with ``monkeypatch``);
- ``POST /v1/sync/sources/idp/claims`` takes the ID token of a real sign-in at the test IdP (node
  oidc-provider; accounts in ``tests/idp/fixture.json``);
- ``POST /access/v1/evaluation`` then answers according to the directory.

No real e-cology or Jiandaoyun can run here, so both vendor APIs are replaced by recorded fixtures
(``tests/fixtures/sync/e2e``, written by hand in the documented wire format) served over real HTTP by
``tests/support/fixture_server.py``, one server per system. Day 1 and day 2 are two recorded sets; the
servers are switched from one to the other between the days.

This customer's Jiandaoyun address book is kept by an integration with the OA: ``integrate_id`` holds
the 工号 (e-cology ``workcode``). The API carries no mobile or e-mail, so the customer's mapping (the
shipped ``policies/sync/jiandaoyun.yaml`` plus ``employee_no: integrate_id``) is what links CRM
accounts to people.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.config import AuthSettings, SyncSettings
from app.directory.models import Account, Department, DepartmentSourceId, Grant, Person
from app.policy.models import Change
from app.sync.models import SyncConflict
from tests.conftest import DEV_SECRET, ROOT
from tests.support.fixture_server import FIXTURES, FixtureServer
from tests.support.idp import TestIdP
from tests.test_sync_claims import sign_in

pytestmark = pytest.mark.idp  # every test signs in at the test IdP (or, for the API's own tokens, asks it)

E2E = FIXTURES / "e2e"
JDY_KEY = "e2e-jdy-key-0001"
PASSWORDS = {"wangfang": "wangfang-test-pw", "liming": "liming-test-pw", "zhaolei": "zhaolei-test-pw"}

SOURCES = """
masters: {{people: oa, status: oa, name: oa, department: oa, departments: oa, employee_no: oa, mobile: oa,
          email: oa, manager: oa, position: oa}}
mover_keeps: [employee]
defaults: {{interval_minutes: 0, disable_threshold: 0.2}}
sources:
  oa:  {{connector: ecology, kind: oa, base_url: '{oa}',
         credentials_env: {{appid: E2E_EC_APPID, userid: E2E_EC_USERID, cpk: E2E_EC_CPK}}}}
  crm: {{connector: jiandaoyun, kind: crm, base_url: '{crm}', mapping: '{crm_mapping}',
         credentials_env: {{api_key: E2E_JDY_API_KEY}}}}
  idp: {{connector: oidc, kind: idp, id_token_audiences: [console],
         claims: {{key: sub, name: name, email: email, employee_no: employee_no, department: department,
                  roles: [crm_roles, oa_roles, groups]}}}}
"""

# Our ids of what the OA creates: people "oa-<e-cology id>", departments "oa-<e-cology id>".
WANGFANG, LIMING, ZHAOLEI, ZHOUJIE, SUNLI, QIANWEI = "oa-1001", "oa-2001", "oa-3001", "oa-2002", "oa-2003", "oa-5001"
SALES, EAST, MARKETING, SECURITY, AUDIT = "oa-10", "oa-11", "oa-20", "oa-30", "oa-40"


@pytest.fixture(scope="module")
def oa_key() -> str:
    """The e-cology server's RSA public key (base64 DER), handed out by the recorded ``regist``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


class World:
    """The service, the two recorded vendor systems and the IdP, with the calls the tests make."""

    def __init__(self, api: TestClient, idp: TestIdP, oa: FixtureServer, crm: FixtureServer, oa_key: str) -> None:
        self.api, self.idp, self.oa, self.crm, self.oa_key = api, idp, oa, crm, oa_key
        self.headers = {"Authorization": f"Bearer {idp.token('admin-cli')}"}

    def serve(self, day: str) -> None:
        """Switch both vendor systems to a recorded day (``day1``, ``day2``)."""
        self.oa.clear()
        self.oa.load(E2E / "oa_handshake", E2E / day / "oa", variables={"spk": self.oa_key})
        self.crm.clear()
        self.crm.load(E2E / day / "crm", variables={"jdy_key": JDY_KEY})

    def pull(self, source: str) -> dict[str, Any]:
        out = self.api.post(f"/v1/sync/sources/{source}/runs", headers=self.headers)
        assert out.status_code == 200, out.text
        return dict(out.json())

    def run(self, run_id: int) -> dict[str, Any]:
        return dict(self.api.get(f"/v1/sync/runs/{run_id}", headers=self.headers).json())

    def sign_in(self, login: str) -> dict[str, Any]:
        token = sign_in(self.idp, login, PASSWORDS[login])
        out = self.api.post("/v1/sync/sources/idp/claims", json={"id_token": token}, headers=self.headers)
        assert out.status_code == 200, out.text
        return dict(out.json())

    def conflicts(self) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
        rows = self.api.get("/v1/sync/conflicts", headers=self.headers).json()
        return sorted((c["person_id"], c["attribute"], c["master"], c["other"]) for c in rows)

    def decide(self, subject: str, action: str, department: str, owner: str | None = None) -> str:
        """On a CRM customer in an OA department (``oa:<e-cology id>``, the OA's numbering): ``allowed``,
        or why not (``no_role_here``, ``subject_inactive``, ``orphan_account``, ``unknown_subject``...)."""
        props = {"department": department} | ({"owner": owner} if owner else {})
        body = {"subject": {"type": "user", "id": subject}, "action": {"name": action},
                "resource": {"type": "crm.customer", "id": "CUS-E2E", "properties": props}}
        out = self.api.post("/access/v1/evaluation", json=body, headers=self.headers)
        assert out.status_code == 200, out.text
        answer = out.json()
        code = str(answer["context"]["reason"]["code"])
        assert answer["decision"] is (code == "allowed"), answer
        return code

    def db(self) -> Any:
        return self.api.app.state.services.factory()

    def grants(self, person_id: str) -> list[Grant]:
        with self.db() as s:
            return list(s.scalars(select(Grant).where(Grant.person_id == person_id).order_by(Grant.id)))

    def account(self, system: str, local_id: str) -> Account:
        with self.db() as s:
            return s.scalars(select(Account).where(Account.system == system, Account.local_id == local_id)).one()

    def digest(self) -> tuple[Any, ...]:
        """Everything a sync run may change in the directory."""
        with self.db() as s:
            return (
                tuple(s.execute(select(Person.id, Person.name, Person.status, Person.department_id,
                                       Person.employee_no, Person.mobile, Person.email, Person.manager_id,
                                       Person.position).order_by(Person.id)).all()),
                tuple(s.execute(select(Account.system, Account.local_id, Account.person_id, Account.status,
                                       Account.display_name, Account.department_id, Account.link_state,
                                       Account.link_method, Account.attributes)
                                .order_by(Account.system, Account.local_id)).all()),
                tuple(s.execute(select(Grant.id, Grant.person_id, Grant.role, Grant.department_id,
                                       Grant.source_role, Grant.revoked_at, Grant.suspended_at)
                                .order_by(Grant.id)).all()),
                tuple(s.execute(select(Department.id, Department.name, Department.parent_id, Department.path)
                                .order_by(Department.id)).all()),
                tuple(s.execute(select(DepartmentSourceId.system, DepartmentSourceId.source_id,
                                       DepartmentSourceId.department_id)
                                .order_by(DepartmentSourceId.system, DepartmentSourceId.source_id)).all()),
                tuple(s.execute(select(SyncConflict.person_id, SyncConflict.attribute, SyncConflict.master_value,
                                       SyncConflict.other_value, SyncConflict.resolved_at)
                                .order_by(SyncConflict.id)).all()),
                s.scalar(select(func.count()).select_from(Change)),
            )


@pytest.fixture
def oa_system() -> Iterator[FixtureServer]:
    """The e-cology OA: recorded fixtures on a real local HTTP server."""
    with FixtureServer() as server:
        yield server


@pytest.fixture
def crm_system() -> Iterator[FixtureServer]:
    """The Jiandaoyun CRM: recorded fixtures on a real local HTTP server."""
    with FixtureServer() as server:
        yield server


@pytest.fixture
def world(db_url: str, app_factory: Callable[..., TestClient], idp: TestIdP, oa_system: FixtureServer,
          crm_system: FixtureServer, oa_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    # db_url first: torn down last, after the app has flushed its decision log into it
    mapping = yaml.safe_load((ROOT / "policies" / "sync" / "jiandaoyun.yaml").read_text(encoding="utf-8"))
    mapping["accounts"]["fields"]["employee_no"] = "integrate_id"  # this customer's integration: 工号
    crm_mapping = tmp_path / "jiandaoyun-customer.yaml"
    crm_mapping.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES.format(oa=oa_system.url, crm=crm_system.url, crm_mapping=crm_mapping),
                       encoding="utf-8")
    for name, value in {"E2E_EC_APPID": "e2e-oa-app", "E2E_EC_USERID": "1", "E2E_EC_CPK": "E2E-CLIENT-PUBLIC-KEY",
                        "E2E_JDY_API_KEY": JDY_KEY}.items():
        monkeypatch.setenv(name, value)
    auth = AuthSettings(issuer=idp.issuer, audience=idp.api_audience, dev_tokens=True, dev_secret=DEV_SECRET,
                        jwks_min_refetch_seconds=0.0)
    api = app_factory(db_url, seed=None, auth=auth, sync=SyncSettings(sources_file=sources, schedule=False))
    out = World(api, idp, oa_system, crm_system, oa_key)
    out.serve("day1")
    return out


def day_one(world: World) -> None:
    """The OA, then the CRM, pulled on day 1; liming signs in at the IdP."""
    for source in ("oa", "crm"):
        run = world.pull(source)
        assert run["status"] == "applied", world.run(run["id"])
    assert world.sign_in("liming")["status"] == "applied"


def test_day_one_the_oa_makes_the_directory_the_crm_grants_and_a_sign_in_links(world: World) -> None:
    """The CRM and OA are recorded fixtures on a local HTTP server (no real vendor API can run here)."""
    assert world.decide("idp:u-liming", "create", "oa:10") == "unknown_subject"  # nobody is known yet

    oa = world.pull("oa")
    assert (oa["status"], oa["trigger"]) == ("applied", "manual"), world.run(oa["id"])
    assert {k: oa["counts"].get(k) for k in ("departments_created", "people_created", "created", "failed")} == {
        "departments_created": 6, "people_created": 6, "created": 6, "failed": 0}, oa
    with world.db() as s:
        people = {p.id: p for p in s.scalars(select(Person))}
        tree = {d.id: (d.name, d.parent_id) for d in s.scalars(select(Department))}
    assert {pid: (p.name, p.employee_no, p.department_id, p.status) for pid, p in people.items()} == {
        WANGFANG: ("王芳", "E1001", SECURITY, "active"), LIMING: ("李明", "E2001", SALES, "active"),
        ZHAOLEI: ("赵磊", "E3001", AUDIT, "active"), ZHOUJIE: ("周杰", "E2002", SALES, "active"),
        SUNLI: ("孙丽", "E2003", EAST, "active"), QIANWEI: ("钱伟", "E5001", MARKETING, "active")}
    assert (people[LIMING].email, people[LIMING].mobile, people[LIMING].position, people[LIMING].manager_id) == (
        "liming@accessgov.test", "+8613800002001", "销售代表", ZHOUJIE)
    (company,) = [did for did, (name, _) in tree.items() if name == "演示科技有限公司"]
    assert tree[SALES] == ("销售部", company) and tree[EAST] == ("华东销售组", SALES)
    assert world.account("oa", "2001").link_evidence == {"created_from": "oa", "run": oa["id"]}
    handshake = [r.path for r in world.oa.requests][:2]
    assert handshake == ["/api/ec/dev/auth/regist", "/api/ec/dev/auth/applytoken"]
    assert world.oa.unmatched() == []

    crm = world.pull("crm")
    assert crm["status"] == "applied", world.run(crm["id"])
    counts = crm["counts"]
    assert (counts["created"], counts["linked"], counts["orphans"]) == (6, 5, 1), counts
    assert (counts["grants_created"], counts["assignments_unlinked"], counts.get("conflicted", 0)) == (3, 1, 0), counts
    assert counts.get("people_created", 0) == 0  # the CRM is not master of people
    assert world.run(crm["id"])["errors"] == []
    assert {r.headers["authorization"] for r in world.crm.requests} == {f"Bearer {JDY_KEY}"}  # from the environment
    assert world.crm.unmatched() == []
    for local, pid, number in (("liming", LIMING, "E2001"), ("zhoujie", ZHOUJIE, "E2002"), ("sunli", SUNLI, "E2003"),
                               ("wangfang", WANGFANG, "E1001"), ("zhaolei", ZHAOLEI, "E3001")):
        account = world.account("crm", local)
        assert (account.person_id, account.link_method, account.link_state) == (pid, "employee_no", "auto")
        assert account.link_evidence == {"matched": "employee_no", "value": number, "run": crm["id"]}
    orphan = world.account("crm", "waibao01")
    assert orphan.person_id is None and orphan.link_method is None
    listed = world.api.get("/v1/accounts", params={"orphans": "true"}, headers=world.headers).json()
    assert [(a["system"], a["local_id"]) for a in listed] == [("crm", "waibao01")]
    held = {(g.person_id, g.role, g.department_id, g.include_subtree, g.source_system, g.source_role)
            for pid in people for g in world.grants(pid)}
    assert held == {(LIMING, "sales", SALES, False, "crm", "销售代表"),
                    (SUNLI, "sales", EAST, False, "crm", "销售代表"),
                    (ZHOUJIE, "sales_manager", SALES, False, "crm", "销售经理")}
    assert world.conflicts() == []  # the CRM agrees with the OA on names, numbers and departments

    # Decisions follow the directory: department-scoped CRM roles, in the OA's own numbering.
    assert world.decide("crm:liming", "read", "oa:10", owner="oa:2001") == "allowed"  # his own, in his department
    assert world.decide(LIMING, "create", "oa:10") == "allowed"
    assert world.decide(LIMING, "create", "oa:20") == "no_role_here"  # 市场部: not his department
    assert world.decide(ZHOUJIE, "read", "oa:10", owner="oa:2001") == "allowed"  # a manager: the whole department
    assert world.decide(ZHOUJIE, "read", "oa:20", owner="oa:5001") == "no_role_here"
    assert world.decide(SUNLI, "create", "oa:11") == "allowed"
    assert world.decide("crm:waibao01", "create", "oa:10") == "orphan_account"  # its 销售代表 granted nothing
    assert world.decide(QIANWEI, "read", "oa:20", owner="oa:5001") == "no_role_here"  # in the OA, nothing in the CRM

    # Sign-ins at the IdP link the IdP accounts to the people the OA created; claims grant nothing.
    before = world.digest()
    assert world.decide("idp:u-liming", "create", "oa:10") == "unknown_subject"
    for login, pid in (("liming", LIMING), ("wangfang", WANGFANG), ("zhaolei", ZHAOLEI)):
        out = world.sign_in(login)
        assert out["status"] == "applied", out
        assert out["run"]["counts"].get("people_created", 0) == 0 and out["run"]["counts"]["linked"] == 1
        link = out["account"]
        assert (link["person_id"], link["link"]["method"]) == (pid, "employee_no"), out
        assert link["link"]["evidence"]["value"] == world.account("oa", pid.removeprefix("oa-")).employee_no
        assert [g.source_system for g in world.grants(pid)] == (["crm"] if pid == LIMING else [])
    zhaolei = world.account("idp", "u-zhaolei")
    assert zhaolei.attributes["claimed_roles"] == ["crm_readonly", "auditor", "accessgov-auditors"]  # evidence only
    assert zhaolei.department_id == AUDIT  # the claim names 内审部: found in the OA's tree by its unique name
    after = world.digest()
    assert after[0] == before[0] and after[2] == before[2]  # people and grants: exactly as the OA and CRM left them
    assert world.conflicts() == []  # the claims agree with the OA (name, e-mail, number, department by name)
    assert world.decide("idp:u-liming", "create", "oa:10") == "allowed"  # the IdP account is liming now
    assert world.decide("idp:u-zhaolei", "read", "oa:10", owner="oa:2001") == "no_role_here"  # claimed "auditor"
    assert world.decide("idp:u-wangfang", "read", "oa:30", owner="oa:1001") == "no_role_here"
    assert world.sign_in("liming")["status"] == "unchanged"

    # Nothing changed at the sources: the next pulls change nothing.
    assert world.pull("oa")["status"] == "unchanged"
    assert world.pull("crm")["status"] == "unchanged"


def test_day_two_a_leaver_a_mover_and_a_conflict(world: World) -> None:
    """The CRM and OA are recorded fixtures on a local HTTP server (no real vendor API can run here).

    Day 2 in the OA: 李明 has left (e-cology status 5), 周杰 moved from 销售部 to 市场部. The CRM still
    has both as they were (李明 active, 周杰 in 销售部) and promoted 孙丽 to 销售经理.
    """
    day_one(world)
    assert world.decide(LIMING, "create", "oa:10") == world.decide("idp:u-liming", "create", "oa:10") == "allowed"
    assert world.decide(ZHOUJIE, "read", "oa:10", owner="oa:2001") == "allowed"
    world.serve("day2")

    oa = world.pull("oa")
    assert oa["status"] == "applied", world.run(oa["id"])
    assert (oa["counts"]["leavers"], oa["counts"]["movers"], oa["counts"]["grants_suspended"]) == (1, 1, 1), oa
    # (a) the leaver is denied through every account of his, the IdP's included
    for subject, why in ((LIMING, "subject_inactive"), ("crm:liming", "subject_inactive"),
                         ("idp:u-liming", "subject_inactive"), ("oa:2001", "account_disabled")):
        assert world.decide(subject, "create", "oa:10") == why, subject
        assert world.decide(subject, "read", "oa:10", owner="oa:2001") == why, subject
    with world.db() as s:
        assert s.get(Person, LIMING).status == "left"
        paths = {d.id: d.path for d in s.scalars(select(Department))}
    # (b) the mover: the grant scoped to the old department is suspended, naming the move
    assert world.conflicts() == []
    (grant,) = world.grants(ZHOUJIE)
    assert (grant.role, grant.department_id, grant.revoked_at) == ("sales_manager", SALES, None)
    assert grant.suspended_at is not None
    assert grant.suspend_reason == f"moved from {paths[SALES]} to {paths[MARKETING]} (sync of oa)"
    assert world.decide(ZHOUJIE, "read", "oa:10", owner="oa:2001") == "no_role_here"
    assert world.decide(SUNLI, "create", "oa:11") == "allowed"  # nobody else is touched

    crm = world.pull("crm")
    assert crm["status"] == "applied", world.run(crm["id"])
    assert crm["counts"]["conflicted"] == 2, crm
    # (c) the conflicts: both values, the master's (the OA's) kept
    assert world.conflicts() == [
        (LIMING, "status", {"source": "oa", "value": "left"}, {"source": "crm", "value": "active"}),
        (ZHOUJIE, "department", {"source": "oa", "value": MARKETING}, {"source": "crm", "value": SALES}),
    ]
    with world.db() as s:
        assert s.get(Person, ZHOUJIE).department_id == MARKETING
        assert s.get(Person, LIMING).status == "left"
    assert world.account("crm", "zhoujie").department_id == SALES  # what the CRM says stays on its account
    assert world.decide(ZHOUJIE, "read", "oa:10", owner="oa:2001") == "no_role_here"  # the CRM's stale department
    assert world.grants(ZHOUJIE)[0].suspended_at is not None  # the suspension is not lifted
    assert world.decide("crm:liming", "create", "oa:10") == "subject_inactive"
    # The CRM's own change applies: 孙丽 is 销售经理 of 华东销售组 now, and no longer 销售代表.
    assert {(g.role, g.department_id) for g in world.grants(SUNLI) if g.revoked_at is None} == {
        ("sales_manager", EAST)}
    assert world.decide(SUNLI, "read", "oa:11", owner="oa:2001") == "allowed"
    # A leaver who can still sign in at the IdP stays denied.
    assert world.sign_in("liming")["status"] == "unchanged"
    assert world.decide("idp:u-liming", "create", "oa:10") == "subject_inactive"


@pytest.mark.parametrize(("layer", "status", "needle"), [
    ("crm_truncated_page.json", "failed", "not valid JSON"),
    ("crm_vendor_error.json", "failed", "成员不存在"),
    ("crm_member_not_listed.json", "rejected", "newhire09"),
])
def test_a_broken_crm_pull_leaves_the_directory_as_it_was(world: World, layer: str, status: str,
                                                          needle: str) -> None:
    """The CRM and OA are recorded fixtures on a local HTTP server (no real vendor API can run here).

    Day 2's CRM set (孙丽 promoted) with one page broken: cut off mid-body, a vendor error (HTTP 400,
    code 1010), or a role member the address book does not list.
    """
    day_one(world)
    world.serve("day2")
    world.crm.load(E2E / "errors" / layer, variables={"jdy_key": JDY_KEY})
    before = world.digest()
    run = world.pull("crm")
    assert run["status"] == status, run
    assert needle in (run["message"] or "") + str(world.run(run["id"])["errors"]), world.run(run["id"])
    assert JDY_KEY not in str(world.run(run["id"]))
    assert world.digest() == before
    assert world.decide(SUNLI, "read", "oa:11", owner="oa:2001") == "no_matching_rule"  # 销售代表 reads her own only
    # The CRM fixed: the same day-2 set applies.
    world.serve("day2")
    assert world.pull("crm")["status"] == "applied"
    assert world.decide(SUNLI, "read", "oa:11", owner="oa:2001") == "allowed"


def test_the_crms_next_pull_does_not_undo_a_movers_suspension(world: World) -> None:
    """The CRM and OA are recorded fixtures on a local HTTP server (no real vendor API can run here).

    A suspended grant is "not in force until an officer restores or revokes it" (``Grant``), and a mover's
    department-scoped grants are suspended "for review". Day 2: the OA moves 周杰 (销售经理 in the CRM,
    scope department) from 销售部 to 市场部; the CRM still lists him in 销售部 with the same role. Its
    next pull must leave the suspension to an officer. It did not (before the fix): ``_assignments`` places the
    department scope in the person's new home department (市场部), so the desired grant differs from the
    suspended one; the suspended grant is revoked as "no longer assigned 销售经理 in crm" and a fresh,
    unreviewed sales_manager grant on 市场部 is created. 周杰 may then read every customer of 市场部, a
    department the CRM does not even place him in. (Found by this test; fixed: suspended grants are
    held for review, neither revoked nor granted anew by the source.)
    """
    day_one(world)
    world.serve("day2")
    assert world.pull("oa")["status"] == "applied"
    assert world.pull("crm")["status"] == "applied"
    grants = [(g.role, g.department_id, g.suspended_at is not None, g.revoked_at is not None)
              for g in world.grants(ZHOUJIE)]
    decision = world.decide(ZHOUJIE, "read", "oa:20", owner="oa:5001")
    # Still suspended, nothing revoked or granted behind the officer's back; denied in 市场部.
    assert (grants, decision) == ([("sales_manager", SALES, True, False)], "no_role_here")
