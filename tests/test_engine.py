"""The compiled engine's semantics, conditions and policy validation (no database, no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.authz.conditions import ConditionError, parse_condition
from app.authz.engine import Engine, GrantEdge, Request
from app.authz.policy import parse_bundle, read_bundle
from app.authz.rules import domain_prefixes, key_match, scope_match
from app.errors import InvalidPolicy

POLICIES = Path(__file__).resolve().parent.parent / "policies"
FILES = read_bundle(POLICIES)
POLICY = parse_bundle(FILES)
NOW = datetime.now(UTC)


def req(sub: str, dom: str, obj: str, act: str, owner: str = "", home: str = "", **record: object) -> Request:
    return Request(sub, dom, obj, act, owner, home, {"record": record, "action": {}, "context": {}}, NOW)


def test_conditions_parse_and_compare_without_eval() -> None:
    cond = parse_condition("record.amount <= 5000 and record.status in [submitted, pending]")
    assert cond.evaluate({"record": {"amount": 5000, "status": "pending"}})
    assert not cond.evaluate({"record": {"amount": 5001, "status": "pending"}})
    assert not cond.evaluate({"record": {"amount": 10, "status": "draft"}})


@pytest.mark.parametrize("text", ["__import__('os').system('id')", "record.amount <= abc", "x.y == 1",
                                  "record.a in 3", "record.amount <"])
def test_conditions_refuse_anything_outside_the_grammar(text: str) -> None:
    with pytest.raises(ConditionError):
        parse_condition(text)


def test_missing_or_mistyped_properties_raise_instead_of_guessing() -> None:
    cond = parse_condition("record.amount <= 5000")
    with pytest.raises(ConditionError):
        cond.evaluate({"record": {}})
    with pytest.raises(ConditionError):
        cond.evaluate({"record": {"amount": "5000"}})
    assert not parse_condition("record.flag == 1").evaluate({"record": {"flag": True}})


def test_key_match_and_prefixes_agree() -> None:
    dom = "hq/sales/east/"
    patterns = ["*", "hq/*", "hq/sales/*", "hq/sales/east/*", "hq/sales/east/", "hq/fin/*", "hq/sales/"]
    matching = {p for p in patterns if key_match(dom, p)}
    assert matching == {"*", "hq/*", "hq/sales/*", "hq/sales/east/*", "hq/sales/east/"}
    assert domain_prefixes(dom) == ["", "hq/", "hq/sales/", "hq/sales/east/"]


def test_data_scopes() -> None:
    assert scope_match("own", "user:a", "user:a", "hq/x/", "")
    assert not scope_match("own", "user:a", "", "hq/x/", "")
    assert scope_match("dept", "user:a", "", "hq/x/", "hq/x/")
    assert not scope_match("dept", "user:a", "", "hq/x/y/", "hq/x/")
    assert scope_match("tree", "user:a", "", "hq/x/y/", "hq/x/")
    assert not scope_match("tree", "user:a", "", "hq/z/", "hq/x/")
    assert scope_match("listed:hq/fin/*;hq/mgmt/", "user:a", "", "hq/fin/acct/", "")
    assert not scope_match("listed:hq/fin/*;hq/mgmt/", "user:a", "", "hq/mgmt/x/", "")
    assert not scope_match("bogus", "user:a", "user:a", "hq/", "hq/")


def test_grants_hold_roles_only_within_their_domain_and_window() -> None:
    edges = [
        GrantEdge("user:a", "sales_manager", "hq/sales/*"),
        GrantEdge("user:b", "sales_manager", "hq/sales/east/", valid_until=NOW - timedelta(seconds=1)),
        GrantEdge("user:c", "sales_manager", "hq/sales/east/", valid_from=NOW + timedelta(days=1)),
    ]
    engine = Engine(POLICY, edges)
    assert engine.decide(req("user:a", "hq/sales/east/", "crm.customer", "read")).allowed
    assert not engine.decide(req("user:a", "hq/fin/", "crm.customer", "read")).allowed
    assert engine.decide(req("user:b", "hq/sales/east/", "crm.customer", "read")).code == "no_role_here"
    assert engine.decide(req("user:c", "hq/sales/east/", "crm.customer", "read")).code == "no_role_here"


def test_inherited_roles_carry_their_chain_into_the_reason() -> None:
    engine = Engine(POLICY, [GrantEdge("user:a", "sales_manager", "hq/sales/east/", grant_id=7)])
    decision = engine.decide(req("user:a", "hq/sales/east/", "crm.customer", "create"))
    assert decision.allowed
    assert decision.hold is not None
    assert decision.hold.chain == ("sales_manager", "sales")
    assert decision.hold.grant.grant_id == 7


def test_explicit_deny_beats_allow_and_doubt_denies() -> None:
    engine = Engine(POLICY, [GrantEdge("user:m", "sales_manager", "hq/sales/south/"),
                             GrantEdge("user:m", "employee", "*")])
    export = Request("user:m", "hq/sales/south/", "crm.customer", "export", "", "",
                     {"record": {}, "action": {"rows": 5}, "context": {}}, NOW)
    assert engine.decide(export).code == "explicit_deny"
    # Deny rule whose condition cannot be evaluated (status missing) applies: the update is denied.
    contract = req("user:m", "hq/sales/south/", "crm.contract", "update", owner="user:m")
    assert not engine.decide(contract).allowed


def test_unknown_fields_are_hidden_and_denied_records_hide_everything() -> None:
    engine = Engine(POLICY, [GrantEdge("user:a", "sales", "hq/sales/east/")])
    own = req("user:a", "hq/sales/east/", "crm.customer", "read", owner="user:a")
    assert engine.field_levels(own, ["name", "phone", "salary"], True) == {
        "name": "visible", "phone": "visible", "salary": "hidden"}
    other = req("user:a", "hq/sales/east/", "crm.customer", "read", owner="user:b")
    assert not engine.decide(other).allowed
    assert engine.field_levels(other, ["name"], False) == {"name": "hidden"}


def _with(name: str, text: str) -> dict[str, str]:
    return dict(FILES) | {name: text}


@pytest.mark.parametrize(("name", "text", "needle"), [
    ("rules.csv", FILES["rules.csv"] + "p, ghost, *, crm.customer, read, all, -, allow\n", "unknown role ghost"),
    ("rules.csv", FILES["rules.csv"] + "p, sales, *, crm.customer, fly, all, -, allow\n", "has no action fly"),
    ("rules.csv", FILES["rules.csv"] + "p, sales, hq/*/east/, crm.customer, read, all, -, allow\n",
     "bad domain pattern"),
    ("rules.csv", FILES["rules.csv"] + "p, sales, *, crm.customer, read, mine, -, allow\n", "unknown data scope"),
    ("rules.csv", FILES["rules.csv"] + "p, sales, *, crm.customer, read, all, record.x <= y, allow\n",
     "needs a number"),
    ("rules.csv", FILES["rules.csv"] + "p, sales, *, crm.customer, read, own, -, allow\n", "duplicate line"),
    ("rules.csv", FILES["rules.csv"] + "g, employee, sales, *\n", "cycle"),
    ("field_rules.csv", FILES["field_rules.csv"] + "p2, sales, *, crm.customer, read, name, all, visible\n",
     "not classified"),
    ("model.conf", FILES["model.conf"].replace("r.act == p.act && ", ""), "differs from the model"),
])
def test_invalid_policies_are_rejected_with_a_reason(name: str, text: str, needle: str) -> None:
    with pytest.raises(InvalidPolicy) as info:
        parse_bundle(_with(name, text))
    assert any(needle in p for p in info.value.details), info.value.details
