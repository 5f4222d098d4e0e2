"""Decision engines under test; each module exposes ``load(scenario) -> handle`` and ``decide(handle, probe) -> bool``.

A probe about a field asks "is the record allowed and the field shown at least at ``want``"
(``masked`` = shown at all, ``visible`` = shown in clear); a probe without a field asks about the
record only.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ENGINES = ("accessgov", "casbin_stock", "casbin_fast", "cedar", "rego")
RANK = {"hidden": 0, "masked": 1, "visible": 2}


def get(name: str) -> ModuleType:
    """The engine module ``bench.engines.<name>`` (imported lazily: peers need optional packages)."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")
    return importlib.import_module(f"bench.engines.{name}")
