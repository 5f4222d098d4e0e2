"""The generic HTTP connector: a system described entirely by its mapping file.

For systems without a first-class connector (Kingdee, U8 Cloud, e-office, a customer's own API), the
mapping file says everything: base URL, auth, envelope and, per kind, the request, the paging and the
fields.  See ``policies/sync/kingdee.yaml`` and ``policies/sync/u8cloud.yaml``, and README.md here::

    system: kingdee
    credentials: [client_id, client_secret, ...]     # names the caller must pass in
    auth: {strategy: kingdee_signed, client_id: "${client_id}", ...}
    envelope: {...}
    departments:
      request: {method: POST, path: ..., json: {...}, params_at: json.data, items: "",
                columns_from: json.data.FieldKeys}    # rows zipped with these keys
      paging: {style: offset, offset: StartRow, limit: Limit, size: 2000}
      fields: {...}

The kinds with a ``request`` are the parts the snapshot claims to be complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from app.sync.connectors.api import ApiConnector
from app.sync.connectors.auth import build_auth
from app.sync.connectors.base import RawRecord, SourceError
from app.sync.connectors.http import Auth, Endpoint
from app.sync.connectors.mapping import KINDS, MISSING, MappingError, SystemMapping, get_path, mapping_from
from app.sync.connectors.paging import build_paging


def _endpoint(request: Mapping[str, Any]) -> Endpoint:
    raw = dict(request)
    source = raw.pop("columns_from", None)
    if source is not None:
        keys = get_path(raw, str(source))
        if not isinstance(keys, str) or not keys.strip():
            raise MappingError(f"columns_from {source!r} does not name a comma-separated text in the request")
        raw["columns"] = keys
    return Endpoint.parse(raw)


class GenericHttpConnector(ApiConnector):
    """Any JSON-over-HTTP directory, configured by ``mapping`` (a path, a parsed document or a system name)."""

    def __init__(
        self,
        *,
        mapping: SystemMapping | Mapping[str, Any] | str | Path,
        mapping_dir: Path | None = None,
        nonce: Callable[[], str] | None = None,
        **kw: Any,
    ) -> None:
        self.nonce = nonce  # Kingdee's signing nonce (tests fix it)
        loaded = mapping_from(mapping, str(mapping), mapping_dir)
        self.system = loaded.system
        self.credential_names = tuple(loaded.options.get("credentials") or ())
        try:
            self.endpoints = {
                k: _endpoint(loaded.section(k)["request"]) for k in KINDS if "request" in loaded.section(k)
            }
            self.pagings = {
                k: build_paging(loaded.section(k).get("paging"), kw.get("page_size")) for k in self.endpoints
            }
        except (KeyError, ValueError) as exc:
            raise SourceError(self.system, f"the mapping's request or paging is incomplete: {exc}") from exc
        super().__init__(mapping=loaded, **kw)
        self.parts = frozenset(self.endpoints)

    def make_auth(self) -> Auth:
        try:
            return build_auth(
                self.mapping.options.get("auth"),
                self.credentials,
                self.envelope,
                now_s=lambda: self.clock().timestamp(),
                nonce=self.nonce,
                monotonic=self.monotonic,
            )
        except KeyError as exc:
            raise SourceError(self.system, f"the auth section needs the credential {exc}") from exc

    def _records(self, kind: str) -> Iterator[RawRecord]:
        key = self.mapping.kinds[kind].fields.get("account_key" if kind == "assignments" else "key")
        for item in self.fetch(self.endpoints[kind], self.pagings[kind]):
            ident = key.evaluate(item, {}) if key is not None and isinstance(item, Mapping) else MISSING
            yield self.record(kind, "?" if ident is MISSING else ident, item)

    def iter_departments(self) -> Iterator[RawRecord]:
        return self._records("departments")

    def iter_accounts(self, since: datetime | None = None) -> Iterator[RawRecord]:  # noqa: ARG002 - not configurable yet
        return self._records("accounts")

    def iter_roles(self) -> Iterator[RawRecord]:
        return self._records("roles")

    def iter_assignments(self) -> Iterator[RawRecord]:
        return self._records("assignments")
