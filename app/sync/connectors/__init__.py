"""Pull connectors: each source system's directory API -> one canonical Snapshot (README.md here).

``CONNECTORS`` names every connector type; ``http`` is the generic one, configured by a mapping file
(``policies/sync/kingdee.yaml``, ``policies/sync/u8cloud.yaml``, or a customer's own).
"""

from __future__ import annotations

from app.sync.connectors.base import Connector, PullConnector, RawRecord, SourceError
from app.sync.connectors.dingtalk import DingtalkConnector
from app.sync.connectors.ecology import EcologyConnector
from app.sync.connectors.feishu import FeishuConnector
from app.sync.connectors.files import FileConnector
from app.sync.connectors.fxiaoke import FxiaokeConnector
from app.sync.connectors.generic import GenericHttpConnector
from app.sync.connectors.jiandaoyun import JiandaoyunConnector
from app.sync.connectors.wecom import WecomConnector

CONNECTORS: dict[str, type[Connector]] = {
    "jiandaoyun": JiandaoyunConnector,
    "fxiaoke": FxiaokeConnector,
    "ecology": EcologyConnector,
    "wecom": WecomConnector,
    "dingtalk": DingtalkConnector,
    "feishu": FeishuConnector,
    "http": GenericHttpConnector,
    "file": FileConnector,
}

__all__ = [
    "CONNECTORS",
    "Connector",
    "DingtalkConnector",
    "EcologyConnector",
    "FeishuConnector",
    "FileConnector",
    "FxiaokeConnector",
    "GenericHttpConnector",
    "JiandaoyunConnector",
    "PullConnector",
    "RawRecord",
    "SourceError",
    "WecomConnector",
]
