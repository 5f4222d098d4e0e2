"""The rule template every leaf department copies, its per-department knobs, and the company lines.

A template line is ``role, type, action, scope, condition, effect`` (``p``) or
``role, type, read|write, field, scope, level`` (``p2``), optionally prefixed ``?flag`` (the line
exists only in departments whose knob ``flag`` is true).  ``{knob}`` in a condition is the
department's (or division's) value.  ``bench.scenario`` instantiates the template per department as
Casbin lines; ``bench.engines.cedar`` translates the same template into Cedar policies whose
variations read the knobs as department attributes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.authz.rules import split_line

POLICIES = Path(__file__).resolve().parent.parent / "policies"

# Roles whose allow rules are copied into every leaf department (their grants are department-scoped).
DEPT_ROLES = frozenset({"employee", "sales", "sales_manager", "key_account_manager", "dept_manager"})
DEPT_FIELD_ROLES = frozenset({"sales", "sales_manager", "key_account_manager"})

DEPT_RULES = """
employee, oa.leave, create, own, -, allow
employee, oa.leave, read, own, -, allow
employee, oa.expense, create, own, -, allow
employee, oa.expense, read, own, -, allow
employee, oa.expense, update, own, record.status in [draft], allow
employee, oa.approval, create, own, -, allow
employee, oa.approval, read, own, -, allow
employee, oa.approval, read, tree, record.status == done, allow
employee, oa.document, create, dept, -, allow
employee, oa.document, read, dept, record.classification in [public, internal], allow
employee, oa.document, read, all, record.classification == public, allow
employee, oa.document, update, own, -, allow
?employee_reads_contacts employee, crm.contact, read, dept, -, allow
sales, crm.customer, create, all, -, allow
sales, crm.customer, read, own, -, allow
sales, crm.customer, update, own, record.status in [active], allow
sales, crm.customer, export, own, action.rows <= {sales_rows}, allow
sales, crm.contact, create, all, -, allow
sales, crm.contact, read, own, -, allow
sales, crm.contact, update, own, -, allow
sales, crm.opportunity, create, all, -, allow
sales, crm.opportunity, read, own, -, allow
sales, crm.opportunity, update, own, -, allow
sales, crm.opportunity, close, own, -, allow
sales, crm.contract, create, all, -, allow
sales, crm.contract, read, own, -, allow
sales, crm.contract, update, own, record.status in [draft], allow
?sales_export_denied sales, crm.customer, export, all, -, deny
?sales_export_denied sales, crm.contact, export, all, -, deny
sales_manager, crm.customer, read, all, -, allow
sales_manager, crm.customer, update, all, -, allow
sales_manager, crm.customer, transfer, all, -, allow
sales_manager, crm.customer, export, all, action.rows <= {export_rows}, allow
sales_manager, crm.contact, read, all, -, allow
sales_manager, crm.contact, export, all, action.rows <= {export_rows}, allow
sales_manager, crm.opportunity, read, all, -, allow
sales_manager, crm.opportunity, update, all, -, allow
sales_manager, crm.opportunity, close, all, -, allow
sales_manager, crm.contract, read, all, -, allow
sales_manager, crm.contract, approve, all, record.amount <= {contract_limit} and record.status == submitted, allow
key_account_manager, crm.customer, read, all, record.level in {kam_levels}, allow
key_account_manager, crm.customer, update, all, record.level in {kam_levels} and record.status in [active], allow
key_account_manager, crm.opportunity, read, all, -, allow
dept_manager, oa.expense, read, all, -, allow
dept_manager, oa.expense, approve, all, record.amount <= {expense_limit} and record.status == submitted, allow
dept_manager, oa.leave, read, all, -, allow
dept_manager, oa.leave, approve, all, record.status == pending, allow
dept_manager, oa.approval, read, all, -, allow
dept_manager, oa.approval, approve, all, record.status == pending, allow
dept_manager, oa.approval, reject, all, record.status == pending, allow
dept_manager, oa.document, read, all, -, allow
?docs_shared dept_manager, oa.document, share, tree, -, allow
"""

DIVISION_RULES = """
dept_manager, oa.expense, approve, tree, record.amount <= {div_expense_limit} and record.status == submitted, allow
dept_manager, crm.customer, read, tree, -, allow
dept_manager, crm.opportunity, read, tree, -, allow
hr, oa.leave, read, tree, -, allow
hr, oa.approval, read, tree, -, allow
?div_contractor_denied contractor, crm.contract, read, all, -, deny
?div_contractor_denied contractor, crm.customer, read, all, record.level in [A], deny
"""

# Company lines beyond those taken from policies/rules.csv: a listed scope over departments that exist,
# tree scopes for company-wide roles, and a conditional deny on a frequent question (doubt denies).
EXTRA_COMPANY_RULES = """
hr, oa.expense, read, listed:hq/v0/*;hq/v1/d11/, -, allow
finance, oa.expense, approve, tree, record.amount <= 2000 and record.status == submitted, allow
cs_agent, crm.customer, update, tree, record.status in [active], allow
dept_manager, oa.expense, read, all, record.amount > 30000, deny
"""

DEPT_FIELD_RULES = """
sales, crm.customer, read, phone, own, visible
sales, crm.customer, write, phone, own, visible
sales, crm.customer, read, credit_limit, own, masked
sales, crm.contact, read, phone, own, visible
sales, crm.contact, read, email, own, visible
sales, crm.contact, read, wechat, own, visible
sales, crm.contact, write, phone, own, visible
sales, crm.contact, write, email, own, visible
sales, crm.contact, write, wechat, own, visible
sales, crm.opportunity, read, amount, own, visible
sales, crm.opportunity, write, amount, own, visible
sales, crm.contract, read, amount, own, visible
sales, crm.contract, write, amount, own, visible
?sales_contract_amounts sales, crm.contract, read, amount, all, masked
sales_manager, crm.customer, read, phone, all, visible
sales_manager, crm.customer, read, credit_limit, all, visible
sales_manager, crm.customer, write, credit_limit, all, visible
sales_manager, crm.customer, read, id_number, all, masked
sales_manager, crm.contact, read, phone, all, visible
sales_manager, crm.contact, read, email, all, visible
sales_manager, crm.opportunity, read, amount, all, visible
sales_manager, crm.contract, read, amount, all, visible
key_account_manager, crm.customer, read, phone, all, masked
"""


@dataclass(frozen=True, slots=True)
class TemplateLine:
    """One template line: its tokens (without ptype and domain) and the flag that gates it."""

    tokens: tuple[str, ...]
    flag: str | None = None

    def render(self, knobs: Mapping[str, Any]) -> tuple[str, ...]:
        """The tokens with ``{knob}`` placeholders replaced by the knob values."""
        return tuple(_fill(t, knobs) for t in self.tokens)


def _fill(token: str, knobs: Mapping[str, Any]) -> str:
    if "{" not in token:
        return token
    values = {k: (f"[{', '.join(v)}]" if isinstance(v, list) else v) for k, v in knobs.items()}
    return token.format(**values)


def parse_template(text: str) -> list[TemplateLine]:
    """Template lines of a block, flags split off."""
    out = []
    for raw in text.strip().splitlines():
        line, flag = raw.strip(), None
        if line.startswith("?"):
            flag, line = line[1:].split(" ", 1)
        out.append(TemplateLine(tuple(split_line(line)), flag))
    return out


def draw_dept_knobs(rng: random.Random) -> dict[str, Any]:
    """One department's variations (the baseline's shares)."""
    return {
        "employee_reads_contacts": rng.random() < 0.20,
        "sales_export_denied": rng.random() < 0.30,
        "sales_contract_amounts": rng.random() < 0.10,
        "docs_shared": rng.random() < 0.85,
        "sales_rows": rng.choice([50, 200]),
        "export_rows": rng.choice([500, 1000, 2000]),
        "contract_limit": rng.choice([100000, 200000, 500000]),
        "expense_limit": rng.choice([2000, 5000, 10000]),
        "kam_levels": rng.choice([["A"], ["A", "B"]]),
    }


def draw_division_knobs(rng: random.Random) -> dict[str, Any]:
    """One division's variations."""
    return {"div_expense_limit": rng.choice([20000, 50000]), "div_contractor_denied": rng.random() < 0.25}


def policy_lines(name: str) -> list[list[str]]:
    """Token lists of a policies/ CSV file (comments and blanks skipped)."""
    text = (POLICIES / name).read_text(encoding="utf-8")
    return [t for t in (split_line(raw.strip()) for raw in text.splitlines()) if t]


def company_rules() -> list[TemplateLine]:
    """Company-wide (``*``) rule lines: policies/rules.csv minus what the department template copies."""
    out = []
    for t in policy_lines("rules.csv"):
        if t[0] != "p" or t[2] != "*" or (t[1] in DEPT_ROLES and t[7] == "allow"):
            continue  # per-department exceptions of the product policy name departments we lack
        out.append(TemplateLine((t[1], *t[3:])))
    return out + parse_template(EXTRA_COMPANY_RULES)


def company_field_rules() -> list[TemplateLine]:
    """Company-wide field rules: policies/field_rules.csv minus the department-scoped roles."""
    return [TemplateLine((t[1], *t[3:])) for t in policy_lines("field_rules.csv")
            if t[0] == "p2" and t[2] == "*" and t[1] not in DEPT_FIELD_ROLES]


def inheritance_lines() -> list[list[str]]:
    """The role inheritance ``g`` lines of policies/rules.csv, reused as they are."""
    return [t for t in policy_lines("rules.csv") if t[0] == "g"]


def active_lines(lines: list[TemplateLine], knobs: Mapping[str, Any]) -> Iterator[tuple[str, ...]]:
    """Rendered lines whose flag (if any) is set in ``knobs``."""
    for line in lines:
        if line.flag is None or knobs[line.flag]:
            yield line.render(knobs)
