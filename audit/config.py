"""The audit's policy files: ``policies/audit.yaml`` (tuning) and ``policies/sod.yaml`` (separation of duties)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KINDS = ("unused_permission", "unused_sensitive_field", "dormant_account", "orphan_account", "leaver_active",
         "stale_grant_after_move", "sod_conflict", "peer_outlier", "privileged_role", "broad_grant",
         "direct_grant", "expired_access", "expiring_access", "cross_system_inconsistency")
SEVERITIES = ("low", "medium", "high", "critical")


class AuditConfigError(ValueError):
    """A policy file of the audit is invalid (the message says where)."""


@dataclass(frozen=True, slots=True)
class SodRule:
    id: str
    title_zh: str
    title_en: str
    left: frozenset[str]
    right: frozenset[str]
    scope: str  # overlap | anywhere
    severity: str


@dataclass(frozen=True)
class AuditConfig:
    """Everything that tunes one run (the files, plus the settings' windows)."""

    window_days: int = 90
    dormant_days: int = 90
    expiring_days: int = 14
    severity: Mapping[str, str] = field(default_factory=lambda: dict.fromkeys(KINDS, "medium"))
    peer_min_group: int = 5
    peer_max_share: float = 0.2
    peer_max_holders: int = 2
    sensitive_actions: frozenset[str] = frozenset({"delete", "export", "transfer", "approve", "pay"})
    systems: tuple[str, ...] = ("crm", "oa")
    idp_system: str = "idp"
    sod: tuple[SodRule, ...] = ()
    roles_by_design: Mapping[str, frozenset[str]] = field(default_factory=dict)
    system_owners: Mapping[str, str] = field(default_factory=dict)
    security_officers: tuple[str, ...] = ()

    def params(self) -> dict[str, Any]:
        """What the run log records of its configuration."""
        return {"window_days": self.window_days, "dormant_days": self.dormant_days,
                "expiring_days": self.expiring_days, "peers": {"min_group": self.peer_min_group,
                                                               "max_share": self.peer_max_share,
                                                               "max_holders": self.peer_max_holders},
                "sod_rules": [r.id for r in self.sod]}


def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise AuditConfigError(f"{where}: {what}")


def load_config(policies_dir: Path, *, window_days: int = 90, dormant_days: int = 90,
                expiring_days: int = 14) -> AuditConfig:
    """Read and validate ``audit.yaml`` and ``sod.yaml`` (either may be absent: defaults apply)."""
    tuning = _read(policies_dir / "audit.yaml")
    sod_doc = _read(policies_dir / "sod.yaml")
    severity = dict.fromkeys(KINDS, "medium")
    for kind, level in (tuning.get("severity") or {}).items():
        _need(kind in KINDS, "audit.yaml severity", f"unknown finding kind {kind!r}")
        _need(level in SEVERITIES, f"audit.yaml severity.{kind}", f"must be one of {', '.join(SEVERITIES)}")
        severity[kind] = level
    peers = tuning.get("peers") or {}
    min_group, max_share = int(peers.get("min_group", 5)), float(peers.get("max_share", 0.2))
    max_holders = int(peers.get("max_holders", 2))
    _need(min_group >= 2, "audit.yaml peers.min_group", "must be at least 2")
    _need(0 < max_share < 1, "audit.yaml peers.max_share", "must be between 0 and 1")
    _need(max_holders >= 1, "audit.yaml peers.max_holders", "must be at least 1")
    rules = []
    seen: set[str] = set()
    for n, raw in enumerate(sod_doc.get("rules") or []):
        where = f"sod.yaml rules[{n}]"
        _need(isinstance(raw, dict), where, "must be a mapping")
        rid = str(raw.get("id") or "")
        _need(bool(rid) and rid not in seen, where, "needs a unique id")
        seen.add(rid)
        left, right = _perms(raw.get("left"), f"{where}.left"), _perms(raw.get("right"), f"{where}.right")
        scope = raw.get("scope", "overlap")
        _need(scope in ("overlap", "anywhere"), f"{where}.scope", "must be overlap or anywhere")
        sev = raw.get("severity", severity["sod_conflict"])
        _need(sev in SEVERITIES, f"{where}.severity", f"must be one of {', '.join(SEVERITIES)}")
        rules.append(SodRule(rid, str(raw.get("title_zh") or rid), str(raw.get("title_en") or rid),
                             left, right, scope, sev))
    by_design = {str(role): frozenset(str(x) for x in ids)
                 for role, ids in (sod_doc.get("roles_by_design") or {}).items()}
    for role, ids in by_design.items():
        _need(ids <= seen, f"sod.yaml roles_by_design.{role}", f"names unknown rules {sorted(ids - seen)}")
    reviewers = tuning.get("reviewers") or {}
    _need(isinstance(reviewers, dict), "audit.yaml reviewers", "must be a mapping")
    owners = reviewers.get("system_owners") or {}
    _need(isinstance(owners, dict), "audit.yaml reviewers.system_owners", "must map a system to a person id")
    officers = reviewers.get("security_officers") or []
    _need(isinstance(officers, list), "audit.yaml reviewers.security_officers", "must be a list of person ids")
    return AuditConfig(
        window_days=window_days, dormant_days=dormant_days, expiring_days=expiring_days, severity=severity,
        peer_min_group=min_group, peer_max_share=max_share, peer_max_holders=max_holders,
        sensitive_actions=frozenset(tuning.get("sensitive_actions") or AuditConfig.sensitive_actions),
        systems=tuple(tuning.get("systems") or ("crm", "oa")), idp_system=str(tuning.get("idp_system") or "idp"),
        sod=tuple(rules), roles_by_design=by_design,
        system_owners={str(k): str(v) for k, v in owners.items()}, security_officers=tuple(str(x) for x in officers))


def _perms(value: Any, where: str) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    _need(isinstance(items, list) and bool(items), where, "must name at least one <type>:<action>")
    for item in items:
        _need(isinstance(item, str) and item.count(":") == 1 and all(item.split(":")), where,
              f"{item!r} is not <resource type>:<action>")
    return frozenset(items)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise AuditConfigError(f"{path.name}: not valid YAML ({exc})") from exc
    _need(isinstance(doc, dict), path.name, "must be a mapping")
    return doc
