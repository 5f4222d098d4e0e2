"""The console's collaborators, built once per app on first use: settings, cookie codec, IdP clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from app.console.config import ConsoleSettings, console_settings
from app.console.oidc import OidcClient
from app.console.security import console_headers
from app.console.session import SessionCodec

CALLBACK_PATH = "/console/auth/callback"
SIGNED_OUT_PATH = "/console/signed-out"
_lock = threading.Lock()


@dataclass
class ConsoleRuntime:
    """Everything the console's handlers share."""

    settings: ConsoleSettings
    base_url: str
    codec: SessionCodec
    clients: dict[str, OidcClient]
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    @property
    def signed_out_url(self) -> str:
        """Where the IdP sends the browser back after logging out (register it at the IdP)."""
        return self.base_url + SIGNED_OUT_PATH


def build_runtime(settings: Any, clock: Callable[[], float] = time.time) -> ConsoleRuntime:
    """The console's runtime for the service's settings."""
    console = console_settings(settings)
    base = (console.base_url or settings.base_url).rstrip("/")
    https = base.startswith("https://")
    clients = {idp.name: OidcClient(idp, base + CALLBACK_PATH) for idp in console.idps}
    origins = tuple(sorted({_origin(idp.issuer) for idp in console.idps}))
    return ConsoleRuntime(settings=console, base_url=base, codec=SessionCodec(console, secure=https, clock=clock),
                          clients=clients, headers=console_headers(https=https, form_targets=origins))


def runtime_of(app: Any) -> ConsoleRuntime:
    """The app's console runtime (built on first use)."""
    rt = getattr(app.state, "console", None)
    if rt is None:
        with _lock:
            rt = getattr(app.state, "console", None)
            if rt is None:
                rt = build_runtime(app.state.services.settings)
                app.state.console = rt
    return rt


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
