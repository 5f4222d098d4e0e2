"""The policy bundle: the reviewed files of ``policies/``, parsed and validated as one unit.

A bundle is a mapping of file name to text.  ``parse_bundle`` either returns a complete
:class:`Policy` or raises :class:`InvalidPolicy` listing every problem; nothing half-valid escapes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import compress
from pathlib import Path
from typing import Any

import yaml

from app.authz.conditions import ConditionError, parse_condition
from app.authz.model import check_model
from app.authz.rules import FieldRule, Inherit, Rule, parse_scope, split_line, valid_domain
from app.errors import InvalidPolicy

BUNDLE_FILES = ("model.conf", "rules.csv", "field_rules.csv", "fields.yaml", "resources.yaml", "roles.yaml")
LEVELS = ("hidden", "masked", "visible")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_TYPE_RE = re.compile(r"^(accessgov|crm|oa)\.[a-z][a-z_]*$")  # accessgov.*: its own console


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A record type of a source system, with its actions and known fields."""

    name: str
    system: str
    title_zh: str
    actions: tuple[str, ...]
    fields: tuple[str, ...]
    write_actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoleDef:
    """A central role."""

    name: str
    title_zh: str
    title_en: str
    privileged: bool
    description: str


@dataclass(frozen=True, slots=True)
class RoleMapping:
    """A source-system role or position mapped onto a central role and a default department scope."""

    system: str
    source_role: str
    role: str
    scope: str  # company | department | subtree


@dataclass(frozen=True, slots=True)
class FieldClass:
    """Classification of one sensitive field."""

    sensitivity: str
    mask: str


@dataclass(frozen=True)
class Policy:
    """A validated policy bundle."""

    files: Mapping[str, str]
    digest: str
    rules: tuple[Rule, ...]
    inherits: tuple[Inherit, ...]
    field_rules: tuple[FieldRule, ...]
    resources: Mapping[str, ResourceType]
    roles: Mapping[str, RoleDef]
    mappings: tuple[RoleMapping, ...]
    classification: Mapping[str, Mapping[str, FieldClass]] = field(default_factory=dict)
    # Every p and p2 line by its canonical text: what an edit looks lines up in (not part of equality).
    lines: Mapping[str, Rule | FieldRule] = field(default_factory=dict, compare=False, repr=False)

    def mapping_for(self, system: str, source_role: str) -> RoleMapping | None:
        """The central role a source role maps to, if any."""
        for m in self.mappings:
            if m.system == system and m.source_role == source_role:
                return m
        return None


def bundle_digest(files: Mapping[str, str]) -> str:
    """A stable digest of a bundle's contents."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return h.hexdigest()


def read_bundle(directory: Path) -> dict[str, str]:
    """Read the bundle files of a ``policies/`` directory."""
    missing = [n for n in BUNDLE_FILES if not (directory / n).is_file()]
    if missing:
        raise InvalidPolicy(f"policy directory {directory} lacks {', '.join(missing)}")
    return {n: (directory / n).read_text(encoding="utf-8") for n in BUNDLE_FILES}


def write_bundle(files: Mapping[str, str], directory: Path) -> None:
    """Write a bundle back to a directory (``accessgov policy export``)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in BUNDLE_FILES:
        (directory / name).write_text(files[name], encoding="utf-8")


def parse_bundle(files: Mapping[str, str]) -> Policy:
    """Parse and validate a bundle; raise InvalidPolicy listing every problem."""
    problems: list[str] = []
    for name in BUNDLE_FILES:
        if name not in files:
            problems.append(f"{name}: missing")
    if problems:
        raise InvalidPolicy("policy bundle is incomplete", details=problems)
    problems.extend(f"model.conf: {p}" for p in check_model(files["model.conf"]))
    resources = _parse_resources(files["resources.yaml"], problems)
    roles, mappings = _parse_roles(files["roles.yaml"], problems)
    classification = _parse_fields(files["fields.yaml"], resources, problems)
    rules, inherits = _parse_rules(files["rules.csv"], problems)
    field_rules = _parse_field_rules(files["field_rules.csv"], problems)
    _cross_check(rules, inherits, field_rules, resources, roles, mappings, classification, problems)
    if problems:
        raise InvalidPolicy(f"policy bundle has {len(problems)} problem(s)", details=problems)
    lines: dict[str, Rule | FieldRule] = {r.text: r for r in rules}
    lines.update((f.text, f) for f in field_rules)
    return Policy(
        files=dict(files), digest=bundle_digest(files), rules=tuple(rules), inherits=tuple(inherits),
        field_rules=tuple(field_rules), resources=resources, roles=roles, mappings=tuple(mappings),
        classification=classification, lines=lines,
    )


@dataclass(frozen=True)
class PolicyDelta:
    """The lines one edit added and removed (the objects of the policy they belong to)."""

    rules_added: tuple[Rule, ...] = ()
    rules_removed: tuple[Rule, ...] = ()
    field_rules_added: tuple[FieldRule, ...] = ()
    field_rules_removed: tuple[FieldRule, ...] = ()
    inherits_added: tuple[Inherit, ...] = ()
    inherits_removed: tuple[Inherit, ...] = ()

    def counts(self) -> dict[str, int]:
        """How many lines of each kind changed."""
        return {"rules_added": len(self.rules_added), "rules_removed": len(self.rules_removed),
                "field_rules_changed": len(self.field_rules_added) + len(self.field_rules_removed),
                "inherits_changed": len(self.inherits_added) + len(self.inherits_removed)}


_LINE_FILES = {"p": "rules.csv", "g": "rules.csv", "p2": "field_rules.csv"}


def edit_policy(policy: Policy, add: Sequence[str], remove: Sequence[str]) -> tuple[Policy, PolicyDelta]:
    """Add and remove single lines, validating only what they touch; raise InvalidPolicy on any problem.

    The result equals ``parse_bundle`` of the edited files (same lines, same digest) but costs the
    changed lines plus a few C-level copies, not a parse of the whole bundle.  Line numbers of the
    untouched lines stay those they were read with.
    """
    problems: list[str] = []
    added = [_read_line(raw, problems) for raw in add]
    removed = [_read_line(raw, problems) for raw in remove]
    if problems:
        raise InvalidPolicy(f"policy change has {len(problems)} problem(s)", details=problems)
    lines = dict(policy.lines)
    inherits = list(policy.inherits)
    gone: list[Rule | FieldRule | Inherit] = []
    for item in removed:
        if isinstance(item, Inherit):
            if item in inherits:
                inherits.remove(item)
                gone.append(item)
                continue
        elif (existing := lines.pop(item.text, None)) is not None:
            gone.append(existing)
            continue
        problems.append(f"no such line to remove: {_text(item)}")
    new_files = dict(policy.files)
    for item in gone:
        name = _LINE_FILES[_text(item).split(",", 1)[0]]
        new_files[name] = _drop_line(new_files[name], item)
    fresh: list[Rule | FieldRule | Inherit] = []
    for item in added:
        name = _LINE_FILES[_text(item).split(",", 1)[0]]
        text = new_files[name].rstrip("\n")
        new_files[name] = text + "\n" + _text(item) + "\n"
        number = new_files[name].count("\n", 0, len(text) + 1) + 1
        if isinstance(item, Inherit):
            if item in inherits:
                problems.append(f"duplicate line: {_text(item)}")
            inherits.append(item)
        else:
            item = replace(item, line=number)
            if item.text in lines:
                problems.append(f"duplicate line: {item.text}")
            lines[item.text] = item
        fresh.append(item)
    new_rules = [i for i in fresh if isinstance(i, Rule)]
    new_fields = [i for i in fresh if isinstance(i, FieldRule)]
    _cross_check(new_rules, inherits, new_fields, policy.resources, policy.roles, list(policy.mappings),
                 policy.classification, problems)
    if problems:
        raise InvalidPolicy(f"policy change has {len(problems)} problem(s)", details=problems)
    gone_ids = {id(i) for i in gone}
    delta = PolicyDelta(
        rules_added=tuple(new_rules), rules_removed=tuple(i for i in gone if isinstance(i, Rule)),
        field_rules_added=tuple(new_fields), field_rules_removed=tuple(i for i in gone if isinstance(i, FieldRule)),
        inherits_added=tuple(i for i in fresh if isinstance(i, Inherit)),
        inherits_removed=tuple(i for i in gone if isinstance(i, Inherit)),
    )
    new = replace(
        policy, files=new_files, digest=bundle_digest(new_files), lines=lines, inherits=tuple(inherits),
        rules=_without(policy.rules, gone_ids) + delta.rules_added,
        field_rules=_without(policy.field_rules, gone_ids) + delta.field_rules_added,
    )
    return new, delta


def _without(items: tuple[Any, ...], gone_ids: set[int]) -> tuple[Any, ...]:
    if not gone_ids:
        return items
    return tuple(compress(items, [i not in gone_ids for i in map(id, items)]))


def _read_line(raw: str, problems: list[str]) -> Rule | FieldRule | Inherit:
    """One policy line as the parser reads it (problems appended, a placeholder returned)."""
    if "\n" in raw or "\r" in raw:
        problems.append(f"one line per entry: {raw!r}")
        return Inherit("", "", "")
    tokens = split_line(raw.strip())
    kind = tokens[0] if tokens else ""
    before = len(problems)
    if kind == "p2":
        found = _parse_field_rules(raw.strip(), problems)
    elif kind in ("p", "g"):
        rules, inherits = _parse_rules(raw.strip(), problems)
        if inherits:
            return inherits[0]
        found = rules  # type: ignore[assignment]
    else:
        problems.append(f"not a policy line: {raw!r} (p, g or p2 lines only)")
        return Inherit("", "", "")
    if len(problems) > before or not found:
        problems[before:] = [p.split(": ", 1)[-1] + f" in {raw.strip()!r}" for p in problems[before:]]
        return Inherit("", "", "")
    return found[0]


def _text(item: Rule | FieldRule | Inherit) -> str:
    if isinstance(item, Inherit):
        return f"g, {item.role}, {item.parent}, {item.dom}"
    return item.text


def _drop_line(text: str, item: Rule | FieldRule | Inherit) -> str:
    """The file without the first line that reads as ``item`` (canonical spelling found at C speed)."""
    canonical = _text(item)
    padded = "\n" + text
    at = padded.find("\n" + canonical + "\n")
    if at == -1 and padded.endswith("\n" + canonical):
        at = len(padded) - len(canonical) - 1
    if at != -1:
        return (padded[:at] + padded[at + len(canonical) + 1:])[1:]
    target = split_line(canonical)
    out = text.splitlines()
    for i, existing in enumerate(out):
        if split_line(existing.strip()) == target:
            del out[i]
            break
    return "\n".join(out) + "\n"


def _load_yaml(text: str, name: str, problems: list[str]) -> Any:
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        problems.append(f"{name}: not valid YAML ({exc})")
        return {}


def _parse_resources(text: str, problems: list[str]) -> dict[str, ResourceType]:
    data = _load_yaml(text, "resources.yaml", problems)
    out: dict[str, ResourceType] = {}
    for name, spec in (data.get("resource_types") or {}).items():
        where = f"resources.yaml: {name}"
        if not _TYPE_RE.match(str(name)) or not isinstance(spec, dict):
            problems.append(f"{where}: resource types are named <accessgov|crm|oa>.<name> and map to a table")
            continue
        actions = tuple(spec.get("actions") or ())
        write = tuple(spec.get("write_actions") or ())
        if not actions or any(not _NAME_RE.match(str(a)) for a in actions):
            problems.append(f"{where}: needs a list of lowercase actions")
        if not set(write) <= set(actions):
            problems.append(f"{where}: write_actions must be among its actions")
        out[name] = ResourceType(
            name=name, system=name.split(".")[0], title_zh=str(spec.get("title_zh", name)),
            actions=actions, fields=tuple(spec.get("fields") or ()), write_actions=write,
        )
    if not out:
        problems.append("resources.yaml: no resource_types")
    return out


def _parse_roles(text: str, problems: list[str]) -> tuple[dict[str, RoleDef], list[RoleMapping]]:
    data = _load_yaml(text, "roles.yaml", problems)
    roles: dict[str, RoleDef] = {}
    for name, spec in (data.get("roles") or {}).items():
        spec = spec or {}
        if not _NAME_RE.match(str(name)):
            problems.append(f"roles.yaml: role name {name!r} must be lowercase snake_case")
            continue
        roles[name] = RoleDef(
            name=name, title_zh=str(spec.get("title_zh", name)), title_en=str(spec.get("title_en", name)),
            privileged=bool(spec.get("privileged", False)), description=str(spec.get("description", "")),
        )
    mappings: list[RoleMapping] = []
    for system, table in (data.get("source_roles") or {}).items():
        for source_role, spec in (table or {}).items():
            spec = spec if isinstance(spec, dict) else {"role": spec}
            scope = str(spec.get("scope", "department"))
            if scope not in ("company", "department", "subtree"):
                problems.append(f"roles.yaml: {system}/{source_role}: scope must be company|department|subtree")
            mappings.append(RoleMapping(str(system), str(source_role), str(spec.get("role")), scope))
    return roles, mappings


def _parse_fields(
    text: str, resources: Mapping[str, ResourceType], problems: list[str]
) -> dict[str, dict[str, FieldClass]]:
    data = _load_yaml(text, "fields.yaml", problems)
    out: dict[str, dict[str, FieldClass]] = {}
    for obj, table in (data.get("sensitive_fields") or {}).items():
        if obj not in resources:
            problems.append(f"fields.yaml: unknown resource type {obj}")
            continue
        out[obj] = {}
        for name, spec in (table or {}).items():
            spec = spec or {}
            if name not in resources[obj].fields:
                problems.append(f"fields.yaml: {obj}.{name} is not a field of {obj} in resources.yaml")
            out[obj][name] = FieldClass(str(spec.get("sensitivity", "sensitive")), str(spec.get("mask", "full")))
    return out


def _parse_rules(text: str, problems: list[str]) -> tuple[list[Rule], list[Inherit]]:
    rules: list[Rule] = []
    inherits: list[Inherit] = []
    for no, tokens in split_line_numbers(text):
        where = f"rules.csv:{no}"
        kind = tokens[0]
        if kind == "g" and len(tokens) == 4:
            inherits.append(Inherit(tokens[1], tokens[2], tokens[3]))
        elif kind == "p" and len(tokens) == 8:
            _, role, dom, obj, act, scope, cond, eft = tokens
            try:
                rules.append(Rule.make(role, dom, obj, act, scope, parse_condition(cond), eft, no))
            except (ConditionError, ValueError) as exc:
                problems.append(f"{where}: {exc}")
        else:
            problems.append(f"{where}: expected 'p, role, domain, type, action, scope, condition, allow|deny' "
                            "or 'g, role, parent_role, domain'")
    return rules, inherits


def _parse_field_rules(text: str, problems: list[str]) -> list[FieldRule]:
    out: list[FieldRule] = []
    for no, tokens in split_line_numbers(text):
        if tokens[0] != "p2" or len(tokens) != 8:
            problems.append(f"field_rules.csv:{no}: expected 'p2, role, domain, type, read|write, field, scope, level'")
            continue
        _, role, dom, obj, act, fld, scope, level = tokens
        try:
            out.append(FieldRule.make(role, dom, obj, act, fld, scope, level, no))
        except ValueError as exc:
            problems.append(f"field_rules.csv:{no}: {exc}")
    return out


def split_line_numbers(text: str) -> list[tuple[int, list[str]]]:
    """Casbin CSV lines with their line numbers, comments and blanks skipped."""
    out = []
    for no, line in enumerate(text.splitlines(), start=1):
        tokens = split_line(line.strip())
        if tokens:
            out.append((no, tokens))
    return out


def _cross_check(
    rules: list[Rule], inherits: list[Inherit], field_rules: list[FieldRule],
    resources: Mapping[str, ResourceType], roles: Mapping[str, RoleDef], mappings: list[RoleMapping],
    classification: Mapping[str, Mapping[str, FieldClass]], problems: list[str],
) -> None:
    for r in rules:
        where = f"rules.csv:{r.line}"
        if r.role not in roles:
            problems.append(f"{where}: unknown role {r.role}")
        if r.obj not in resources:
            problems.append(f"{where}: unknown resource type {r.obj}")
        elif r.act not in resources[r.obj].actions:
            problems.append(f"{where}: {r.obj} has no action {r.act}")
    for fr in field_rules:
        where = f"field_rules.csv:{fr.line}"
        if fr.role not in roles:
            problems.append(f"{where}: unknown role {fr.role}")
        if fr.field not in classification.get(fr.obj, {}):
            problems.append(f"{where}: {fr.obj}.{fr.field} is not classified in fields.yaml")
    for inh in inherits:
        if inh.role not in roles or inh.parent not in roles:
            problems.append(f"rules.csv: inheritance {inh.role} -> {inh.parent}: unknown role")
        if not valid_domain(inh.dom):
            problems.append(f"rules.csv: inheritance {inh.role} -> {inh.parent}: bad domain {inh.dom}")
    for m in mappings:
        if m.role not in roles:
            problems.append(f"roles.yaml: {m.system}/{m.source_role} maps to unknown role {m.role}")
    _check_depth(inherits, problems)
    _check_duplicates([r.text for r in rules] + [f.text for f in field_rules], problems)


def _check_duplicates(lines: list[str], problems: list[str]) -> None:
    seen: set[str] = set()
    for line in lines:
        if line in seen:
            problems.append(f"duplicate line: {line}")
        seen.add(line)


def _check_depth(inherits: list[Inherit], problems: list[str]) -> None:
    # Casbin follows at most 10 hierarchy levels; a deeper (or cyclic) chain would be cut silently.
    parents: dict[str, set[str]] = {}
    for inh in inherits:
        parents.setdefault(inh.role, set()).add(inh.parent)

    def depth(role: str, seen: frozenset[str]) -> int:
        if role in seen:
            problems.append(f"rules.csv: role inheritance cycle through {role}")
            return 0
        return 1 + max((depth(p, seen | {role}) for p in parents.get(role, ())), default=0)

    for role in parents:
        if depth(role, frozenset()) > 8:
            problems.append(f"rules.csv: role {role} inherits more than 8 levels deep")


__all__ = ["LEVELS", "FieldClass", "Policy", "PolicyDelta", "ResourceType", "RoleDef", "RoleMapping", "edit_policy",
           "parse_bundle", "parse_scope"]
