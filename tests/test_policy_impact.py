"""The impact of a policy change before it goes live (app/policy/impact.py): exactly the people whose
permissions change are listed, with what they gain or lose; the live engine is never touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.authz.directory import Directory, PersonView, State
from app.authz.engine import Engine, GrantEdge, Request
from app.authz.policy import edit_policy, parse_bundle, read_bundle
from app.policy.impact import Impact, delta_between, policy_impact

POLICY = parse_bundle(read_bundle(Path(__file__).resolve().parent.parent / "policies"))
NOW = datetime.now(UTC)
EAST, SOUTH = "hq/sales/east/", "hq/sales/south/"
PEOPLE = {  # id: (home, status, [(role, domain)])
    "A1": (EAST, "active", [("employee", "*"), ("sales", EAST)]),
    "A2": (SOUTH, "active", [("employee", "*"), ("sales", SOUTH)]),
    "A3": (EAST, "active", [("employee", "*"), ("sales_manager", EAST)]),
    "A4": ("hq/", "active", [("employee", "*"), ("marketing", "*")]),
    "A5": (EAST, "left", [("employee", "*"), ("sales", EAST)]),
    "A6": (EAST, "active", [("employee", "*")]),
    "A7": (EAST, "active", [("employee", "*"), ("cs_agent", "*"), ("sales_manager", EAST)]),
    "A8": (EAST, "active", [("employee", "*"), ("sales", EAST)]),  # the grant ended yesterday
}


def state(policy=POLICY) -> State:  # type: ignore[no-untyped-def]
    edges = [GrantEdge(f"user:{pid}", role, dom, grant_id=None,
                       valid_until=NOW - timedelta(days=1) if pid == "A8" and role == "sales" else None)
             for pid, (_home, _status, grants) in PEOPLE.items() for role, dom in grants]
    people = {pid: PersonView(pid, f"name-{pid}", status, None, home) for pid, (home, status, _) in PEOPLE.items()}
    return State(Engine(policy, edges, "1"), Directory(people=people), "1", 1)


def impact_of(add: list[str], remove: list[str], live: State | None = None, **kwargs: object) -> Impact:
    live = live or state()
    new, delta = edit_policy(live.engine.policy, add, remove)
    return policy_impact(live, new, delta, at=NOW, **kwargs)  # type: ignore[arg-type]


def people(rows: list) -> set[str]:  # type: ignore[type-arg]
    return {r.person_id for r in rows}


def test_a_rule_added_gives_exactly_its_role_holders_there_the_new_permission() -> None:
    live = state()
    out = impact_of(["p, sales, hq/sales/east/, crm.opportunity, delete, own, -, allow"], [], live)
    # A3 and A7 hold sales through sales_manager; A2 holds it in the south only; A5 has left; A8's grant ended.
    assert people(out.gains) == {"A1", "A3", "A7"} and out.losses == [] and out.losses_total == 0
    assert out.gains_total == 3 and out.people_gaining == 3 and out.people_losing == 0
    row = out.gains[0]
    assert (row.person_id, row.resource_type, row.system, row.action, row.effect, row.scope, row.area) == (
        "A1", "crm.opportunity", "crm", "delete", "allow", "own", EAST)
    assert next(r for r in out.gains if r.person_id == "A3").role == "sales"
    # Only holders of sales (or a role inheriting it) were compared, not everyone.
    assert out.people_checked == 4 and out.roles == ("sales",)
    # The live engine still answers as before.
    ask = Request("user:A1", EAST, "crm.opportunity", "delete", "user:A1", EAST,
                  {"record": {}, "action": {}, "context": {}}, NOW)
    assert live.engine.decide(ask).allowed is False
    assert live.engine.policy is POLICY


def test_a_rule_removed_takes_the_permission_away_from_exactly_its_holders() -> None:
    out = impact_of([], ["p, marketing, *, crm.opportunity, read, all, -, allow"])
    assert out.gains == [] and people(out.losses) == {"A4"} and out.losses_total == 1
    assert (out.losses[0].action, out.losses[0].area, out.losses[0].role) == ("read", "*", "marketing")


def test_a_permission_still_held_through_another_role_is_not_a_loss() -> None:
    # A3 and A7 both read customers in the east as sales managers; A7 also reads them company-wide (cs_agent).
    out = impact_of([], ["p, sales_manager, *, crm.customer, read, all, -, allow"])
    assert people(out.losses) == {"A3"} and out.gains == []
    assert out.people_checked == 2


def test_a_deny_added_is_a_loss_and_an_inheritance_added_is_a_gain() -> None:
    denied = impact_of(["p, sales_manager, hq/sales/east/, oa.expense, read, all, -, deny"], [])
    assert people(denied.losses) == {"A3", "A7"} and denied.gains == []
    assert {r.effect for r in denied.losses} == {"deny"}
    inherited = impact_of(["g, marketing, cs_agent, *"], [])
    assert people(inherited.gains) == {"A4"} and inherited.losses == []
    assert {(r.resource_type, r.action) for r in inherited.gains if r.kind == "rule"} == {
        ("crm.customer", "read"), ("crm.contact", "read")}
    assert {(r.resource_type, r.action, r.effect) for r in inherited.gains if r.kind == "field"} == {
        ("crm.customer", "read:phone", "masked"), ("crm.contact", "read:phone", "masked")}


def test_field_rules_count_too() -> None:
    line = next(f.text for f in POLICY.field_rules if f.role == "sales")
    out = impact_of([], [line])
    assert out.people_checked == 4 and out.gains_total + out.losses_total >= 2
    assert {r.kind for r in (*out.gains, *out.losses)} == {"field"}
    assert people(out.gains) | people(out.losses) <= {"A1", "A2", "A3", "A7"}


def test_rows_are_capped_and_the_totals_stay_exact() -> None:
    out = impact_of(["p, sales, *, crm.contract, export, own, -, allow"], [], limit=1)
    assert len(out.gains) == 1 and out.gains_total == 4 and out.truncated
    assert people(out.gains) == {"A1"}  # people in id order


def test_a_role_nobody_holds_affects_nobody() -> None:
    out = impact_of(["p, contractor, *, crm.customer, read, all, -, allow"], [])
    assert out.people_checked == 0 and out.gains == [] and out.losses == []


def test_going_back_to_an_older_version_reverses_a_change() -> None:
    changed, _ = edit_policy(POLICY, ["p, sales, hq/sales/east/, crm.opportunity, delete, own, -, allow"],
                             ["p, marketing, *, crm.opportunity, read, all, -, allow"])
    live = state(changed)
    back = policy_impact(live, POLICY, delta_between(changed, POLICY), at=NOW)
    assert people(back.losses) == {"A1", "A3", "A7"} and people(back.gains) == {"A4"}
    assert back.counts["rules_added"] == 1 and back.counts["rules_removed"] == 1


def test_a_wider_permission_lost_is_a_loss_even_where_a_narrower_one_stays() -> None:
    # A7 reads customers company-wide (cs_agent) and in the east (sales manager): only the company-wide one goes.
    out = impact_of([], ["p, cs_agent, *, crm.customer, read, all, -, allow"])
    assert out.gains == [] and people(out.losses) == {"A7"}
    assert [(r.resource_type, r.action, r.area) for r in out.losses if r.kind == "rule"] == [
        ("crm.customer", "read", "*")]


def test_an_inheritance_removed_takes_only_what_no_other_line_still_gives() -> None:
    out = impact_of([], ["g, sales_manager, sales, *"])
    assert people(out.losses) == {"A3", "A7"} and out.gains == []
    lost = {(r.resource_type, r.action, r.scope) for r in out.losses if r.person_id == "A3" and r.kind == "rule"}
    assert ("crm.customer", "create", "all") in lost  # sales may create customers, a sales manager as such not
    assert ("crm.customer", "read", "own") not in lost  # a sales manager still reads every customer there
