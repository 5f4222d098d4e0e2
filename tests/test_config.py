"""Settings refuse development shortcuts in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import AuthSettings, ConsoleSettings, Settings


@pytest.mark.parametrize("auth", [
    AuthSettings(issuer=None),
    AuthSettings(issuer=""),
    AuthSettings(issuer="https://idp.example", dev_tokens=True),
])
def test_production_refuses_missing_issuer_and_dev_tokens(auth: AuthSettings) -> None:
    with pytest.raises(ValidationError):
        Settings(environment="production", auth=auth)


def test_production_with_an_issuer_is_accepted() -> None:
    settings = Settings(environment="production", auth=AuthSettings(issuer="https://idp.example"),
                        console=ConsoleSettings(secret_key="k" * 40))
    assert settings.auth.dev_tokens is False


def test_the_placeholder_dev_secret_only_works_in_development() -> None:
    with pytest.raises(ValidationError):
        Settings(environment="test", auth=AuthSettings(dev_tokens=True))
    assert Settings(environment="development", auth=AuthSettings(dev_tokens=True)).auth.dev_tokens
