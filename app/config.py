"""Settings: one validated object read from ``ACCESSGOV_*`` environment variables.

Nested sections use a double underscore: ``ACCESSGOV_AUTH__ISSUER``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_PLACEHOLDER = "dev-only-insecure-secret-change-me"  # noqa: S105 - a placeholder, refused in production
CONSOLE_KEY_PLACEHOLDER = "console-dev-only-insecure-key-change-me"  # refused outside development


class Environment(StrEnum):
    """Where the service runs; production refuses every development shortcut."""

    development = "development"
    production = "production"
    test = "test"


class AuthSettings(BaseModel):
    """How callers authenticate (OAuth2 bearer JWTs from the company IdP)."""

    issuer: str | None = Field(None, description="OIDC issuer of the company IdP; discovery is read from it.")
    audience: str = Field("accessgov", description="Required `aud` of access tokens.")
    algorithms: list[str] = Field(["RS256", "ES256"], description="Accepted JWS algorithms (asymmetric only).")
    required_typ: str = Field("at+jwt", description="Required JWT `typ` header (RFC 9068).")
    jwks_min_refetch_seconds: float = Field(30.0, description="Minimum seconds between JWKS re-fetches.")
    leeway_seconds: int = Field(30, description="Clock skew allowed on exp/nbf/iat.")
    dev_tokens: bool = Field(False, description="Accept tokens from `accessgov dev-token` (development only).")
    dev_secret: str = Field(DEV_SECRET_PLACEHOLDER, description="HMAC key of development tokens.")


class DecisionLogSettings(BaseModel):
    """The decision log: batched off the hot path, bounded, flushed on shutdown."""

    enabled: bool = Field(True, description="Record every decision.")
    queue_size: int = Field(100_000, ge=100, description="Decisions buffered before new ones are dropped.")
    batch_size: int = Field(500, ge=1, description="Decisions written per database transaction.")
    flush_seconds: float = Field(0.5, gt=0, description="Longest wait before a partial batch is written.")


class SyncSettings(BaseModel):
    """Identity sync (``ACCESSGOV_SYNC__*``)."""

    sources_file: Path | None = Field(
        None, description="Sources and attribute masters; default <policies_dir>/sync/sources.yaml.")
    max_rows: Annotated[int, Field(ge=1, le=5_000_000)] = Field(
        200_000, description="Most rows (departments + accounts + roles + assignments) in one snapshot.")
    schedule: bool = Field(True, description="Pull sources on their intervals in this process.")
    max_body_mb: Annotated[int, Field(ge=1, le=2048)] = Field(
        256, description="Largest snapshot push body, in MiB (other requests keep the 5 MiB limit).")


class AuditSettings(BaseModel):
    """The quarterly access audit and the tamper-evident trail (``ACCESSGOV_AUDIT__*``)."""

    schedule: bool = Field(True, description="Run the audit on its schedule in this process.")
    cron: str = Field("0 2 1 1,4,7,10 *", description="When the audit is due (crontab: minute hour day month weekday).")
    timezone: str = Field("Asia/Shanghai", description="Time zone of the schedule and of quarters.")
    window_days: Annotated[int, Field(ge=7, le=730)] = Field(
        90, description="Usage window: a permission not used for this many days is unused.")
    expiring_days: Annotated[int, Field(ge=1, le=365)] = Field(
        14, description="Temporary grants and delegations ending within this many days are reported.")
    dormant_days: Annotated[int, Field(ge=7, le=730)] = Field(
        90, description="An account with no activity for this many days is dormant.")
    reminder_webhook_url: str | None = Field(
        None, description="Group robot webhook for review reminders (WeCom, DingTalk, Feishu or any); none: log only.")
    reminder_webhook_kind: Literal["wecom", "dingtalk", "feishu", "generic"] = Field(
        "wecom", description="The webhook's message format.")
    reminder_hours: Annotated[int, Field(ge=0, le=24 * 30)] = Field(
        24, description="Remind reviewers with pending items of active campaigns this often (0: only on request).")
    retention_days: Annotated[int, Field(ge=180, le=36_500)] = Field(
        365, description="Decision records and trail entries are kept at least this long (the law: 180 days).")


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
    secret_key: str = Field(CONSOLE_KEY_PLACEHOLDER, description="Signs the session cookie (itsdangerous).")
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


class Settings(BaseSettings):
    """All settings of the service."""

    model_config = SettingsConfigDict(env_prefix="ACCESSGOV_", env_nested_delimiter="__", extra="ignore")

    environment: Environment = Field(Environment.development, description="development | production | test")
    database_url: str = Field("sqlite:///var/accessgov.db", description="SQLAlchemy URL; SQLite or PostgreSQL.")
    policies_dir: Path = Field(Path("policies"), description="The reviewed policy baseline imported at start.")
    base_url: str = Field("http://127.0.0.1:8000", description="Public URL of this service (PDP metadata).")
    max_batch: Annotated[int, Field(ge=1, le=10_000)] = Field(200, description="Most evaluations per batch.")
    search_page_size: Annotated[int, Field(ge=1, le=1000)] = Field(50, description="Search results per page.")
    trusted_callers: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Subject properties each caller (client_id) may assert, e.g. {\"oa-backend\": [\"department\"]}.",
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)
    decision_log: DecisionLogSettings = Field(default_factory=DecisionLogSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    log_level: str = Field("INFO", description="Root log level.")
    refresh_seconds: float = Field(
        0.5, gt=0, description="How often each process checks the change log for changes made by other processes "
                               "(on PostgreSQL each change also wakes them at once; this is the safety net).")

    @model_validator(mode="after")
    def _refuse_dev_shortcuts_in_production(self) -> Settings:
        if self.environment == Environment.production:
            if self.auth.dev_tokens:
                raise ValueError("development tokens are refused when environment=production")
            if not self.auth.issuer:
                raise ValueError("production needs ACCESSGOV_AUTH__ISSUER (the company IdP)")
            check_console_settings(self.console, self.environment)  # at start, not at the console's first page
        if self.auth.dev_tokens and self.auth.dev_secret == DEV_SECRET_PLACEHOLDER and (
            self.environment != Environment.development
        ):
            raise ValueError("the placeholder dev secret is only accepted in development")
        return self


def check_console_settings(console: ConsoleSettings, environment: Environment) -> None:
    """Refuse the console's placeholder key outside development, and a short key in production (ValueError)."""
    if console.enabled and console.secret_key == CONSOLE_KEY_PLACEHOLDER and environment != Environment.development:
        raise ValueError(f"the console's placeholder secret_key is only accepted in development, not in "
                         f"{environment.value}: set ACCESSGOV_CONSOLE__SECRET_KEY (or ACCESSGOV_CONSOLE__ENABLED="
                         "false)")
    if console.enabled and len(console.secret_key) < 32 and environment == Environment.production:
        raise ValueError("the console's secret_key must be at least 32 characters in production")
