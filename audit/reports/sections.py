"""The report as labelled tables, the same for every format: summary, scope, populations, findings, decisions.

Cells keep their type (a number stays a number, a time stays an aware datetime, a list stays a list)
so that each format writes them its own way: a real date in XLSX, 2026年11月25日 14:05 in HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

from audit.i18n import format_date, format_datetime, join, label, t, utc_offset, yes_no
from audit.i18n import keys as i18n_keys
from audit.reports.data import (
    DecisionRow,
    FindingRow,
    PersonRow,
    ReportData,
    ScopeValue,
    pick,
    population_changes,
    population_totals,
)
from audit.reports.validation import printable


@dataclass(frozen=True, slots=True)
class Label:
    """A vocabulary value: its code (for styling) and its text in the report's language."""

    code: str
    text: str

    def __str__(self) -> str:
        return self.text


Cell = str | int | datetime | Label | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its catalogue key (``col.<key>``) and a width in characters for XLSX and PDF."""

    key: str
    width: int = 12


@dataclass(frozen=True, slots=True)
class Section:
    """One table of the report."""

    key: str  # summary | scope | population_at_launch | findings | decisions | population_after
    title: str
    columns: tuple[Column, ...]
    headers: tuple[str, ...]
    rows: list[tuple[Cell, ...]]
    note: str = ""  # shown instead of an empty table


@dataclass(frozen=True, slots=True)
class Group:
    """A labelled group of (item, value) pairs of the summary."""

    key: str
    title: str
    items: list[tuple[str, Cell]]


SECTION_KEYS = ("summary", "scope", "population_at_launch", "findings", "decisions", "population_after")

PERSON_COLUMNS = (Column("person_id", 10), Column("person_name", 10), Column("department", 16),
                  Column("position", 14), Column("person_status", 8), Column("accounts", 26),
                  Column("grants", 40), Column("privileged", 6))
FINDING_COLUMNS = (Column("finding_id", 9), Column("kind", 18), Column("severity", 8), Column("finding_status", 10),
                   Column("person_id", 10), Column("person_name", 10), Column("system", 8), Column("account", 16),
                   Column("permission", 24), Column("field", 12), Column("evidence_summary", 40),
                   Column("evidence_details", 48), Column("recommendation", 28), Column("first_seen", 17),
                   Column("last_seen", 17), Column("quarters", 14))
DECISION_COLUMNS = (Column("item_id", 9), Column("person_id", 10), Column("person_name", 10), Column("grant", 28),
                    Column("system_recommendation", 20), Column("reviewer", 12), Column("decision", 10),
                    Column("reason", 36), Column("decided_at", 17), Column("accepted_until", 17),
                    Column("apply_result", 10), Column("change_id", 10), Column("apply_detail", 24))
SUMMARY_COLUMNS = (Column("group", 20), Column("item", 30), Column("value", 70))
SCOPE_COLUMNS = (Column("parameter", 28), Column("value", 80))


def display_value(value: Any) -> str:
    """A JSON-ish evidence value as short text (lists and objects as compact JSON)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "—"
    if isinstance(value, datetime | date):
        return value.isoformat()
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return str(value)


def evidence_lines(evidence: Mapping[str, Any]) -> tuple[str, ...]:
    """Evidence details as ``key: value`` lines, keys sorted."""
    return tuple(f"{k}: {display_value(evidence[k])}" for k in sorted(evidence, key=str))


def _scope_cell(key: str, value: ScopeValue, lang: str) -> Cell:
    if isinstance(value, bool):
        return yes_no(value, lang)
    if isinstance(value, int | datetime | str) or value is None:
        return value
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, date):
        return format_date(value, lang)
    if key == "systems":
        return tuple(label("system", s, lang) for s in value)
    return tuple(str(v) for v in value)


def _headers(columns: Sequence[Column], lang: str) -> tuple[str, ...]:
    return tuple(t(f"col.{c.key}", lang) for c in columns)


def person_row(p: PersonRow, lang: str) -> tuple[Cell, ...]:
    """A population row."""
    return (p.person_id, p.name, p.department, p.position, Label(p.status, label("person_status", p.status, lang)),
            tuple(p.accounts), tuple(p.grants), yes_no(p.privileged, lang))


def finding_row(f: FindingRow, lang: str) -> tuple[Cell, ...]:
    """A findings row."""
    return (str(f.id), Label(f.kind, label("kind", f.kind, lang)),
            Label(f.severity, label("severity", f.severity, lang)),
            Label(f.status, label("finding_status", f.status, lang)), f.person_id, f.person_name,
            label("system", f.system, lang), f.account, f.permission, f.field, pick(f.evidence_summary, lang),
            evidence_lines(f.evidence), pick(f.recommendation, lang), f.first_seen, f.last_seen, tuple(f.quarters))


def decision_row(d: DecisionRow, lang: str) -> tuple[Cell, ...]:
    """A decisions row."""
    result = d.apply_result
    return (str(d.item_id), d.person_id, d.person_name, d.permission, pick(d.recommendation, lang), d.reviewer,
            Label(d.decision, label("decision", d.decision, lang)), d.reason, d.decided_at, d.accepted_until,
            Label(result, label("apply", result, lang)) if result else None,
            None if d.change_id is None else str(d.change_id), d.apply_detail)


def summary_groups(data: ReportData, lang: str) -> list[Group]:
    """The summary, group by group."""
    counts = data.counts
    report: list[tuple[str, Cell]] = [
        (t("summary.title", lang), pick(data.title, lang)),
        (t("summary.organisation", lang), pick(data.organisation, lang)),
        (t("summary.kind", lang), t(f"report.{data.kind}", lang)),
        (t("summary.ref", lang), str(data.ref)),
        (t("summary.quarter", lang), data.quarter),
        (t("summary.generated_at", lang), data.generated_at),
        (t("summary.timezone", lang), f"{data.timezone} ({utc_offset(data.generated_at, data.timezone)})"),
        (t("summary.trail_head", lang), data.trail_head),
    ]
    if data.trail_seq is not None:
        report.append((t("summary.trail_seq", lang), str(data.trail_seq)))
    groups = [Group("report", t("summary.report", lang), report)]
    findings: list[tuple[str, Cell]] = [(t("summary.findings_total", lang), len(data.findings))]
    findings += [(label("severity", k, lang), n) for k, n in counts.by_severity.items()]
    groups.append(Group("by_severity", t("summary.by_severity", lang), findings))
    groups.append(Group("by_kind", t("summary.by_kind", lang), _in_order("kind", counts.by_kind, lang)))
    groups.append(Group("by_status", t("summary.by_status", lang),
                        _in_order("finding_status", counts.by_status, lang)))
    if counts.other:
        groups.append(Group("other", t("summary.other", lang),
                            [(label("summary", k, lang), n) for k, n in counts.other.items()]))
    groups.append(Group("population", t("summary.population", lang), _population_items(data, lang)))
    if data.kind == "campaign":
        groups.append(Group("decisions", t("summary.decisions", lang), _tally(
            [d.decision for d in data.decisions], "decision", lang)))
        groups.append(Group("apply", t("summary.apply", lang), _tally(
            [d.apply_result for d in data.decisions if d.apply_result], "apply", lang)))
    return [Group(g.key, g.title, [(printable(item), clean(value)) for item, value in g.items]) for g in groups]


def _in_order(group: str, counts: Mapping[str, int], lang: str) -> list[tuple[str, Cell]]:
    """Counts in the catalogue's order (the order a reader expects), codes it does not know last."""
    rank = {key: i for i, key in enumerate(i18n_keys())}
    ordered = sorted(counts.items(), key=lambda kv: (rank.get(f"{group}.{kv[0]}", len(rank)), kv[0]))
    return [(label(group, code, lang), n) for code, n in ordered]


def _tally(codes: list[str], group: str, lang: str) -> list[tuple[str, Cell]]:
    seen: dict[str, int] = {}
    for code in codes:
        seen[code] = seen.get(code, 0) + 1
    return _in_order(group, seen, lang)


def _population_items(data: ReportData, lang: str) -> list[tuple[str, Cell]]:
    items: list[tuple[str, Cell]] = []
    launch = population_totals(data.population_at_launch)
    if data.population_at_launch_at is not None:
        items.append((t("summary.taken_at_launch", lang), data.population_at_launch_at))
    items += [(t("summary.people_at_launch", lang), launch.people), (t("summary.accounts_at_launch", lang),
              launch.accounts), (t("summary.grants_at_launch", lang), launch.grants),
              (t("summary.privileged_at_launch", lang), launch.privileged)]
    if not data.population_after:
        return items
    after = population_totals(data.population_after)
    if data.population_after_at is not None:
        items.append((t("summary.taken_after", lang), data.population_after_at))
    items += [(t("summary.people_after", lang), after.people), (t("summary.accounts_after", lang), after.accounts),
              (t("summary.grants_after", lang), after.grants), (t("summary.privileged_after", lang), after.privileged)]
    changes = population_changes(data.population_at_launch, data.population_after)
    items += [(t(f"summary.{name}", lang), getattr(changes, name)) for name in
              ("people_changed", "grants_removed", "grants_added", "accounts_removed", "accounts_added")]
    return items


def scope_rows(data: ReportData, lang: str) -> list[tuple[str, Cell]]:
    """The scope's parameters, labelled."""
    return [(label("scope", k, lang), _scope_cell(k, v, lang)) for k, v in data.scope.items()]


def clean(value: Cell) -> Cell:
    """A cell without control characters (XML, and so XLSX and the PDF, cannot carry them)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, tuple):
        return tuple(printable(v) for v in value)
    if isinstance(value, Label):
        return Label(value.code, printable(value.text))
    return value


def _cleaned(rows: Sequence[tuple[Cell, ...]]) -> list[tuple[Cell, ...]]:
    return [tuple(clean(c) for c in row) for row in rows]


def build_sections(data: ReportData, lang: str) -> list[Section]:
    """Every table of the report, in the order the report shows them."""
    summary_rows: list[tuple[Cell, ...]] = [
        (g.title, item, value) for g in summary_groups(data, lang) for item, value in g.items]
    return [
        Section("summary", t("section.summary", lang), SUMMARY_COLUMNS, _headers(SUMMARY_COLUMNS, lang),
                summary_rows),
        Section("scope", t("section.scope", lang), SCOPE_COLUMNS, _headers(SCOPE_COLUMNS, lang),
                _cleaned(scope_rows(data, lang)), note=t("report.none", lang)),
        _population("population_at_launch", data.population_at_launch, lang),
        Section("findings", t("section.findings", lang), FINDING_COLUMNS, _headers(FINDING_COLUMNS, lang),
                _cleaned([finding_row(f, lang) for f in data.findings]), note=t("report.no_findings", lang)),
        Section("decisions", t("section.decisions", lang), DECISION_COLUMNS, _headers(DECISION_COLUMNS, lang),
                _cleaned([decision_row(d, lang) for d in data.decisions]),
                note=t("report.none" if data.kind == "campaign" else "report.not_applicable", lang)),
        _population("population_after", data.population_after, lang),
    ]


def _population(key: str, rows: Sequence[PersonRow], lang: str) -> Section:
    return Section(key, t(f"section.{key}", lang), PERSON_COLUMNS, _headers(PERSON_COLUMNS, lang),
                   _cleaned([person_row(p, lang) for p in rows]), note=t("report.empty_population", lang))


def cell_text(value: Cell, lang: str, tz: str, sep: str | None = None) -> str:
    """A cell as display text: dates in the report's language and zone, lists joined."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_datetime(value, lang, tz)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, tuple):
        return join(value, lang) if sep is None else sep.join(value)
    return str(value)
