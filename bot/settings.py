"""Configuration: environment variables and an optional `.env` file, validated at start.

The variable names are a contract: other tools (deployment scripts, the demo, CI) drive
Vigil through them. Every one is documented in the README (a test checks it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from store.client_address import Network, parse_trusted_proxies
from store.crypto import parse_keys
from store.documents.storage import check_files_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./vigil.db"
SLACK_API_URL = "https://slack.com/api/"
DEFAULT_CONFIG = "vigil.toml"
# Each Slack token's kind and prefix, for the message when one is pasted into the wrong place.
TOKEN_KINDS = {
    "slack_bot_token": ("a bot token", "xoxb-"),
    "slack_app_token": ("an app-level token", "xapp-"),
}


class ConfigError(Exception):
    """Configuration is missing or malformed; the message says what to fix."""


class Settings(BaseSettings):
    """Everything Vigil reads from its environment."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    database_url: str = Field(DEFAULT_DATABASE_URL, alias="VIGIL_DATABASE_URL")
    slack_bot_token: str | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: str | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(SLACK_API_URL, alias="VIGIL_SLACK_API_URL")
    host: str = Field("127.0.0.1", alias="VIGIL_HOST")
    port: Annotated[int, Field(ge=0, le=65535)] = Field(3000, alias="VIGIL_PORT")
    public_url: str = Field("http://127.0.0.1:3000", alias="VIGIL_PUBLIC_URL")
    data_key: str | None = Field(None, alias="VIGIL_DATA_KEY")
    command: str = Field("/concern", alias="VIGIL_COMMAND")
    alert_channel: str | None = Field(None, alias="VIGIL_ALERT_CHANNEL")
    restricted_categories: str = Field(
        "Safeguarding;Child protection", alias="VIGIL_RESTRICTED_CATEGORIES"
    )
    categories: str | None = Field(None, alias="VIGIL_CATEGORIES")
    config_path: str = Field(DEFAULT_CONFIG, alias="VIGIL_CONFIG")
    # One school's file per Slack team: <TEAM_ID>.toml (`store.schools`); unset: none.
    schools_dir: str = Field("", alias="VIGIL_SCHOOLS_DIR")
    log_level: str = Field("INFO", alias="VIGIL_LOG_LEVEL")
    log_format: str = Field("console", alias="VIGIL_LOG_FORMAT")
    slack_client_id: str | None = Field(None, alias="SLACK_CLIENT_ID")
    slack_client_secret: str | None = Field(None, alias="SLACK_CLIENT_SECRET")
    slack_state_secret: str | None = Field(None, alias="SLACK_STATE_SECRET")
    session_idle_minutes: Annotated[float, Field(gt=0)] = Field(
        10.0, alias="VIGIL_SESSION_IDLE_MINUTES"
    )
    session_max_hours: Annotated[float, Field(gt=0)] = Field(8.0, alias="VIGIL_SESSION_MAX_HOURS")
    local_dev: bool = Field(False, alias="VIGIL_LOCAL_DEV")
    slack_timeout: Annotated[float, Field(gt=0)] = Field(10.0, alias="VIGIL_SLACK_TIMEOUT")
    shutdown_timeout: Annotated[float, Field(ge=0)] = Field(20.0, alias="VIGIL_SHUTDOWN_TIMEOUT")
    socket_watchdog_seconds: Annotated[float, Field(gt=0)] = Field(
        10.0, alias="VIGIL_SOCKET_WATCHDOG_SECONDS"
    )
    outbox_lease: Annotated[float, Field(gt=0)] = Field(60.0, alias="VIGIL_OUTBOX_LEASE_SECONDS")
    trusted_proxies_text: str = Field("", alias="VIGIL_TRUSTED_PROXIES")
    files_url: str = Field("", alias="VIGIL_FILES_URL")
    s3_endpoint_url: str = Field("", alias="VIGIL_S3_ENDPOINT_URL")  # not AWS: MinIO, ...
    s3_region: str = Field("", alias="VIGIL_S3_REGION")  # else AWS_REGION / ~/.aws/config
    max_upload_mb: Annotated[float, Field(gt=0, le=1024)] = Field(25.0, alias="VIGIL_MAX_UPLOAD_MB")

    @field_validator("files_url")
    @classmethod
    def _files_url(cls, value: str) -> str:
        return check_files_url(value.strip())  # raises ValueError with a clear message

    @property
    def max_upload_bytes(self) -> int:
        """The largest file accepted as an attachment (VIGIL_MAX_UPLOAD_MB)."""
        return int(self.max_upload_mb * 1024 * 1024)

    workers: Annotated[int, Field(ge=1, le=16)] = Field(1, alias="VIGIL_WORKERS")
    db_pool_size: Annotated[int | None, Field(ge=1, le=100)] = Field(
        None, alias="VIGIL_DB_POOL_SIZE"
    )
    outbox_delivery: str = Field("auto", alias="VIGIL_OUTBOX_DELIVERY")

    @field_validator("outbox_delivery")
    @classmethod
    def _outbox_delivery(cls, value: str) -> str:
        if value not in {"auto", "inline", "process"}:
            raise ValueError("must be auto, inline or process")
        return value

    @property
    def pool_size(self) -> int:
        """Each process's pool (it may open as many again under load): VIGIL_DB_POOL_SIZE,
        else 10 for up to 3 processes and less beyond, so that every process's connections
        together (2 × pool + 2 of its own: the scheduler's lock and the outbox's LISTEN)
        stay near 70, below PostgreSQL's default max_connections (100)."""
        if self.db_pool_size is not None:
            return self.db_pool_size
        return max(1, min(10, 33 // self.workers - 1))

    @property
    def delivery_process(self) -> bool:
        """Whether the outbox is delivered by a process of its own (out of the request
        loop): VIGIL_OUTBOX_DELIVERY=process, or auto with several workers (PostgreSQL)."""
        if self.outbox_delivery == "auto":
            return self.workers > 1 and self.database_url.startswith("postgresql")
        return self.outbox_delivery == "process"

    anonymous_rate: Annotated[float, Field(gt=0)] = Field(2.0, alias="VIGIL_ANONYMOUS_RATE")
    anonymous_burst: Annotated[int, Field(ge=1)] = Field(60, alias="VIGIL_ANONYMOUS_BURST")

    @field_validator("trusted_proxies_text")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        parse_trusted_proxies(value)  # raises ValueError naming the bad entry
        return value

    @property
    def trusted_proxies(self) -> tuple[Network, ...]:
        """The reverse proxies whose X-Forwarded-For names the client (VIGIL_TRUSTED_PROXIES)."""
        return parse_trusted_proxies(self.trusted_proxies_text)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got {value.split('://')[0]}://…)"
            )
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://vigil.school.example")
        return value.rstrip("/")

    @field_validator("command")
    @classmethod
    def _command(cls, value: str) -> str:
        if not value.startswith("/") or " " in value or len(value) < 2:
            raise ValueError("must be a slash command such as /concern")
        return value

    @field_validator("slack_bot_token", "slack_app_token")
    @classmethod
    def _token(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind, prefix = TOKEN_KINDS[info.field_name or ""]
        if value and not value.startswith(prefix):
            raise ValueError(f"must be {kind} starting with {prefix}")
        return value or None

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in {"console", "json"}:
            raise ValueError("must be console or json")
        return value

    @model_validator(mode="after")
    def _lease_outlasts_a_call(self) -> Settings:
        # A lease shorter than a Slack call could pass a message to a second process
        # while the first is still sending it.
        if self.outbox_lease <= self.slack_timeout:
            raise ValueError(
                f"VIGIL_OUTBOX_LEASE_SECONDS ({self.outbox_lease:g}) must be longer than "
                f"VIGIL_SLACK_TIMEOUT ({self.slack_timeout:g})"
            )
        return self

    @field_validator("data_key")
    @classmethod
    def _data_key(cls, value: str | None) -> str | None:
        if not value:
            return None
        parse_keys(value)  # raises ValueError with a clear message
        return value

    @property
    def slack_web_url(self) -> str:
        """Slack's web address (for Sign in with Slack), from the API URL: …/api/ → …/."""
        return self.slack_api_url.removesuffix("api/")

    @property
    def web_view_over_plain_http(self) -> bool:
        """The web view's public address is plain http:// on another machine, and not local
        development: browsers drop its Secure cookies, and sign-in fails as expired.

        Browsers treat http://127.0.0.1 and http://localhost as secure, so those work.
        """
        if self.local_dev or not self.public_url.startswith("http://"):
            return False
        host = urlsplit(self.public_url).hostname or ""
        return host not in {"localhost", "127.0.0.1", "::1"} and not host.endswith(".localhost")

    @property
    def oauth_install(self) -> bool:
        """OAuth mode (many workspaces, each installed from "Add to Slack"): no
        SLACK_BOT_TOKEN, and the app's client id, client secret and state secret set."""
        return self.slack_bot_token is None and bool(
            self.slack_client_id and self.slack_client_secret and self.slack_state_secret
        )

    @property
    def socket_mode(self) -> bool:
        """Socket Mode is used whenever an app-level token is configured."""
        return self.slack_app_token is not None

    def require(self, *names: str) -> None:
        """Fail with one clear message naming every missing variable among `names`."""
        missing = [type(self).model_fields[name].alias for name in names if not getattr(self, name)]
        if missing:
            raise ConfigError(
                "Missing configuration: "
                + ", ".join(missing)
                + ". Set them in the environment or in .env (for a new installation, `vigil init` "
                "writes one)."
            )


def load_settings(env_file: str | Path | None = ".env", **overrides: object) -> Settings:
    """Read and validate the configuration, turning validation errors into a ConfigError."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if not error["loc"]:  # a rule between settings: the message names them
                lines.append(f"  {message}")
                continue
            field = error["loc"][0]
            info = Settings.model_fields.get(str(field))
            name = info.alias if info and info.alias else field
            lines.append(f"  {name}: {message}")
        raise ConfigError("Invalid configuration:\n" + "\n".join(lines)) from None


def env_names() -> list[str]:
    """Every environment variable Vigil reads (for documentation checks)."""
    return [info.alias for info in Settings.model_fields.values() if info.alias]


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Write a `.env` file readable only by its owner."""
    text = "".join(f"{key}={value}\n" for key, value in values.items())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
