"""An in-memory view of the directory the decision path reads: people, accounts, departments.

Built from the database by ``app.directory.repository.load_directory`` and swapped whole, like the
engine, so a decision never waits on the database.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.authz.engine import Engine
from app.errors import NotReady


@dataclass(frozen=True, slots=True)
class PersonView:
    """What a decision needs of a person."""

    id: str
    name: str
    status: str
    department_id: str | None
    home: str  # the department's domain path, "" when unknown

    @property
    def sub(self) -> str:
        """The person's Casbin subject."""
        return f"user:{self.id}"


@dataclass(frozen=True, slots=True)
class AccountView:
    """A source-system account and the person it links to (None: orphan)."""

    system: str
    local_id: str
    person_id: str | None
    status: str


@dataclass(frozen=True)
class Directory:
    """People, accounts and departments, indexed for resolution."""

    people: Mapping[str, PersonView] = field(default_factory=dict)
    accounts: Mapping[tuple[str, str], AccountView] = field(default_factory=dict)
    departments: Mapping[str, str] = field(default_factory=dict)  # id -> path
    department_names: Mapping[str, str] = field(default_factory=dict)  # id -> name
    source_departments: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (system, id) -> id

    def department_path(self, ref: str, system: str | None = None) -> str | None:
        """Path of a department given our id, ``system:source_id``, or a bare id of ``system``."""
        if ref in self.departments:
            return self.departments[ref]
        if ":" in ref:
            sys_name, _, local = ref.partition(":")
            dep = self.source_departments.get((sys_name, local))
            return self.departments.get(dep) if dep else None
        if system is not None:
            dep = self.source_departments.get((system, ref))
            return self.departments.get(dep) if dep else None
        return None


@dataclass(frozen=True)
class State:
    """Everything a decision reads, at one policy version."""

    engine: Engine
    directory: Directory
    version: str
    policy_version_id: int


class StateHolder:
    """Holds the current state; readers take the reference, writers swap it under a lock."""

    def __init__(self) -> None:
        self._state: State | None = None
        self._lock = threading.RLock()

    @property
    def current(self) -> State | None:
        """The state decisions use now (None until the policy is loaded)."""
        return self._state

    def require(self) -> State:
        """The current state, or NotReady (search, explain and filters refuse to guess)."""
        state = self._state
        if state is None:
            raise NotReady("the policy is not loaded yet")
        return state

    def swap(self, state: State) -> None:
        """Make ``state`` current."""
        with self._lock:
            self._state = state

    @property
    def lock(self) -> threading.RLock:
        """Writers hold this while they build and swap a new state."""
        return self._lock
