"""The request mix of the benchmark: who asks, about which record, with which properties and fields.

Records live in leaf departments: 75 % in the subject's own department, 15 % elsewhere in its
division, 10 % anywhere.  8 % of subjects come from a pool of privileged or unusual people (admins,
auditors, executives, division managers, contractors...).  Reads weigh 40 % of actions; the owner
is the subject in 50 %; 35 % of CRM reads (and 10 % of CRM writes) ask about a classified field;
3 % of requests lose one property a condition reads (doubt); 3 % are contractors exporting their
own customers (only the contractor deny stops them); 1 % are department managers reading an
expense whose amount is missing (only the doubt of a conditional deny stops them).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from app.authz.engine import GrantEdge

PRIVILEGED = frozenset({"executive", "auditor", "crm_admin", "oa_admin", "it_admin", "finance_director",
                        "contractor", "legal", "hr", "cs_manager", "finance", "marketing"})
RECORD_PROPS: dict[str, dict[str, list[Any]]] = {
    "crm.customer": {"status": ["active", "lost", "prospect"], "level": ["A", "B", "C"]},
    "crm.contact": {"title": ["buyer", "cto"]},
    "crm.opportunity": {"stage": ["lead", "proposal", "won"]},
    "crm.contract": {"status": ["draft", "submitted", "signed"], "amount": [50_000, 150_000, 300_000, 800_000]},
    "oa.expense": {"status": ["draft", "submitted", "approved"], "amount": [800, 3_000, 8_000, 15_000, 40_000]},
    "oa.leave": {"status": ["pending", "approved"]},
    "oa.approval": {"status": ["pending", "done"]},
    "oa.document": {"classification": ["public", "internal", "secret"]},
}
ROWS = [20, 100, 800, 1_500, 5_000]
Row = list[Any]  # sub, dom, obj, act, owner, home, attrs, field, want


@dataclass
class Org:
    """What the request generator needs to know about the company."""

    people: dict[str, str]
    leaves: list[str]
    grants: list[GrantEdge]
    at: datetime
    by_dept: dict[str, list[str]] = field(default_factory=dict)
    pool: list[str] = field(default_factory=list)
    contractors: list[str] = field(default_factory=list)
    managers: list[str] = field(default_factory=list)
    divisions: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for sub, home in self.people.items():
            self.by_dept.setdefault(home, []).append(sub)
        for leaf in self.leaves:
            self.divisions.setdefault(leaf.rsplit("/", 2)[0] + "/", []).append(leaf)
        special = {g.sub for g in self.grants if g.role in PRIVILEGED or (g.role == "dept_manager" and
                                                                          g.dom.count("/") == 2)}
        self.pool = sorted(special)
        self.contractors = sorted({g.sub for g in self.grants if g.role == "contractor" and g.active(self.at)})
        self.managers = sorted({g.sub for g in self.grants if g.role == "dept_manager" and g.active(self.at)})


@dataclass(frozen=True)
class Catalog:
    """Resource types, their actions, write actions and classified fields (from the bundle)."""

    actions: dict[str, list[str]]
    writes: dict[str, list[str]]
    classified: dict[str, list[str]]

    @classmethod
    def from_files(cls, files: Mapping[str, str]) -> Catalog:
        """Read resources.yaml and fields.yaml of a bundle."""
        # CRM and OA record types only (accessgov.console is the console's own: no records to ask about)
        res = {k: v for k, v in yaml.safe_load(files["resources.yaml"])["resource_types"].items()
               if k in RECORD_PROPS}
        sens = yaml.safe_load(files["fields.yaml"])["sensitive_fields"]
        return cls({k: list(v["actions"]) for k, v in res.items()},
                   {k: list(v.get("write_actions") or []) for k, v in res.items()},
                   {k: sorted(v) for k, v in sens.items()})


def _record_dept(rng: random.Random, org: Org, home: str) -> str:
    if home in org.divisions:  # a division manager: somewhere in the division
        return rng.choice(org.divisions[home])
    r = rng.random()
    if r < 0.75:
        return home
    if r < 0.90:
        return rng.choice(org.divisions[home.rsplit("/", 2)[0] + "/"])
    return rng.choice(org.leaves)


def _attrs(rng: random.Random, obj: str, act: str) -> dict[str, Any]:
    record = {k: rng.choice(v) for k, v in RECORD_PROPS[obj].items()}
    action = {"rows": rng.choice(ROWS)} if act == "export" else {}
    attrs: dict[str, Any] = {"record": record, "action": action, "context": {}}
    if rng.random() < 0.03:  # doubt: a property a condition may read is missing
        keys = [("record", k) for k in record] + [("action", k) for k in action]
        if keys:
            part, key = rng.choice(keys)
            del attrs[part][key]
    return attrs


def _field(rng: random.Random, cat: Catalog, obj: str, act: str) -> tuple[str, str]:
    share = 0.35 if act == "read" else 0.10 if act in cat.writes[obj] else 0.0
    if not obj.startswith("crm.") or not cat.classified.get(obj) or rng.random() >= share:
        return "", ""
    return rng.choice(cat.classified[obj]), rng.choice(["masked", "visible"])


def _owner(rng: random.Random, org: Org, sub: str, dom: str) -> str:
    r = rng.random()
    if r < 0.50:
        return sub
    if r < 0.52:
        return ""
    return rng.choice(org.by_dept.get(dom) or [sub])


def _probe(rng: random.Random, org: Org, cat: Catalog, subs: list[str]) -> Row:
    sub = rng.choice(org.pool) if rng.random() < 0.08 else rng.choice(subs)
    home = org.people[sub]
    dom = _record_dept(rng, org, home)
    obj = rng.choice(sorted(cat.actions))
    acts = cat.actions[obj]
    act = "read" if rng.random() < 0.40 and "read" in acts else rng.choice(acts)
    fld, want = _field(rng, cat, obj, act)
    return [sub, dom, obj, act, _owner(rng, org, sub, dom), home, _attrs(rng, obj, act), fld, want]


def _contractor_export(rng: random.Random, org: Org) -> Row:
    sub = rng.choice(org.contractors)
    home = org.people[sub]
    obj = rng.choice(["crm.customer", "crm.contact"])
    attrs = {"record": {k: rng.choice(v) for k, v in RECORD_PROPS[obj].items()}, "action": {"rows": 20},
             "context": {}}
    return [sub, home if home.count("/") == 3 else org.leaves[0], obj, "export", sub, home, attrs, "", ""]


def _manager_doubt(rng: random.Random, org: Org) -> Row:
    sub = rng.choice(org.managers)
    home = org.people[sub]
    dom = _record_dept(rng, org, home)
    attrs = {"record": {"status": rng.choice(RECORD_PROPS["oa.expense"]["status"])}, "action": {}, "context": {}}
    return [sub, dom, "oa.expense", "read", _owner(rng, org, sub, dom), home, attrs, "", ""]


def make_probes(rng: random.Random, org: Org, files: Mapping[str, str], n: int) -> list[Row]:
    """``n`` request rows, deterministic in ``rng``'s state."""
    cat = Catalog.from_files(files)
    subs = sorted(org.people)
    out = []
    for _ in range(n):
        r = rng.random()
        if org.contractors and r < 0.03:
            out.append(_contractor_export(rng, org))
        elif org.managers and r < 0.04:
            out.append(_manager_doubt(rng, org))
        else:
            out.append(_probe(rng, org, cat, subs))
    return out
