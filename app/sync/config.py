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
AUDIENCE_SETTINGS = ("id_token_audiences", "access_token_audiences")
CLAIM_FIELDS = ("key", "name", "email", "mobile", "employee_no", "department")  # each one claim path; `roles` a list


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
            continue
        _check_claims_settings(str(name), sources[str(name)].settings, problems)
    masters = {str(k): str(v) for k, v in (data.get("masters") or {}).items()}
    for attribute, source in masters.items():
        if attribute not in ATTRIBUTES:
            problems.append(f"masters: unknown attribute {attribute} ({', '.join(ATTRIBUTES)})")
        if source not in sources:
            problems.append(f"masters: {attribute} names unknown source {source}")
    if problems:
        raise InvalidRequest(f"{path.name} has {len(problems)} problem(s)", details=problems)
    return SyncConfig(sources, masters, frozenset(str(r) for r in data.get("mover_keeps") or ()))


def _check_claims_settings(name: str, settings: dict[str, Any], problems: list[str]) -> None:
    """OIDC claims settings of a source (``POST /v1/sync/sources/{source}/claims``), normalised in place:
    the audiences of the ID tokens and of the access tokens it accepts (lists of distinct, non-empty
    strings, no audience in both), and the claims mapping (known fields, claim paths)."""
    seen: dict[str, set[str]] = {}
    for setting in AUDIENCE_SETTINGS:
        value = settings.get(setting)
        if value is None:
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            problems.append(f"source {name}: {setting} must be a list of audiences (client ids or resource URIs)")
            continue
        settings[setting] = list(dict.fromkeys(v.strip() for v in value))
        seen[setting] = set(settings[setting])
    both = seen.get("id_token_audiences", set()) & seen.get("access_token_audiences", set())
    if both:
        problems.append(f"source {name}: {', '.join(sorted(both))} is in both id_token_audiences and "
                        "access_token_audiences; an ID token's audience is a client id, an access token's a "
                        "resource server: keep them apart")
    claims = settings.get("claims")
    if claims is None:
        return
    if not isinstance(claims, dict):
        problems.append(f"source {name}: claims must map {', '.join(CLAIM_FIELDS)}, roles to claim paths")
        return
    for field_name, path in claims.items():
        if field_name == "roles":
            if not isinstance(path, list) or not all(isinstance(p, str) and p.strip() for p in path):
                problems.append(f"source {name}: claims.roles must be a list of claim paths")
        elif field_name not in CLAIM_FIELDS:
            problems.append(f"source {name}: claims.{field_name} is not one of "
                            f"{', '.join((*CLAIM_FIELDS, 'roles'))}")
        elif not (isinstance(path, str) and path.strip()) and not (path is None and field_name != "key"):
            problems.append(f"source {name}: claims.{field_name} must be a claim path such as "
                            "resource_access.crm.roles")
