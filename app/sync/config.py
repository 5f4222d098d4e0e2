"""``policies/sync/sources.yaml``: the identity sources, their schedules, and each attribute's master."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.errors import InvalidRequest

ATTRIBUTES = ("people", "status", "name", "department", "departments", "manager", "position", "mobile", "email",
              "employee_no")
KINDS = ("directory", "idp", "crm", "oa", "other")


@dataclass(frozen=True)
class SourceConfig:
    """One configured source."""

    name: str
    connector: str
    kind: str
    interval_minutes: int
    disable_threshold: float
    lock_seconds: int
    settings: dict[str, Any] = field(default_factory=dict)  # connector settings (env variable names, URLs)


@dataclass(frozen=True)
class SyncConfig:
    """Every source and the master of each attribute."""

    sources: dict[str, SourceConfig]
    masters: dict[str, str]
    mover_keeps: frozenset[str] = frozenset()

    def source(self, name: str) -> SourceConfig:
        """A configured source, or a 404-style error naming the known ones."""
        from app.errors import NotFound

        found = self.sources.get(name)
        if found is None:
            raise NotFound(f"no sync source {name!r}; configured: {', '.join(sorted(self.sources)) or 'none'}")
        return found

    def master(self, attribute: str) -> str | None:
        """The source whose value wins for an attribute."""
        return self.masters.get(attribute)


def load_sync_config(path: Path) -> SyncConfig:
    """Read and check the sources file; a missing file means no sources (sync off)."""
    if not path.is_file():
        return SyncConfig({}, {})
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"{path.name}: not valid YAML: {exc}") from exc
    problems: list[str] = []
    defaults = data.get("defaults") or {}
    sources: dict[str, SourceConfig] = {}
    for name, spec in (data.get("sources") or {}).items():
        spec = {**defaults, **(spec or {})}
        kind = str(spec.pop("kind", "other"))
        if kind not in KINDS:
            problems.append(f"source {name}: kind must be one of {', '.join(KINDS)}")
        try:
            sources[str(name)] = SourceConfig(
                name=str(name), connector=str(spec.pop("connector", name)), kind=kind,
                interval_minutes=int(spec.pop("interval_minutes", 60)),
                disable_threshold=float(spec.pop("disable_threshold", 0.2)),
                lock_seconds=int(spec.pop("lock_seconds", 900)), settings=spec)
        except (TypeError, ValueError) as exc:
            problems.append(f"source {name}: {exc}")
    masters = {str(k): str(v) for k, v in (data.get("masters") or {}).items()}
    for attribute, source in masters.items():
        if attribute not in ATTRIBUTES:
            problems.append(f"masters: unknown attribute {attribute} ({', '.join(ATTRIBUTES)})")
        if source not in sources:
            problems.append(f"masters: {attribute} names unknown source {source}")
    if problems:
        raise InvalidRequest(f"{path.name} has {len(problems)} problem(s)", details=problems)
    return SyncConfig(sources, masters, frozenset(str(r) for r in data.get("mover_keeps") or ()))
