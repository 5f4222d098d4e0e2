"""The vendored htmx: the file is the one its README names (version and sha256), its licence is kept, and
the console serves it from itself (the CSP allows no other script source)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.conftest import CONSOLE_SECRET_KEY, ROOT

VENDOR = ROOT / "app" / "console" / "static" / "vendor"


def test_the_vendored_htmx_is_the_pinned_release_with_its_licence() -> None:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    row = re.search(r"\| `htmx\.min\.js` \| .*? \| (\d+\.\d+\.\d+) \| .*? \| `([0-9a-f]{64})` \|", readme)
    assert row, "the README's table names no version and sha256 for htmx.min.js"
    version, digest = row.groups()
    body = (VENDOR / "htmx.min.js").read_bytes()
    assert hashlib.sha256(body).hexdigest() == digest
    assert f'version:"{version}"'.encode() in body
    assert "Zero-Clause BSD" in (VENDOR / "htmx.LICENSE").read_text(encoding="utf-8")


def test_the_console_serves_it_and_every_page_loads_it_without_inline_script(
        app_factory: Callable[..., TestClient], sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCESSGOV_CONSOLE__SECRET_KEY", CONSOLE_SECRET_KEY)
    client = app_factory(sqlite_url)
    served = client.get("/console/static/vendor/htmx.min.js")
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/javascript")
    assert served.content == (VENDOR / "htmx.min.js").read_bytes()
    assert "script-src 'self'" in served.headers["content-security-policy"]
    page = client.get("/console/login").text
    assert '<script src="/console/static/vendor/htmx.min.js" defer></script>' in page
    assert len(re.findall(r"<script", page)) == 1  # no inline script
    assert '"includeIndicatorStyles": false' in page  # htmx adds no inline <style> (the CSP would refuse it)
