"""Console settings (``ACCESSGOV_CONSOLE__*``): the session cookie, its lifetimes, and the IdPs.

Until ``app.config.Settings`` carries a ``console`` section, ``console_settings`` reads the same
environment variables itself through ``ConsoleEnv``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config import Environment, Settings

SECRET_KEY_PLACEHOLDER = "console-dev-only-insecure-key-change-me"  # noqa: S105 - a placeholder, refused in production


class ConsoleIdP(BaseModel):
    """One OpenID provider people may sign in with."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")] = Field(
        description="Short name, used in URLs (/console/auth/login/<name>).")
    display_name: str = Field(description="What the sign-in page calls it, e.g. 企业微信 or 公司统一身份认证.")
    issuer: str = Field(description="The issuer; discovery is read from <issuer>/.well-known/openid-configuration.")
    client_id: str = Field(description="The console's client id at this IdP (authorization code + PKCE).")
    client_secret: str = Field(description="The client secret (client_secret_basic); never logged nor shown.")
    scopes: list[str] = Field(["openid", "profile", "email"], description="Scopes asked for; openid is required.")
    sync_source: str = Field("idp", description="The sync source (sources.yaml) that records the sign-in's claims.")

    @model_validator(mode="after")
    def _openid_scope(self) -> ConsoleIdP:
        if "openid" not in self.scopes:
            raise ValueError(f"console IdP {self.name}: scopes must include openid")
        return self


class ConsoleSettings(BaseModel):
    """The console (``ACCESSGOV_CONSOLE__*``)."""

    enabled: bool = Field(True, description="Serve the console under /console/.")
    base_url: str | None = Field(
        None, description="Public URL of the service for the console's redirect URIs; default Settings.base_url.")
    secret_key: str = Field(SECRET_KEY_PLACEHOLDER, description="Signs the session cookie (itsdangerous).")
    cookie_name: str = Field("accessgov_console", description="Name of the session cookie (its own name: "
                             "cookies ignore ports, so it must not collide with another app on the host).")
    session_max_seconds: Annotated[int, Field(ge=60, le=7 * 86400)] = Field(
        8 * 3600, description="Absolute session lifetime: sign in again after this, active or not.")
    idle_timeout_seconds: Annotated[int, Field(ge=1, le=86400)] = Field(
        30 * 60, description="A session unused for this long expires.")
    login_timeout_seconds: Annotated[int, Field(ge=30, le=3600)] = Field(
        600, description="How long a started sign-in (state, nonce, PKCE verifier) stays valid.")
    timezone: str = Field("Asia/Shanghai", description="Time zone the pages show times in.")
    idps: list[ConsoleIdP] = Field(default_factory=list, description="The IdPs people may sign in with.")

    @model_validator(mode="after")
    def _unique_idps(self) -> ConsoleSettings:
        names = [idp.name for idp in self.idps]
        if len(names) != len(set(names)):
            raise ValueError("console IdP names must be unique")
        return self

    def idp(self, name: str) -> ConsoleIdP | None:
        """The IdP of this name, or None."""
        return next((idp for idp in self.idps if idp.name == name), None)


class ConsoleEnv(BaseSettings):
    """Reads ``ACCESSGOV_CONSOLE__*`` until ``Settings`` has the section itself."""

    model_config = SettingsConfigDict(env_prefix="ACCESSGOV_", env_nested_delimiter="__", extra="ignore")

    console: ConsoleSettings = Field(default_factory=ConsoleSettings)


def console_settings(settings: Settings) -> ConsoleSettings:
    """The console section of ``settings`` (or of the environment), checked against its environment."""
    section: Any = getattr(settings, "console", None)
    console = section if isinstance(section, ConsoleSettings) else ConsoleEnv().console
    check_console_settings(console, settings.environment)
    return console


def check_console_settings(console: ConsoleSettings, environment: Environment) -> None:
    """Refuse the placeholder key outside development (ValueError)."""
    if console.enabled and console.secret_key == SECRET_KEY_PLACEHOLDER and environment != Environment.development:
        raise ValueError("the console's placeholder secret_key is only accepted in development "
                         "(set ACCESSGOV_CONSOLE__SECRET_KEY)")
    if console.enabled and len(console.secret_key) < 32 and environment == Environment.production:
        raise ValueError("the console's secret_key must be at least 32 characters in production")
