"""The file import connector: CSV or JSON exports for systems with no API.

Give a directory holding any of ``departments.csv``, ``accounts.csv``, ``roles.csv``,
``assignments.csv``, or one JSON document ``{"departments": [...], "accounts": [...], ...}``.
The kinds present are the parts the snapshot claims to be complete; a missing file says nothing.

CSV files have a header row.  They are read as UTF-8 (a BOM, as Excel writes, is fine) and, failing
that, as GB18030 (what Chinese Excel writes by default).  Columns are mapped by
``policies/sync/file.yaml`` (by default, the canonical field names; lists such as
``department_keys`` and ``scope_keys`` separated by ``|``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from app.sync.connectors.base import Clock, Connector, RawRecord, SourceError
from app.sync.connectors.mapping import KINDS, SystemMapping, mapping_from


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


class FileConnector(Connector):
    system = "file"

    def __init__(
        self,
        path: str | Path,
        *,
        source: str | None = None,
        mapping: SystemMapping | Mapping[str, Any] | str | Path | None = None,
        mapping_dir: Path | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(mapping=mapping_from(mapping, "file", mapping_dir), source=source or "file", clock=clock)
        self.path = Path(path)
        self._documents: dict[str, list[Mapping[str, Any]]] = {}
        self.parts = frozenset(self._present())

    def _present(self) -> list[str]:
        if self.path.is_dir():
            return [k for k in KINDS if (self.path / f"{k}.csv").is_file()]
        if self.path.is_file():
            doc = self._json()
            return [k for k in KINDS if k in doc]
        raise SourceError(self.system, f"no such file or directory: {self.path}")

    def _json(self) -> Mapping[str, Any]:
        try:
            doc = json.loads(_read_text(self.path))
        except (OSError, ValueError) as exc:
            raise SourceError(self.system, f"{self.path.name} is not a readable JSON document: {exc}") from exc
        if not isinstance(doc, Mapping):
            raise SourceError(self.system, f"{self.path.name}: the document must be an object of lists")
        for kind in KINDS:
            if kind in doc and not (isinstance(doc[kind], list) and all(isinstance(r, Mapping) for r in doc[kind])):
                raise SourceError(self.system, f"{self.path.name}: {kind} must be a list of objects")
        return doc

    def _rows(self, kind: str) -> Iterator[RawRecord]:
        if self.path.is_dir():
            file = self.path / f"{kind}.csv"
            try:
                reader = csv.DictReader(io.StringIO(_read_text(file), newline=""))
                rows: list[Mapping[str, Any]] = list(reader)
            except (OSError, csv.Error, UnicodeDecodeError) as exc:
                raise SourceError(self.system, f"{file.name} cannot be read: {exc}") from exc
            where = file.name
            for line, row in enumerate(rows, start=2):
                if None in row:
                    raise SourceError(self.system, f"{where} line {line} has more cells than the header")
                yield self.record(kind, f"{where}:{line}", {k: v for k, v in row.items() if k is not None})
        else:
            for index, row in enumerate(self._json().get(kind, [])):
                yield self.record(kind, f"{self.path.name}:{kind}[{index}]", row)

    def iter_departments(self) -> Iterator[RawRecord]:
        return self._rows("departments")

    def iter_accounts(self, since: datetime | None = None) -> Iterator[RawRecord]:  # noqa: ARG002 - a file is whole
        return self._rows("accounts")

    def iter_roles(self) -> Iterator[RawRecord]:
        return self._rows("roles")

    def iter_assignments(self) -> Iterator[RawRecord]:
        return self._rows("assignments")
