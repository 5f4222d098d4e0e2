"""Incremental change: the engine after any sequence of grant and rule changes decides exactly as an
engine built from scratch with the final grants and policy, and readers are never disturbed."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.authz.engine import Engine, GrantEdge, Request
from app.authz.policy import parse_bundle, read_bundle

FILES = read_bundle(Path(__file__).resolve().parent.parent / "policies")
POLICY = parse_bundle(FILES)
NOW = datetime.now(UTC)
DEPTS = ["hq/", "hq/sales/", "hq/sales/east/", "hq/sales/south/", "hq/fin/", "hq/hr/", "hq/mgmt/"]
ROLES = sorted(POLICY.roles)
EXTRA_LINES = [
    "p, sales, *, crm.customer, export, own, action.rows <= 100, allow",
    "p, cs_agent, hq/sales/*, crm.contact, update, all, -, allow",
    "p, finance, *, oa.expense, approve, all, record.amount <= 800, allow",
    "p, employee, hq/fin/, oa.document, read, all, -, deny",
    "g, marketing, cs_agent, *",
]


def random_edge(rng: random.Random, gid: int) -> GrantEdge:
    dom = rng.choice([*DEPTS, "*", *(d + "*" for d in DEPTS)])
    until = rng.choice([None, NOW + timedelta(days=2), NOW - timedelta(days=1)])
    return GrantEdge(f"user:u{rng.randrange(12)}", rng.choice(ROLES), dom, grant_id=gid, valid_until=until)


def random_requests(rng: random.Random, n: int) -> list[Request]:
    out = []
    for _ in range(n):
        obj = rng.choice(sorted(POLICY.resources))
        attrs = {"record": {"amount": rng.choice([100, 4000, 60000]), "status": rng.choice(["draft", "submitted"]),
                            "classification": "internal", "level": "A"}, "action": {"rows": 50}, "context": {}}
        sub = f"user:u{rng.randrange(12)}"
        out.append(Request(sub, rng.choice(DEPTS), obj, rng.choice(POLICY.resources[obj].actions),
                           rng.choice([sub, "user:u99", ""]), rng.choice(DEPTS), attrs, NOW))
    return out


def with_lines(lines: list[str]):  # type: ignore[no-untyped-def]
    rules = FILES["rules.csv"].rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    return parse_bundle(dict(FILES) | {"rules.csv": rules})


def test_any_sequence_of_changes_equals_a_fresh_build() -> None:
    rng = random.Random(11)
    edges = {i: random_edge(rng, i) for i in range(40)}
    live = Engine(POLICY, edges.values())
    lines: list[str] = []
    next_id = 40
    for step in range(120):
        kind = rng.random()
        if kind < 0.4:
            edges[next_id] = random_edge(rng, next_id)
            live.add_grant(edges[next_id])
            next_id += 1
        elif kind < 0.7 and edges:
            gid = rng.choice(sorted(edges))
            live.remove_grant(gid)
            del edges[gid]
        else:
            line = rng.choice(EXTRA_LINES)
            lines = [x for x in lines if x != line] if line in lines else [*lines, line]
            live.apply_policy(with_lines(lines))
        fresh = Engine(with_lines(lines), edges.values())
        for req in random_requests(rng, 40):
            assert live.decide(req).allowed == fresh.decide(req).allowed, (step, req)
            fields = list(POLICY.classification.get(req.obj, {}))
            assert live.field_levels(req, fields, True) == fresh.field_levels(req, fields, True)


def test_readers_never_fail_while_a_writer_changes_grants_and_rules() -> None:
    engine = Engine(POLICY, [GrantEdge("user:u1", "sales_manager", "hq/sales/east/", grant_id=1)])
    reader_req = Request("user:u1", "hq/sales/east/", "crm.customer", "read", "", "", {"record": {}}, NOW)
    errors: list[BaseException] = []
    answers: set[bool] = set()
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                answers.add(engine.decide(reader_req).allowed)
        except BaseException as exc:  # any exception in a reader is a failure
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    rng = random.Random(3)
    for i in range(2, 600):
        engine.add_grant(GrantEdge("user:u1", rng.choice(ROLES), rng.choice(DEPTS), grant_id=i))
        if i % 3 == 0:
            engine.remove_grant(i - 1)
        if i % 50 == 0:
            engine.apply_policy(with_lines(rng.sample(EXTRA_LINES, 2)))
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert answers == {True}  # grant 1 (sales_manager on east) was never touched


def test_the_closure_memo_is_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from app.authz import engine as engine_mod

    monkeypatch.setattr(engine_mod, "_MEMO_LIMIT", 50)
    engine = Engine(POLICY, [GrantEdge(f"user:u{i}", "sales_manager", "*") for i in range(5)])
    for i in range(500):
        engine.holds(f"user:u{i % 5}", f"hq/d{i}/", NOW)
    assert len(engine._closure_memo) <= 50


BASE_LINES = [r.text for r in POLICY.rules[::7]] + [f.text for f in POLICY.field_rules[::5]]
EXTRA_FIELD_LINES = ["p2, sales, hq/fin/, crm.customer, read, phone, own, visible",
                     "p2, cs_agent, hq/sales/*, crm.contact, read, wechat, all, masked"]


def test_line_edits_equal_a_full_parse_and_a_fresh_engine() -> None:
    """``edit_policy`` + ``apply_delta`` (the rule-change path) against ``parse_bundle`` + a fresh build."""
    from app.authz.policy import edit_policy

    rng = random.Random(5)
    policy = POLICY
    live = Engine(POLICY, [random_edge(rng, i) for i in range(30)])
    edges = live.grants_of  # the grant set stays fixed here; only lines change
    present = set(BASE_LINES)
    absent = {line for line in [*EXTRA_LINES, *EXTRA_FIELD_LINES] if line not in POLICY.lines}
    assert len(absent) >= 5
    for step in range(60):
        add = rng.sample(sorted(absent), min(len(absent), rng.randint(0, 2)))
        remove = rng.sample(sorted(present), rng.randint(0 if add else 1, 2))
        policy, delta = edit_policy(policy, add, remove)
        present, absent = (present - set(remove)) | set(add), (absent - set(add)) | set(remove)
        reparsed = parse_bundle(policy.files)
        assert reparsed == policy and reparsed.digest == policy.digest, step
        assert reparsed.lines.keys() == policy.lines.keys()
        live.apply_delta(delta, policy)
        fresh = Engine(reparsed, [e for s in live.subjects() for e in edges(s)])
        for req in random_requests(rng, 30):
            assert live.decide(req).allowed == fresh.decide(req).allowed, (step, req)
            fields = list(POLICY.classification.get(req.obj, {}))
            assert live.field_levels(req, fields, True) == fresh.field_levels(req, fields, True)


def test_a_bad_line_edit_changes_nothing() -> None:
    import pytest

    from app.authz.policy import edit_policy
    from app.errors import InvalidPolicy

    existing = POLICY.rules[0].text
    bad = [
        (["p, astronaut, *, crm.customer, read, all, -, allow"], [], "unknown role"),
        ([existing], [], "duplicate line"),
        (["p, sales, *, crm.customer, fly, all, -, allow"], [], "has no action fly"),
        (["p2, sales, *, crm.customer, read, nosuchfield, all, visible"], [], "not classified"),
        (["p, sales, *, crm.customer, read, all, record.x ==, allow"], [], "cannot read"),
        (["q, not, a, rule"], [], "not a policy line"),
        (["p, sales, *, crm.customer, read, all, -, allow\np, x"], [], "one line per entry"),
        ([], ["p, sales, *, crm.customer, delete, all, -, allow"], "no such line"),
        (["g, employee, sales_manager, *"], [], "cycle"),
        (["p, sales, *, crm.customer, export, own, -, allow"] * 2, [], "duplicate line"),
    ]
    before = (POLICY.files, POLICY.digest, len(POLICY.rules), len(POLICY.lines))
    for add, remove, message in bad:
        with pytest.raises(InvalidPolicy) as caught:
            edit_policy(POLICY, add, remove)
        assert message in " ".join(caught.value.details or [str(caught.value)]), (add, remove, caught.value.details)
    assert (POLICY.files, POLICY.digest, len(POLICY.rules), len(POLICY.lines)) == before


def test_the_merged_bucket_memo_is_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from app.authz import engine as engine_mod

    monkeypatch.setattr(engine_mod, "_MERGED_LIMIT", 20)
    engine = Engine(POLICY, [GrantEdge("user:u1", "sales_manager", "*")])
    for i in range(300):
        engine.decide(Request("user:u1", f"hq/d{i}/", "crm.customer", "read", "", "", {"record": {}}, NOW))
    assert 0 < max(len(index.memo) for index in engine._rules.values()) <= 20
