"""Pytest fixtures for the test IdP.

Use from a conftest: `from tests.support.idp_fixture import idp  # noqa: F401`.
A fixture that must register console redirect URIs does `yield from serve_idp(uris)`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence

import pytest

from tests.support.idp import IdPError, TestIdP, idp_available, running_in_ci, start_idp


def start_idp_or_skip(console_redirect_uris: Sequence[str] = ()) -> TestIdP:
    """Start the IdP; if node/npm is missing skip locally, but fail under CI (never skip there)."""
    missing = _missing_tooling()
    if missing:
        if running_in_ci():
            pytest.fail(f"test IdP unavailable under CI: {missing}")
        pytest.skip(f"test IdP unavailable: {missing}")
    try:
        return start_idp(console_redirect_uris)
    except IdPError as exc:
        pytest.fail(f"test IdP failed to start: {exc}")


def serve_idp(console_redirect_uris: Sequence[str] = ()) -> Iterator[TestIdP]:
    """Fixture body: a running IdP for the fixture's lifetime, stopped afterwards."""
    server = start_idp_or_skip(console_redirect_uris)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def idp() -> Iterator[TestIdP]:
    """One test IdP for the whole session (console redirect URI: the provider default)."""
    yield from serve_idp()


def _missing_tooling() -> str:
    # npm only matters when node_modules still has to be installed.
    available, reason = idp_available()
    if available or shutil.which("node") is None:
        return reason
    return "" if shutil.which("npm") else f"{reason}; npm is not installed either"
