"""The base of every connector that reads an HTTP API."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from app.sync.canonical import Snapshot
from app.sync.connectors.base import Clock, Connector, SourceError
from app.sync.connectors.http import Auth, Endpoint, Envelope, HttpSession, RateLimit
from app.sync.connectors.mapping import SystemMapping, mapping_from
from app.sync.connectors.paging import NoPaging, Paging


class ApiConnector(Connector, ABC):
    """A connector over one ``httpx.Client``.

    ``credentials`` are the vendor secrets by name (see each connector's ``credential_names``); they
    go into requests only.  ``page_size`` overrides the mapping file's page sizes.  ``transport``,
    ``sleep`` and ``monotonic`` exist so tests can run without waiting.
    """

    credential_names: tuple[str, ...] = ()
    default_base_url: str = ""

    def __init__(
        self,
        *,
        credentials: Mapping[str, str],
        base_url: str | None = None,
        source: str | None = None,
        mapping: SystemMapping | Mapping[str, Any] | str | Path | None = None,
        mapping_dir: Path | None = None,
        timeout: float = 30.0,
        page_size: int | None = None,
        rate_limit: RateLimit | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        loaded = mapping_from(mapping, self.system, mapping_dir)
        super().__init__(mapping=loaded, source=source, clock=clock)
        self.credentials = {k: str(v) for k, v in credentials.items() if v is not None}
        missing = [n for n in self.credential_names if not self.credentials.get(n)]
        if missing:
            raise SourceError(self.system, f"missing credentials: {', '.join(missing)}")
        url = base_url or str(loaded.options.get("base_url") or "") or self.default_base_url
        if not url:
            raise SourceError(self.system, "no base_url configured")
        self.page_size = page_size
        self.monotonic = monotonic
        self.envelope = Envelope.parse(loaded.options.get("envelope"))
        limits = loaded.options.get("rate_limit") or {}
        self.session = HttpSession(
            self.system,
            url,
            envelope=self.envelope,
            rate_limit=rate_limit or RateLimit(**limits),
            timeout=timeout,
            secrets=tuple(self.credentials.values()),
            transport=transport,
            sleep=sleep,
            clock=self.clock,
        )
        self.session.auth = self.make_auth()

    @abstractmethod
    def make_auth(self) -> Auth:
        """How this system authenticates (every concrete connector says; the base cannot)."""

    def secrets(self) -> tuple[str, ...]:
        return self.session.secrets()

    def size(self, kind: str, default: int) -> int:
        """The page size for a kind: the constructor's, else the mapping file's, else ``default``."""
        return int(self.page_size or self.mapping.section(kind).get("page_size") or default)

    def pull(self, since: datetime | None = None) -> Snapshot:
        """As :meth:`Connector.pull`; the connections are closed afterwards (cached tokens are kept)."""
        try:
            return super().pull(since)
        finally:
            self.session.close()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ApiConnector:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def call(
        self,
        endpoint: Endpoint,
        params: Mapping[str, Any] | None = None,
        *,
        path_args: Mapping[str, Any] | None = None,
        page: int | None = None,
    ) -> Any:
        """One request; the unwrapped body."""
        req = endpoint.build(params, path_args)
        return self.session.call(req, label=req.path, page=page)

    def fetch(
        self,
        endpoint: Endpoint,
        paging: Paging | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        path_args: Mapping[str, Any] | None = None,
    ) -> Iterator[Any]:
        """Every item of a (paged) list endpoint."""
        label = endpoint.path.format(**(path_args or {}))

        def one(extra: dict[str, Any], page: int) -> tuple[list[Any], Any]:
            body = self.call(endpoint, {**(params or {}), **extra}, path_args=path_args, page=page)
            return endpoint.items_of(body, lambda m: self.error(m, endpoint=label, page=page)), body

        for items in (paging or NoPaging()).pages(one, lambda m, p: self.error(m, endpoint=label, page=p)):
            yield from items
