"""Policy tests as data: ``policies/tests/*.yaml`` tables run against a policy bundle.

A table names a small organisation (departments, people and their grants) and cases::

    departments: {east: hq/sales/east/, south: hq/sales/south/}
    people:
      alice: {department: east, grants: [{role: sales, department: east}]}
    cases:
      - name: a salesperson reads her own customer and sees its phone
        subject: alice
        action: read
        resource: {type: crm.customer, owner: alice, department: east, fields: [phone]}
        expect: allow
        fields: {phone: visible}

A grant's ``department`` may be omitted (whole company); ``subtree: true`` covers the department
and below; ``valid_from`` / ``valid_until`` take ISO dates relative to nothing (absolute), or
``-3d`` / ``+10d`` relative to the run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from app.authz.engine import Engine, GrantEdge, Request
from app.authz.policy import Policy

_REL_RE = re.compile(r"^([+-])(\d+)d$")


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case."""

    table: str
    name: str
    passed: bool
    message: str


class TableError(ValueError):
    """A test table is malformed."""


def load_tables(directory: Path) -> dict[str, Any]:
    """Every ``*.yaml`` table in a directory, by file name."""
    out = {}
    for path in sorted(directory.glob("*.yaml")):
        out[path.name] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return out


def table_paths(tables: Mapping[str, Any]) -> set[str]:
    """Every department path the tables name (their records and grants live there)."""
    out: set[str] = set()
    for table in tables.values():
        if isinstance(table, Mapping) and isinstance(table.get("departments"), Mapping):
            out.update(str(p) for p in table["departments"].values())
    return out


def run_tables(policy: Policy, tables: Mapping[str, Any], now: datetime | None = None) -> list[CaseResult]:
    """Run every case of every table; malformed tables become failed results, not exceptions."""
    now = now or datetime.now(UTC)
    results: list[CaseResult] = []
    for name, table in tables.items():
        try:
            results.extend(run_table(policy, name, table, now))
        except (TableError, KeyError, TypeError, ValueError) as exc:
            results.append(CaseResult(name, "(table)", False, f"malformed table: {exc}"))
    return results


def run_table(policy: Policy, name: str, table: Mapping[str, Any], now: datetime) -> list[CaseResult]:
    """Run one table."""
    departments: dict[str, str] = dict(table.get("departments") or {})
    people: dict[str, Any] = dict(table.get("people") or {})
    edges = [edge for pid, spec in people.items() for edge in _edges(pid, spec or {}, departments, now)]
    engine = Engine(policy, edges)
    cases = table.get("cases") or []
    if not cases:
        raise TableError("no cases")
    return [_run_case(engine, name, i, case, people, departments, now) for i, case in enumerate(cases)]


def _edges(pid: str, spec: Mapping[str, Any], departments: Mapping[str, str], now: datetime) -> list[GrantEdge]:
    out = []
    for g in spec.get("grants") or []:
        dep = g.get("department")
        dom = "*" if dep is None else departments[dep] + ("*" if g.get("subtree") else "")
        out.append(GrantEdge(
            sub=f"user:{pid}", role=str(g["role"]), dom=dom, source="test",
            valid_from=_when(g.get("valid_from"), now), valid_until=_when(g.get("valid_until"), now),
        ))
    return out


def _when(value: Any, now: datetime) -> datetime | None:
    if value is None:
        return None
    match = _REL_RE.match(str(value))
    if match:
        days = int(match[2]) * (1 if match[1] == "+" else -1)
        return now + timedelta(days=days)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _run_case(
    engine: Engine, table: str, index: int, case: Mapping[str, Any], people: Mapping[str, Any],
    departments: Mapping[str, str], now: datetime,
) -> CaseResult:
    name = str(case.get("name") or f"case {index + 1}")
    subject = str(case["subject"])
    resource = dict(case["resource"])
    rtype, dep = resource.pop("type"), resource.pop("department")
    owner = resource.pop("owner", None)
    fields = list(resource.pop("fields", []) or [])
    home_dep = (people.get(subject) or {}).get("department")
    req = Request(
        sub=f"user:{subject}", dom=departments[dep], obj=rtype, act=str(case["action"]),
        owner=f"user:{owner}" if owner else "", home=departments.get(home_dep, "") if home_dep else "",
        attrs={"record": resource, "action": dict(case.get("action_properties") or {}), "context": {}},
        at=now,
    )
    decision = engine.decide(req)
    expect = str(case["expect"])
    if expect not in ("allow", "deny"):
        raise TableError(f"{name}: expect must be allow or deny")
    problems = []
    if decision.allowed != (expect == "allow"):
        why = decision.rule.text if decision.rule else decision.code
        problems.append(f"expected {expect}, got {'allow' if decision.allowed else 'deny'} ({why})")
    want_fields = dict(case.get("fields") or {})
    if want_fields:
        got = engine.field_levels(req, list(dict.fromkeys([*fields, *want_fields])), decision.allowed)
        problems.extend(f"field {f}: expected {lvl}, got {got[f]}" for f, lvl in want_fields.items() if got[f] != lvl)
    return CaseResult(table, name, not problems, "; ".join(problems) or "ok")
