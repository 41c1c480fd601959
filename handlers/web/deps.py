"""What the web pages need from the assembled application."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from store.catalogue import Catalogue
from store.client_address import Network
from store.crypto import Cipher
from store.db import SessionFactory
from store.documents.storage import DatabaseStore, FileStore
from store.flows import Setup
from store.models import utcnow
from store.noise import AnonymousNoise
from store.ratelimit import RateLimiter
from store.school_config import SchoolConfig
from store.schools import School, SchoolDirectory, single


@dataclass(frozen=True)
class WebDeps:
    factory: SessionFactory
    cipher: Cipher
    catalogue: Catalogue
    public_url: str
    idle: dt.timedelta
    max_age: dt.timedelta
    local_dev: bool
    slack_web_url: str  # e.g. https://slack.com/ (authorize and keys live under it)
    oidc_client: AsyncWebClient  # no token: openid.connect.* authenticate otherwise
    client_id: str | None
    client_secret: str | None
    notify_outbox: Callable[[], None]
    school: SchoolConfig
    clock: Callable[[], dt.datetime] = utcnow
    files: FileStore = field(default_factory=DatabaseStore)  # VIGIL_FILES_URL
    max_upload_bytes: int = 25 * 1024 * 1024  # VIGIL_MAX_UPLOAD_MB
    trusted_proxies: tuple[Network, ...] = ()  # whose X-Forwarded-For is believed
    plain_http: bool = False  # served over plain HTTP to other machines (sign-in fails)
    # Anonymous requests: limited per client address, refusals counted, not audited singly.
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(rate=2.0, burst=60))
    noise: AnonymousNoise = field(default_factory=AnonymousNoise)
    # Each school's configuration (`store.schools`); without one, every school has
    # `school` and `catalogue` (the deployment's `vigil.toml`).
    schools: SchoolDirectory | None = None

    def __post_init__(self) -> None:
        if self.schools is None:
            object.__setattr__(self, "schools", single(self.school, self.catalogue))

    def school_of(self, workspace_id: int) -> School:
        """The school's configuration and catalogue (`store.schools.SchoolDirectory`)."""
        assert self.schools is not None
        return self.schools.school(workspace_id)

    def setup_for(self, workspace_id: int) -> Setup:
        """What the store's flows need of the deployment, for this school."""
        school = self.school_of(workspace_id)
        return Setup(self.cipher, school.catalogue, school.config, self.public_url)

    @property
    def authorize_url(self) -> str:
        return f"{self.slack_web_url}openid/connect/authorize"

    @property
    def jwks_url(self) -> str:
        return f"{self.slack_web_url}openid/connect/keys"

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}/auth/slack/callback"


DEPS = web.AppKey("deps", WebDeps)
COMMAND = web.AppKey("command", str)
