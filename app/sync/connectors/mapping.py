"""Declarative mappings: a source record's fields -> a canonical record's fields.

A mapping file (``policies/sync/<system>.yaml``) has one section per kind (``departments``,
``accounts``, ``roles``, ``assignments``), each with ``fields``: for every canonical field, a spec.

A spec is either a dotted path into the source record (``parentvo.code``, ``status.is_frozen``), a
list of paths (the first that holds a value), or an object with these keys, all optional:

``from``
    a path, or a list of paths: the first that holds a value (not missing, null or ``""``) is used.
``first``
    a list of specs: the first that yields a value wins (for "this field, else that one").
``const``
    a fixed value instead of ``from``.
``when`` / ``if_present``
    ``when: {path: value or [values]}`` and ``if_present: path``: the spec yields nothing unless the
    source record matches (values are compared as text; ``true``/``false`` for booleans).
``null_values``
    source values that count as missing, e.g. ``[0]`` for "0 means no parent".
``transform``
    a name or a list of names applied in order: ``str``, ``strip``, ``lower``, ``upper``, ``int``,
    ``bool``, ``email``, ``mobile``, ``timestamp`` (seconds, milliseconds, ISO or
    ``YYYY-MM-DD HH:MM:SS`` text; naive times are China time, UTC+8) -> an aware UTC datetime.
``map`` / ``else``
    a value map applied after the transforms (keys compared as text).  A value the map does not know
    is an error unless ``else`` gives the result (``else: keep`` keeps the value).
``lookup``
    the name of a table the connector filled while reading (e.g. position id -> position name).
``template``
    ``"sub:{}"``: the value formatted into a text.
``list`` / ``split`` / ``item``
    the result is a list: a scalar is wrapped, a text is split on ``split``, ``item`` is a path read
    from each element (``dept_id`` of ``[{dept_id, dept_name}]``); the steps above apply to each
    item and empty items are dropped.
``default``
    the result when nothing above yields a value (taken as is, not transformed).

Some canonical fields are always normalised whatever the spec says: texts are stripped, ``mobile``
becomes ``+86`` and 11 digits for mainland numbers, ``email`` is trimmed and lower-cased,
``last_login_at`` becomes an aware UTC datetime, and status and scope values are checked against the
canonical vocabularies.

Anything else in a section (endpoints, paging, items paths) is read by the connector, not here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from app.sync.canonical import ACCOUNT_STATUSES, SCOPE_TYPES

KINDS = ("departments", "accounts", "roles", "assignments")
CHINA = timezone(timedelta(hours=8))
DEFAULT_MAPPING_DIR = Path(__file__).resolve().parents[3] / "policies" / "sync"


class MappingError(ValueError):
    """A mapping file is malformed, or a source record does not fit it."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# -- transforms ---------------------------------------------------------------------------------


def normalise_mobile(value: Any) -> str | None:
    """Mainland numbers -> ``+86`` and 11 digits; other numbers keep ``+`` and digits; empty -> None."""
    text = re.sub(r"[\s\-()（）]", "", str(value))
    if not text:
        return None
    if text.startswith("+"):
        digits, plus = text[1:], True
    elif text.startswith("00"):
        digits, plus = text[2:], True
    else:
        digits, plus = text, False
    if not digits.isdigit():
        raise MappingError(f"not a phone number: {value!r}")
    if not plus and len(digits) == 11 and digits.startswith("1"):
        return "+86" + digits
    if digits.startswith("86") and len(digits) == 13 and digits[2] == "1":
        return "+" + digits
    return ("+" + digits) if plus else digits


def normalise_email(value: Any) -> str | None:
    text = str(value).strip().lower()
    return text or None


def to_datetime(value: Any) -> datetime:
    """Seconds, milliseconds (numbers or digit texts), ISO 8601 or ``YYYY-MM-DD[ HH:MM[:SS]]`` -> UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, bool):
        raise MappingError(f"not a time: {value!r}")
    elif isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip())):
        number = float(value)
        if number > 1e11:  # milliseconds since the epoch (1e11 s is the year 5138)
            number /= 1000
        return datetime.fromtimestamp(number, UTC)
    elif isinstance(value, str):
        text = value.strip().replace("/", "-")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise MappingError(f"not a time: {value!r}") from exc
    else:
        raise MappingError(f"not a time: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA)
    return moment.astimezone(UTC)


def _to_bool(value: Any) -> bool:
    text = _key(value)
    if text in ("true", "1", "yes", "y"):
        return True
    if text in ("false", "0", "no", "n", ""):
        return False
    raise MappingError(f"not a boolean: {value!r}")


def _to_int(value: Any) -> int:
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return int(float(text))  # an order such as "1.5" sorts as 1
    except ValueError as exc:
        raise MappingError(f"not an integer: {value!r}") from exc


TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "str": lambda v: str(v),
    "strip": lambda v: str(v).strip(),
    "lower": lambda v: str(v).lower(),
    "upper": lambda v: str(v).upper(),
    "int": _to_int,
    "bool": _to_bool,
    "email": normalise_email,
    "mobile": normalise_mobile,
    "timestamp": to_datetime,
}


def _key(value: Any) -> str:
    """How values are compared with map keys and ``when`` values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value).strip()


def get_path(data: Any, path: str) -> Any:
    """``a.b.0.c`` in nested dicts and lists; MISSING when absent.  ``""`` or ``$`` is the data itself."""
    if path in ("", "$"):
        return data
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def _empty(value: Any, null_values: frozenset[str] = frozenset()) -> bool:
    if value is MISSING or value is None or value == "" or value == [] or value == {}:
        return True
    return bool(null_values) and not isinstance(value, list | dict) and _key(value) in null_values


# -- field specs ----------------------------------------------------------------------------------

_SPEC_KEYS = {
    "from",
    "first",
    "const",
    "when",
    "if_present",
    "null_values",
    "transform",
    "map",
    "else",
    "lookup",
    "template",
    "list",
    "split",
    "item",
    "default",
}


@dataclass(frozen=True)
class FieldSpec:
    """One canonical field's rule (see the module docstring)."""

    paths: tuple[str, ...] = ()
    first: tuple[FieldSpec, ...] = ()
    const: Any = MISSING
    when: tuple[tuple[str, frozenset[str]], ...] = ()
    if_present: str | None = None
    null_values: frozenset[str] = frozenset()
    transforms: tuple[str, ...] = ()
    value_map: Mapping[str, Any] | None = None
    otherwise: Any = MISSING
    lookup: str | None = None
    template: str | None = None
    as_list: bool = False
    split: str | None = None
    item: str | None = None
    default: Any = MISSING

    @classmethod
    def parse(cls, raw: Any, where: str) -> FieldSpec:
        if isinstance(raw, str):
            return cls(paths=(raw,))
        if isinstance(raw, list) and raw and all(isinstance(p, str) for p in raw):
            return cls(paths=tuple(raw))  # shorthand for from: [paths]
        if not isinstance(raw, Mapping):
            raise MappingError(f"{where}: a field spec is a path or an object, not {raw!r}")
        unknown = set(raw) - _SPEC_KEYS
        if unknown:
            raise MappingError(f"{where}: unknown keys {sorted(unknown)}")
        src = raw.get("from", ())
        paths = (src,) if isinstance(src, str) else tuple(str(p) for p in src)
        transforms = raw.get("transform", ())
        transforms = (transforms,) if isinstance(transforms, str) else tuple(transforms)
        for name in transforms:
            if name not in TRANSFORMS:
                raise MappingError(f"{where}: unknown transform {name!r}; known: {sorted(TRANSFORMS)}")
        when = tuple(
            (str(path), frozenset(_key(v) for v in (expected if isinstance(expected, list) else [expected])))
            for path, expected in (raw.get("when") or {}).items()
        )
        value_map = raw.get("map")
        if value_map is not None and not isinstance(value_map, Mapping):
            raise MappingError(f"{where}: map must be an object")
        spec = cls(
            paths=paths,
            first=tuple(cls.parse(s, f"{where}.first[{i}]") for i, s in enumerate(raw.get("first", ()))),
            const=raw.get("const", MISSING),
            when=when,
            if_present=raw.get("if_present"),
            null_values=frozenset(_key(v) for v in raw.get("null_values", ())),
            transforms=transforms,
            value_map={_key(k): v for k, v in value_map.items()} if value_map is not None else None,
            otherwise=raw.get("else", MISSING),
            lookup=raw.get("lookup"),
            template=raw.get("template"),
            as_list=bool(raw.get("list", False)) or "split" in raw or "item" in raw,
            split=raw.get("split"),
            item=raw.get("item"),
            default=raw.get("default", MISSING),
        )
        if not (spec.paths or spec.first or spec.const is not MISSING or spec.default is not MISSING):
            raise MappingError(f"{where}: needs from, first, const or default")
        return spec

    def applies(self, data: Mapping[str, Any]) -> bool:
        """The ``when`` and ``if_present`` guards; a guarded-out spec yields nothing, not its default."""
        for path, expected in self.when:
            if _key(get_path(data, path)) not in expected:
                return False
        return self.if_present is None or not _empty(get_path(data, self.if_present))

    def evaluate(self, data: Mapping[str, Any], lookups: Mapping[str, Mapping[str, str]]) -> Any:
        if not self.applies(data):
            return MISSING
        value = self._source(data, lookups)
        if value is MISSING:
            return self.default
        if self.as_list:
            items = value.split(self.split) if isinstance(value, str) and self.split else value
            if not isinstance(items, list | tuple):
                items = [items]
            if self.item is not None:
                items = [get_path(i, self.item) for i in items]
                items = [None if i is MISSING else i for i in items]
            out = [self._pipeline(item, lookups) for item in items if not _empty(item, self.null_values)]
            return tuple(v for v in out if not _empty(v))
        return self._pipeline(value, lookups)

    def _source(self, data: Mapping[str, Any], lookups: Mapping[str, Mapping[str, str]]) -> Any:
        if self.first:
            for spec in self.first:
                value = spec.evaluate(data, lookups)
                if value is not MISSING:
                    return value
            return MISSING
        if self.const is not MISSING:
            return self.const
        for path in self.paths:
            value = get_path(data, path)
            if not _empty(value, self.null_values):
                return value
        return MISSING

    def _pipeline(self, value: Any, lookups: Mapping[str, Mapping[str, str]]) -> Any:
        for name in self.transforms:
            if value is None:
                break
            value = TRANSFORMS[name](value)
        if self.value_map is not None:
            k = _key(value)
            if k in self.value_map:
                value = self.value_map[k]
            elif self.otherwise == "keep":
                pass
            elif self.otherwise is not MISSING:
                value = self.otherwise
            else:
                raise MappingError(f"value {value!r} is not in the map {sorted(self.value_map)}")
        if self.lookup is not None:
            table = lookups.get(self.lookup, {})
            value = table.get(_key(value), value)
        if self.template is not None and value is not None:
            value = self.template.format(value)
        return value


# Canonical field -> how its value is finally coerced.
_TEXT = "text"
_FIELD_TYPES: dict[str, dict[str, str]] = {
    "departments": {"key": _TEXT, "name": _TEXT, "parent_key": _TEXT, "status": "dept_status", "order": "int"},
    "accounts": {
        "key": _TEXT,
        "name": _TEXT,
        "status": "account_status",
        "login": _TEXT,
        "employee_no": _TEXT,
        "mobile": "mobile",
        "email": "email",
        "department_keys": "keys",
        "primary_department": _TEXT,
        "position": _TEXT,
        "manager_key": _TEXT,
        "last_login_at": "datetime",
    },
    "roles": {"key": _TEXT, "name": _TEXT},
    "assignments": {"account_key": _TEXT, "role_key": _TEXT, "scope_type": "scope", "scope_keys": "keys"},
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "departments": ("key", "name"),
    "accounts": ("key", "name"),
    "roles": ("key", "name"),
    "assignments": ("account_key", "role_key"),
}


def _text(value: Any) -> str | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _coerce(kind: str, name: str, value: Any) -> Any:
    how = _FIELD_TYPES[kind][name]
    if how == "keys":
        items = value if isinstance(value, list | tuple) else [value]
        return tuple(t for t in (_text(v) for v in items if v is not None) if t)
    if value is None:
        return None
    if how == _TEXT:
        return _text(value)
    if how == "int":
        return _to_int(value)
    if how == "mobile":
        return normalise_mobile(value)
    if how == "email":
        return normalise_email(value)
    if how == "datetime":
        return to_datetime(value)
    text = _text(value)
    allowed = {"dept_status": ("active", "disabled"), "account_status": ACCOUNT_STATUSES, "scope": SCOPE_TYPES}[how]
    if text not in allowed:
        raise MappingError(f"{name} {value!r} is not one of {allowed}")
    return text


@dataclass(frozen=True)
class KindMapping:
    """The field rules of one kind, plus the rest of its section for the connector to read."""

    kind: str
    fields: Mapping[str, FieldSpec]
    options: Mapping[str, Any] = field(default_factory=dict)

    def apply(self, data: Mapping[str, Any], lookups: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Any]:
        """Keyword arguments for the canonical dataclass; fields that yield nothing keep its default."""
        out: dict[str, Any] = {}
        for name, spec in self.fields.items():
            value = spec.evaluate(data, lookups or {})
            if value is MISSING:
                continue
            out[name] = _coerce(self.kind, name, value)
        for name in _REQUIRED[self.kind]:
            if out.get(name) in (None, ""):
                raise MappingError(f"no value for required field {name!r}")
        return out


@dataclass(frozen=True)
class SystemMapping:
    """A whole mapping file: per-kind rules plus the system-level options (envelope, auth, ...)."""

    system: str
    kinds: Mapping[str, KindMapping]
    options: Mapping[str, Any] = field(default_factory=dict)

    def section(self, kind: str) -> Mapping[str, Any]:
        """The connector-facing options of one kind (request, paging, items...)."""
        found = self.kinds.get(kind)
        return found.options if found is not None else {}

    @classmethod
    def parse(cls, doc: Mapping[str, Any], where: str = "mapping") -> SystemMapping:
        if not isinstance(doc, Mapping) or "system" not in doc:
            raise MappingError(f"{where}: a mapping file is an object with a 'system' key")
        kinds: dict[str, KindMapping] = {}
        for kind in KINDS:
            section = doc.get(kind)
            if section is None:
                continue
            if not isinstance(section, Mapping) or not isinstance(section.get("fields"), Mapping):
                raise MappingError(f"{where}: {kind} needs a 'fields' object")
            specs = {}
            for name, raw in section["fields"].items():
                if name not in _FIELD_TYPES[kind]:
                    raise MappingError(f"{where}: {kind} has no canonical field {name!r}")
                specs[name] = FieldSpec.parse(raw, f"{where}: {kind}.{name}")
            missing = [n for n in _REQUIRED[kind] if n not in specs]
            if missing:
                raise MappingError(f"{where}: {kind} must map {missing}")
            kinds[kind] = KindMapping(kind, specs, {k: v for k, v in section.items() if k != "fields"})
        options = {k: v for k, v in doc.items() if k not in KINDS}
        return cls(str(doc["system"]), kinds, options)


def load_mapping(system_or_path: str | Path, directory: Path | None = None) -> SystemMapping:
    """Load ``<directory>/<system>.yaml`` (default ``policies/sync``), or the file at a given path."""
    path = Path(system_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = (directory or DEFAULT_MAPPING_DIR) / f"{system_or_path}.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"cannot read mapping {path}: {exc}") from exc
    return SystemMapping.parse(doc, str(path))


def mapping_from(
    value: SystemMapping | Mapping[str, Any] | str | Path | None, system: str, directory: Path | None = None
) -> SystemMapping:
    """Accept a loaded mapping, a parsed document, a path, or None (the system's default file)."""
    if isinstance(value, SystemMapping):
        return value
    if isinstance(value, Mapping):
        return SystemMapping.parse(value)
    return load_mapping(value if value is not None else system, directory)


__all__: Sequence[str] = (
    "KINDS",
    "FieldSpec",
    "KindMapping",
    "MappingError",
    "SystemMapping",
    "get_path",
    "load_mapping",
    "mapping_from",
    "normalise_email",
    "normalise_mobile",
    "to_datetime",
)
