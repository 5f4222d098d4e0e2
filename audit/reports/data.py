"""What a report is made of: plain frozen dataclasses, filled by the caller from its rows (no database here).

Texts the audit engine writes (a title, an evidence summary, a recommendation) may be one string or
one per language (``{"zh-CN": "...", "en": "..."}``, see ``i18n.texts``); the report picks the
language it renders.  Lists may be given as any sequence and are kept as tuples.  Every datetime must
be timezone-aware; the report shows it in ``ReportData.timezone``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from audit.i18n import DEFAULT_LANG, LANGS, SEVERITIES, normalise_lang

Text = str | Mapping[str, str]
"""One text, or the same text per language ({"zh-CN": ..., "en": ...})."""

ScopeValue = str | int | float | bool | datetime | date | Sequence[str] | None
ReportKind = Literal["audit_run", "campaign"]
REPORT_KINDS = ("audit_run", "campaign")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def pick(text: Text | None, lang: str) -> str:
    """``text`` in ``lang``: the language asked for, else zh-CN, else any language given."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    want = normalise_lang(lang)
    for key in (want, DEFAULT_LANG, *LANGS):
        if text.get(key):
            return text[key]
    return next((v for v in text.values() if v), "")


def _aware(value: datetime | None, what: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")


def _freeze(obj: object, **values: object) -> None:
    for name, value in values.items():
        object.__setattr__(obj, name, value)


@dataclass(frozen=True, slots=True)
class PersonRow:
    """One person of a population, with every account and grant they hold at that point.

    An orphan account (linked to nobody) is a row with an empty ``person_id`` and its account.
    """

    person_id: str
    name: str
    department: str = ""
    position: str = ""
    status: str = "active"  # active | disabled | left (shown through person_status.*)
    accounts: Sequence[str] = ()  # "crm:zhangwei01", "oa:1005"
    grants: Sequence[str] = ()  # short strings: "销售经理 @ 华东大区 (至 2026-12-31)"
    privileged: bool = False

    def __post_init__(self) -> None:
        _freeze(self, accounts=tuple(self.accounts), grants=tuple(self.grants))


@dataclass(frozen=True, slots=True)
class FindingRow:
    """One finding, as the audit recorded it (``audit_findings`` row, texts rendered by the caller)."""

    id: str | int
    kind: str  # one of i18n.FINDING_KINDS; an unknown kind shows as its code
    severity: str  # critical | high | medium | low
    status: str  # open | accepted | remediated | resolved | suppressed
    person_id: str | None
    person_name: str | None
    system: str | None
    permission: str | None
    field: str | None
    evidence_summary: Text
    evidence: Mapping[str, Any]
    recommendation: Text
    first_seen: datetime
    last_seen: datetime
    quarters: Sequence[str] = ()
    account: str | None = None  # the account's id in ``system``: orphan and dormant accounts
    evidence_quality: str = ""  # usage | no_usage_data | directory

    def __post_init__(self) -> None:
        _aware(self.first_seen, "FindingRow.first_seen")
        _aware(self.last_seen, "FindingRow.last_seen")
        _freeze(self, quarters=tuple(self.quarters), evidence=dict(self.evidence))


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One reviewed item of a campaign: what the reviewer decided and what became of it."""

    item_id: str | int
    person_id: str | None
    person_name: str | None
    permission: str  # the permission or grant reviewed: "销售经理 @ 华东大区", "crm.contract:approve"
    reviewer: str
    decision: str  # keep | revoke | reduce | accept_risk | none
    reason: str
    decided_at: datetime | None
    apply_result: str | None = None  # applied | failed | rolled_back | pending | not_required
    change_id: str | int | None = None  # the change-log id of the revocation or reduction
    recommendation: Text = ""  # what the system recommended, shown next to the decision
    accepted_until: datetime | None = None  # accept_risk: until when
    apply_detail: str = ""  # why the apply failed or was rolled back, a ticket number
    finding_ids: Sequence[str | int] = ()

    def __post_init__(self) -> None:
        _aware(self.decided_at, "DecisionRow.decided_at")
        _aware(self.accepted_until, "DecisionRow.accepted_until")
        _freeze(self, finding_ids=tuple(self.finding_ids))


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """Counts of findings by kind, severity and status; ``other`` holds further labelled counts."""

    by_kind: Mapping[str, int] = field(default_factory=dict)
    by_severity: Mapping[str, int] = field(default_factory=dict)
    by_status: Mapping[str, int] = field(default_factory=dict)
    other: Mapping[str, int] = field(default_factory=dict)  # {"new": 4, "seen_again": 9, "resolved": 2}

    @classmethod
    def from_findings(cls, findings: Iterable[FindingRow], other: Mapping[str, int] | None = None) -> ReportSummary:
        """Count ``findings``."""
        kinds: Counter[str] = Counter()
        severities: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        for f in findings:
            kinds[f.kind] += 1
            severities[f.severity] += 1
            statuses[f.status] += 1
        ordered = {s: severities.pop(s) for s in SEVERITIES if s in severities}
        return cls(by_kind=dict(sorted(kinds.items())), by_severity={**ordered, **dict(sorted(severities.items()))},
                   by_status=dict(sorted(statuses.items())), other=dict(other or {}))


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything one report shows; the same object renders to HTML, CSV, XLSX, PDF and the evidence pack."""

    kind: ReportKind
    ref: str | int  # the run id or campaign id
    title: Text
    organisation: Text
    quarter: str  # 2026Q4
    generated_at: datetime
    trail_head: str  # the audit trail's head hash (64 hex digits) when the report was generated
    scope: Mapping[str, ScopeValue] = field(default_factory=dict)  # keys: scope.* of i18n, or own labels
    population_at_launch: Sequence[PersonRow] = ()
    population_after: Sequence[PersonRow] = ()
    findings: Sequence[FindingRow] = ()
    decisions: Sequence[DecisionRow] = ()
    summary: ReportSummary | None = None  # None: counted from ``findings``
    timezone: str = "Asia/Shanghai"
    trail_seq: int | None = None
    population_at_launch_at: datetime | None = None
    population_after_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in REPORT_KINDS:
            raise ValueError(f"ReportData.kind must be one of {REPORT_KINDS}, got {self.kind!r}")
        _aware(self.generated_at, "ReportData.generated_at")
        _aware(self.population_at_launch_at, "ReportData.population_at_launch_at")
        _aware(self.population_after_at, "ReportData.population_after_at")
        ZoneInfo(self.timezone)  # an unknown zone fails here, not halfway through a rendering
        head = self.trail_head.lower()
        if not _HEX64.fullmatch(head):
            raise ValueError(f"ReportData.trail_head must be a SHA-256 hex digest, got {self.trail_head!r}")
        for key, value in self.scope.items():
            if isinstance(value, datetime):
                _aware(value, f"ReportData.scope[{key!r}]")
        findings = tuple(self.findings)
        _freeze(self, trail_head=head, scope=dict(self.scope), findings=findings,
                population_at_launch=tuple(self.population_at_launch),
                population_after=tuple(self.population_after), decisions=tuple(self.decisions),
                summary=self.summary if self.summary is not None else ReportSummary.from_findings(findings))

    @property
    def counts(self) -> ReportSummary:
        """The summary (given, or counted from the findings)."""
        assert self.summary is not None  # set in __post_init__
        return self.summary


@dataclass(frozen=True, slots=True)
class PopulationTotals:
    """How many people, accounts and grants a population holds."""

    people: int
    accounts: int
    grants: int
    privileged: int


@dataclass(frozen=True, slots=True)
class PopulationChanges:
    """What changed between the population at launch and after remediation."""

    people_changed: int
    grants_removed: int
    grants_added: int
    accounts_removed: int
    accounts_added: int


def population_totals(rows: Sequence[PersonRow]) -> PopulationTotals:
    """Count a population."""
    return PopulationTotals(
        people=sum(1 for r in rows if r.person_id),
        accounts=sum(len(r.accounts) for r in rows),
        grants=sum(len(r.grants) for r in rows),
        privileged=sum(1 for r in rows if r.privileged),
    )


def _holdings(rows: Sequence[PersonRow]) -> dict[str, tuple[set[str], set[str]]]:
    held: dict[str, tuple[set[str], set[str]]] = {}
    for r in rows:
        key = r.person_id or f"orphan:{','.join(r.accounts)}"
        accounts, grants = held.setdefault(key, (set(), set()))
        accounts.update(r.accounts)
        grants.update(r.grants)
    return held


def population_changes(before: Sequence[PersonRow], after: Sequence[PersonRow]) -> PopulationChanges:
    """Compare two populations person by person (orphan accounts by their account)."""
    old, new = _holdings(before), _holdings(after)
    empty: tuple[set[str], set[str]] = (set(), set())
    changed = grants_removed = grants_added = accounts_removed = accounts_added = 0
    for key in old.keys() | new.keys():
        (a0, g0), (a1, g1) = old.get(key, empty), new.get(key, empty)
        grants_removed += len(g0 - g1)
        grants_added += len(g1 - g0)
        accounts_removed += len(a0 - a1)
        accounts_added += len(a1 - a0)
        changed += (a0, g0) != (a1, g1)
    return PopulationChanges(changed, grants_removed, grants_added, accounts_removed, accounts_added)
