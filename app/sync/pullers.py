"""Pull functions for the configured sources: a connector per run, credentials read from the environment.

A source in ``sources.yaml`` names its connector and, for API connectors, where its credentials are::

    crm: {connector: jiandaoyun, kind: crm, base_url: https://api.jiandaoyun.com,
          credentials_env: {api_key: JDY_API_KEY}}
    oa:  {connector: ecology, kind: oa, base_url: https://oa.example.cn,
          credentials_env: {secret_key: ECOLOGY_KEY}, options: {auth: md5}}
    hr-file: {connector: file, kind: directory, path: /data/exports/hr}

A source whose credentials are not all set gets no puller (its runs answer 400; pushes still work).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.sync.canonical import Snapshot
from app.sync.config import SourceConfig, SyncConfig
from app.sync.connectors import CONNECTORS
from app.sync.connectors.files import FileConnector


def build_pullers(config: SyncConfig, mapping_dir: Path) -> dict[str, Callable[[], Snapshot]]:
    """One pull function per source that can be pulled here."""
    out: dict[str, Callable[[], Snapshot]] = {}
    for source in config.sources.values():
        puller = _puller(source, mapping_dir)
        if puller is not None:
            out[source.name] = puller
    return out


def _puller(source: SourceConfig, mapping_dir: Path) -> Callable[[], Snapshot] | None:
    settings = dict(source.settings)
    mapping = settings.get("mapping")
    if source.connector == "file":
        path = settings.get("path")
        if not path:
            return None
        return lambda: FileConnector(Path(str(path)), source=source.name, mapping=mapping,
                                     mapping_dir=mapping_dir).pull()
    cls: Any = CONNECTORS.get(source.connector)  # API connectors share ApiConnector's keyword arguments
    names = dict(settings.get("credentials_env") or {})
    if cls is None or not names:
        return None
    # Connector options (e-cology `auth: md5`, `role_members_path`; WeCom `tags_as_roles`; Feishu
    # `functional_roles`; `page_size`): an unknown one fails the run with the connector's message.
    options = dict(settings.get("options") or {})

    def pull() -> Snapshot:
        missing = [env for env in names.values() if not os.environ.get(str(env))]
        if missing:
            raise RuntimeError(f"credentials not set: {', '.join(sorted(missing))}")
        credentials = {str(k): os.environ[str(v)] for k, v in names.items()}
        connector = cls(credentials=credentials, base_url=settings.get("base_url"),
                        source=source.name, mapping=mapping, mapping_dir=mapping_dir,
                        timeout=float(settings.get("timeout", 30.0)), **options)
        snapshot: Snapshot = connector.pull()
        return snapshot

    return pull
