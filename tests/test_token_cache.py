"""Verified tokens are remembered briefly, never past their expiry or a change of the IdP's keys."""

from __future__ import annotations

import time

import pytest

from app.auth.verifier import CompositeVerifier, DevTokenVerifier, make_dev_token
from app.errors import Unauthorized

SECRET = "cache-test-secret-" + "y" * 16


class Counting(DevTokenVerifier):
    calls = 0

    def verify(self, token: str):  # type: ignore[no-untyped-def]
        Counting.calls += 1
        return super().verify(token)


class FakeOidc:
    key_generation = 0


def test_a_verified_token_is_not_verified_again_until_keys_change() -> None:
    Counting.calls = 0
    oidc = FakeOidc()
    verifier = CompositeVerifier(oidc, Counting(secret=SECRET, audience="a"))  # type: ignore[arg-type]
    token = make_dev_token(secret=SECRET, audience="a", client_id="c", scopes=["s"], ttl_seconds=60)
    for _ in range(5):
        assert verifier.verify(token).client_id == "c"
    assert Counting.calls == 1
    oidc.key_generation += 1  # the IdP's keys changed: every cached answer lapses
    verifier.verify(token)
    assert Counting.calls == 2


def test_a_cached_token_still_expires() -> None:
    verifier = CompositeVerifier(None, DevTokenVerifier(secret=SECRET, audience="a"))
    token = make_dev_token(secret=SECRET, audience="a", client_id="c", scopes=["s"], ttl_seconds=1)
    verifier.verify(token)
    time.sleep(2.1)
    with pytest.raises(Unauthorized):
        verifier.verify(token)
