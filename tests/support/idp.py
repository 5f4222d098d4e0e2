"""Run the test OpenID Provider (tests/idp/provider.mjs) from Python.

Pure harness code: imports nothing from `app`. `start_idp()` spawns node on a free port and
returns a `TestIdP` once the provider prints its ready line; `TestIdP.stop()` ends it.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

IDP_DIR = Path(__file__).resolve().parent.parent / "idp"
PROVIDER_SCRIPT = IDP_DIR / "provider.mjs"
FIXTURE_PATH = IDP_DIR / "fixture.json"
_PINNED_PACKAGE = "oidc-provider"
_HTTP_TIMEOUT = 10.0


class IdPError(RuntimeError):
    """The test IdP could not be set up, started, or answered with an error."""


@dataclass
class TestIdP:
    """A running test IdP: its issuer, the fixture it serves, and helpers to talk to it."""

    __test__ = False  # not a pytest test class, despite the name

    issuer: str
    api_audience: str
    process: subprocess.Popen[bytes]
    fixture: dict[str, Any]
    _stderr: IO[bytes] | None = field(default=None, repr=False)
    _discovery: dict[str, Any] | None = field(default=None, repr=False)

    def discovery(self) -> dict[str, Any]:
        """The provider's OpenID configuration (fetched once)."""
        if self._discovery is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            self._discovery = _get_json(url)
        return self._discovery

    def jwks(self) -> dict[str, Any]:
        """The current public signing keys."""
        return _get_json(self.discovery()["jwks_uri"])

    def client_secret(self, client_id: str) -> str:
        """The fixture secret of a client."""
        return str(self._client_entry(client_id)["client_secret"])

    def account(self, login: str) -> dict[str, Any]:
        """The fixture account with this login (has `login`, `password`, `claims`)."""
        for account in self.fixture["accounts"]:
            if account["login"] == login:
                return dict(account)
        raise KeyError(f"no account {login!r} in {FIXTURE_PATH}")

    def token_response(
        self, client_id: str, scope: str | None = None, resource: str | None = None
    ) -> httpx.Response:
        """Raw client_credentials token response (secret from the fixture, HTTP Basic auth).

        `scope=None` asks for every API scope the fixture allows the client; `""` asks for none.
        """
        if scope is None:
            scope = " ".join(self._client_entry(client_id).get("api_scopes", []))
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        if resource is not None:
            form["resource"] = resource
        auth = (client_id, self.client_secret(client_id))
        return httpx.post(self.discovery()["token_endpoint"], data=form, auth=auth, timeout=_HTTP_TIMEOUT)

    def token(self, client_id: str, scope: str | None = None, resource: str | None = None) -> str:
        """A client_credentials access token (a JWT for the API); raises IdPError on error."""
        response = self.token_response(client_id, scope=scope, resource=resource)
        if response.status_code != 200:
            raise IdPError(f"token request for {client_id} failed: {response.status_code} {response.text}")
        return str(response.json()["access_token"])

    def rotate_keys(self) -> str:
        """Replace the signing key (the old one leaves the JWKS); returns the new `kid`."""
        response = httpx.post(f"{self.issuer}/__test__/rotate-keys", timeout=_HTTP_TIMEOUT)
        response.raise_for_status()
        return str(response.json()["kid"])

    def stop(self) -> None:
        """Stop the provider (SIGTERM, then SIGKILL); safe to call twice."""
        _terminate(self.process)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _client_entry(self, client_id: str) -> dict[str, Any]:
        for entry in self.fixture["clients"]:
            if entry["client_id"] == client_id:
                return dict(entry)
        raise KeyError(f"no client {client_id!r} in {FIXTURE_PATH}")


def idp_available() -> tuple[bool, str]:
    """Whether node and tests/idp/node_modules are present; the reason when they are not."""
    if shutil.which("node") is None:
        return False, "node is not installed (the test IdP runs on node oidc-provider)"
    if not (IDP_DIR / "node_modules" / _PINNED_PACKAGE).is_dir():
        return False, f"{IDP_DIR}/node_modules is missing (run `npm ci` in {IDP_DIR})"
    return True, ""


def ensure_node_modules() -> None:
    """Run `npm ci` in tests/idp unless node_modules already matches the lockfile."""
    if _installed_version() == _locked_version():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise IdPError(f"npm is not installed; cannot install {IDP_DIR}/node_modules")
    command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    result = subprocess.run(command, cwd=IDP_DIR, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise IdPError(f"`npm ci` in {IDP_DIR} failed ({result.returncode}):\n{result.stderr}")


def start_idp(console_redirect_uris: Sequence[str] = (), timeout: float = 20.0) -> TestIdP:
    """Spawn the provider on a free port and wait for its ready line."""
    node = shutil.which("node")
    if node is None:
        raise IdPError("node is not installed")
    ensure_node_modules()
    fixture = json.loads(FIXTURE_PATH.read_text(encoding="utf-8"))
    command = [node, str(PROVIDER_SCRIPT), "--port", "0", "--fixture", str(FIXTURE_PATH)]
    command.append("--exit-on-stdin-close")
    for uri in console_redirect_uris:
        command += ["--console-redirect-uri", uri]
    # A file, not a pipe: nobody drains stderr while tests run. TestIdP.stop() closes it.
    stderr = tempfile.TemporaryFile()  # noqa: SIM115
    # stdin stays open as a lifeline: if this Python process dies, node sees EOF and exits.
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=IDP_DIR
    )
    try:
        ready = _read_ready_line(process, timeout)
    except Exception as exc:
        _terminate(process)
        raise IdPError(f"{exc}\n--- provider stderr ---\n{_tail(stderr)}") from exc
    return TestIdP(
        issuer=ready["issuer"],
        api_audience=fixture["api_audience"],
        process=process,
        fixture=fixture,
        _stderr=stderr,
    )


def running_in_ci() -> bool:
    """True when the `CI` environment variable is set to anything but empty/0/false."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def _read_ready_line(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    # readline() blocks, so read on a daemon thread and wait on the queue with a timeout.
    lines: queue.Queue[bytes] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        raise IdPError(f"no ready line from the test IdP within {timeout} s") from None
    if not line:
        raise IdPError(f"the test IdP exited before it was ready (code {process.wait(5)})")
    ready = json.loads(line)
    if not ready.get("ready") or not ready.get("issuer"):
        raise IdPError(f"unexpected ready line: {line!r}")
    return dict(ready)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


def _tail(stream: IO[bytes], limit: int = 4000) -> str:
    stream.seek(0)
    return stream.read().decode("utf-8", "replace")[-limit:]


def _get_json(url: str) -> dict[str, Any]:
    response = httpx.get(url, timeout=_HTTP_TIMEOUT)
    response.raise_for_status()
    return dict(response.json())


def _installed_version() -> str | None:
    manifest = IDP_DIR / "node_modules" / _PINNED_PACKAGE / "package.json"
    if not manifest.is_file():
        return None
    return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])


def _locked_version() -> str:
    lock = json.loads((IDP_DIR / "package-lock.json").read_text(encoding="utf-8"))
    return str(lock["packages"][f"node_modules/{_PINNED_PACKAGE}"]["version"])
