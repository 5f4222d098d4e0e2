"""Rule conditions: a tiny, safe language over request properties (no eval, no attribute access).

A condition is ``-`` (none) or clauses joined by ``and``::

    record.amount <= 5000 and record.status in [submitted, pending]

A clause is ``<path> <op> <value>``; a path starts with ``record``, ``action``, ``subject`` or
``context``; ops are ``== != < <= > >= in not_in``; values are numbers, ``true``/``false``,
quoted or bare strings, or ``[...]`` lists of those.  A clause whose path is missing or whose
types do not compare raises :class:`ConditionError`; the engine turns that into "no match" for an
allow rule and "match" for a deny rule, so doubt always denies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

ROOTS = frozenset({"action", "context", "record", "subject"})
_ORDER_OPS = frozenset({"<", "<=", ">", ">="})
_CLAUSE_RE = re.compile(
    r"^\s*(?P<path>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*"
    r"(?P<op>==|!=|<=|>=|<|>|\bnot_in\b|\bin\b)\s*(?P<value>.+?)\s*$"
)
_NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?$")
_BARE_RE = re.compile(r"^[A-Za-z0-9_.\-:/\u4e00-\u9fff]+$")

Scalar = str | int | float | bool


class ConditionError(Exception):
    """A condition could not be parsed or evaluated."""


@dataclass(frozen=True, slots=True)
class Clause:
    """One comparison of a request property with a literal."""

    path: tuple[str, ...]
    op: str
    value: Scalar | tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition; ``clauses == ()`` means always true."""

    source: str
    clauses: tuple[Clause, ...]

    @property
    def is_empty(self) -> bool:
        """True when the rule has no condition."""
        return not self.clauses

    def evaluate(self, attrs: Mapping[str, Any]) -> bool:
        """Evaluate against ``{"record": {...}, "action": {...}, ...}``; raise ConditionError on doubt."""
        return all(_eval_clause(c, attrs) for c in self.clauses)


ALWAYS = Condition("-", ())


@lru_cache(maxsize=65_536)  # conditions repeat across departments; parsed ones are immutable
def parse_condition(text: str) -> Condition:
    """Parse a condition string; raise ConditionError with a readable message."""
    source = text.strip()
    if source in ("", "-"):
        return ALWAYS
    parts = re.split(r"\s+and\s+", source)
    return Condition(source, tuple(_parse_clause(p) for p in parts))


def _parse_clause(text: str) -> Clause:
    match = _CLAUSE_RE.match(text)
    if match is None:
        raise ConditionError(f"cannot read condition clause {text!r}")
    path = tuple(match["path"].split("."))
    if path[0] not in ROOTS:
        raise ConditionError(f"condition path {match['path']!r} must start with one of {sorted(ROOTS)}")
    op, raw = match["op"], match["value"]
    value: Scalar | tuple[Scalar, ...]
    if op in ("in", "not_in"):
        if not (raw.startswith("[") and raw.endswith("]")):
            raise ConditionError(f"{op} needs a [list] in {text!r}")
        value = tuple(_parse_scalar(v) for v in _split_list(raw[1:-1]))
    else:
        value = _parse_scalar(raw)
        if op in _ORDER_OPS and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConditionError(f"{op} needs a number in {text!r}")
    return Clause(path, op, value)


def _split_list(inner: str) -> list[str]:
    items = [i.strip() for i in inner.split(",")]
    return [i for i in items if i]


def _parse_scalar(raw: str) -> Scalar:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    if raw in ("true", "false"):
        return raw == "true"
    if _NUMBER_RE.match(raw):
        return float(raw) if "." in raw else int(raw)
    if _BARE_RE.match(raw):
        return raw
    raise ConditionError(f"cannot read value {raw!r}")


def _lookup(path: tuple[str, ...], attrs: Mapping[str, Any]) -> Any:
    node: Any = attrs
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            raise ConditionError(f"{'.'.join(path)} is missing")
        node = node[key]
    return node


def _eval_clause(clause: Clause, attrs: Mapping[str, Any]) -> bool:
    actual = _lookup(clause.path, attrs)
    op, expected = clause.op, clause.value
    if op in ("in", "not_in"):
        assert isinstance(expected, tuple)
        found = any(_equal(actual, e) for e in expected)
        return found if op == "in" else not found
    if op == "==":
        return _equal(actual, expected)
    if op == "!=":
        return not _equal(actual, expected)
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        raise ConditionError(f"{'.'.join(clause.path)} is not a number")
    assert isinstance(expected, int | float)
    if op == "<":
        return actual < expected
    if op == "<=":
        return actual <= expected
    if op == ">":
        return actual > expected
    return actual >= expected


def _equal(actual: Any, expected: Any) -> bool:
    # bool is an int in Python; keep true != 1 so a JSON boolean never equals a number.
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return actual == expected
    if isinstance(actual, str) and isinstance(expected, str):
        return actual == expected
    if isinstance(actual, int | float | str) or actual is None:
        return False
    raise ConditionError(f"cannot compare {type(actual).__name__} with {expected!r}")
