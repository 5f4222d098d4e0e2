"""Policy lines (``p``, ``p2``, ``g``), domains and data scopes: the shared vocabulary of the model.

Domains are department paths such as ``hq/sales/east/``.  A domain *pattern* is either an exact
path, a path followed by ``*`` (the department and everything below it), or ``*`` (the whole
company): exactly what Casbin's ``keyMatch`` decides when the ``*`` comes last.

Data scopes narrow a rule to some records within the departments where the role is held:

``all``                    every record there
``own``                    records the subject owns
``dept``                   records of the subject's own (home) department
``tree``                   records of the subject's department and below
``listed:<p1>;<p2>``       records of the listed department patterns
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import lru_cache

from app.authz.conditions import ALWAYS, Condition

_DOMAIN_RE = re.compile(r"^(\*|(?:[a-z0-9_-]+/)+\*?)$")
_TOKENS_RE = re.compile(r"[,\[\]\(\)]")
EFFECTS = ("allow", "deny")
FIELD_ACTS = ("read", "write")
LEVELS = ("hidden", "masked", "visible")


@lru_cache(maxsize=65_536)  # a few thousand department patterns, checked once per policy line
def valid_domain(pattern: str) -> bool:
    """True for ``*``, ``a/b/`` and ``a/b/*``."""
    return bool(_DOMAIN_RE.match(pattern))


def key_match(key1: str, key2: str) -> bool:
    """Casbin's keyMatch, copied so the engine does not depend on casbin internals."""
    i = key2.find("*")
    if i == -1:
        return key1 == key2
    if len(key1) > i:
        return key1[:i] == key2[:i]
    return key1 == key2[:i]


def pattern_key(pattern: str) -> tuple[bool, str]:
    """(is_prefix, key): ``a/b/*`` -> (True, "a/b/"), ``*`` -> (True, ""), ``a/b/`` -> (False, "a/b/")."""
    if pattern.endswith("*"):
        return True, pattern[:-1]
    return False, pattern


def domain_prefixes(dom: str) -> list[str]:
    """Every prefix key a pattern may have to match ``dom``: "", "hq/", "hq/sales/", ..."""
    out = [""]
    start = 0
    while True:
        i = dom.find("/", start)
        if i == -1:
            return out
        out.append(dom[: i + 1])
        start = i + 1


def parse_scope(scope: str) -> tuple[str, tuple[str, ...]]:
    """Split ``listed:a/;b/*`` into ("listed", ("a/", "b/*")); raise ValueError if unknown."""
    if scope in ("all", "own", "dept", "tree"):
        return scope, ()
    if scope.startswith("listed:"):
        items = tuple(s.strip() for s in scope[len("listed:") :].split(";") if s.strip())
        if items and all(valid_domain(i) for i in items):
            return "listed", items
    raise ValueError(f"unknown data scope {scope!r} (all, own, dept, tree, listed:<dept>;<dept>)")


def scope_match(scope: str, sub: str, owner: str, dom: str, home: str) -> bool:
    """Does a record (owner, department ``dom``) fall in a data scope for subject ``sub``?"""
    if scope == "all":
        return True
    if scope == "own":
        return owner != "" and owner == sub
    if scope == "dept":
        return home != "" and dom == home
    if scope == "tree":
        return home != "" and dom.startswith(home)
    if scope.startswith("listed:"):
        return any(key_match(dom, p) for p in parse_scope(scope)[1])
    return False


def split_line(line: str) -> list[str]:
    """Split one policy line the way Casbin's file adapter does (commas nest inside [] and ())."""
    if not line or line.startswith("#"):
        return []
    if "[" not in line and "(" not in line and "]" not in line and ")" not in line:
        return [t.strip() for t in line.split(",")]  # no nesting: a plain split says the same
    depth, start, tokens = 0, 0, []
    for m in _TOKENS_RE.finditer(line):
        c = m.group()
        if c in "[(":
            depth += 1
        elif c in "])":
            depth -= 1
        elif depth == 0:
            tokens.append(line[start : m.start()].strip())
            start = m.end()
    tokens.append(line[start:].strip())
    return tokens


def _rule_id(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:10]


@dataclass(frozen=True, slots=True)
class Inherit:
    """``g, role, parent, domain``: holders of ``role`` also hold ``parent`` in that domain."""

    role: str
    parent: str
    dom: str


@dataclass(frozen=True, slots=True)
class Rule:
    """``p, role, domain, type, action, scope, condition, effect``."""

    id: str
    role: str
    dom: str
    obj: str
    act: str
    scope: str
    cond: Condition
    eft: str
    line: int = dc_field(compare=False)  # where it was read from; not part of the rule's identity
    # (type, action, effect, scope, condition): what the rule permits, whatever role and domain it names
    shape: tuple[str, str, str, str, str] = dc_field(default=("", "", "", "", ""), compare=False, repr=False)

    @property
    def text(self) -> str:
        """The rule as a policy line."""
        return ", ".join(("p", self.role, self.dom, self.obj, self.act, self.scope, self.cond.source, self.eft))

    @classmethod
    def make(
        cls, role: str, dom: str, obj: str, act: str, scope: str, cond: Condition, eft: str, line: int = 0
    ) -> Rule:
        """Build and validate a rule."""
        if eft not in EFFECTS:
            raise ValueError(f"effect must be allow or deny, not {eft!r}")
        if not valid_domain(dom):
            raise ValueError(f"bad domain pattern {dom!r} (use *, a/b/ or a/b/*)")
        parse_scope(scope)
        if role.startswith("user:"):
            raise ValueError("rules name roles, never people")
        cond = cond if cond.clauses else ALWAYS
        text = ", ".join(("p", role, dom, obj, act, scope, cond.source, eft))
        return cls(_rule_id(text), role, dom, obj, act, scope, cond, eft, line, (obj, act, eft, scope, cond.source))


@dataclass(frozen=True, slots=True)
class FieldRule:
    """``p2, role, domain, type, read|write, field, scope, level``."""

    id: str
    role: str
    dom: str
    obj: str
    act: str
    field: str
    scope: str
    level: str
    line: int = dc_field(compare=False)

    @property
    def text(self) -> str:
        """The field rule as a policy line."""
        return ", ".join(("p2", self.role, self.dom, self.obj, self.act, self.field, self.scope, self.level))

    @classmethod
    def make(
        cls, role: str, dom: str, obj: str, act: str, fld: str, scope: str, level: str, line: int = 0
    ) -> FieldRule:
        """Build and validate a field rule."""
        if act not in FIELD_ACTS:
            raise ValueError(f"field rules apply to read or write, not {act!r}")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
        if not valid_domain(dom):
            raise ValueError(f"bad domain pattern {dom!r}")
        parse_scope(scope)
        text = ", ".join(("p2", role, dom, obj, act, fld, scope, level))
        return cls(_rule_id(text), role, dom, obj, act, fld, scope, level, line)
