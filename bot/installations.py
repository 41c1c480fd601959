"""OAuth mode's assembly: Bolt's installation and state stores over Vigil's database.

`InstallationStore` is slack_sdk's `AsyncInstallationStore` over `store.installations`
(bot tokens sealed with the data key, bound to their row); `StateStore` is its
`AsyncOAuthStateStore`, each state a keyed hash under `SLACK_STATE_SECRET`, used once and
expiring. `oauth_flow` builds Bolt's `AsyncOAuthFlow` for `/slack/install` and
`/slack/oauth_redirect`; its callbacks answer plain outcomes that
`handlers.web.install` renders. `installation_authorize` answers Bolt's "which token for
this request" from the store, once per request, without an `auth.test` per request.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from store import installations
from store.crypto import Cipher
from store.db import SessionFactory, transaction

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# What the app asks for at install (the same as manifest.yml's bot scopes).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "im:write",
    "im:history",
    "groups:history",
    "users:read",
    "users:read.email",
    "team:read",
)
_quiet = logging.getLogger("vigil.oauth")  # Bolt's own messages; bot.logs keeps them short


class InstallationStore(AsyncInstallationStore):
    """slack_sdk's installation store, in Vigil's database (`store.installations`)."""

    def __init__(
        self,
        factory: SessionFactory,
        cipher: Cipher,
        *,
        clock: Callable[[], dt.datetime],
        on_saved: Callable[[dict[int, str]], None] = lambda _served: None,
    ) -> None:
        self._factory = factory
        self._cipher = cipher
        self._clock = clock
        self._on_saved = on_saved

    @property
    def logger(self) -> logging.Logger:
        return _quiet

    async def async_save(self, installation: Installation) -> None:
        if not installation.bot_token:
            raise ValueError("Vigil installs only with a bot token")
        async with transaction(self._factory) as session:
            served = await installations.save(
                session,
                self._cipher,
                enterprise_id=installation.enterprise_id,
                team_id=installation.team_id,
                is_enterprise_install=bool(installation.is_enterprise_install),
                name=(
                    installation.enterprise_name
                    if installation.is_enterprise_install
                    else installation.team_name
                )
                or "",
                app_id=installation.app_id,
                bot_id=installation.bot_id,
                bot_user_id=installation.bot_user_id,
                bot_scopes=",".join(installation.bot_scopes or ()),
                installer_user_id=installation.user_id,
                bot_token=installation.bot_token,
                now=self._clock(),
            )
        self._on_saved(served)

    async def async_save_bot(self, bot: Bot) -> None:
        raise NotImplementedError("installations are saved whole")

    async def _find(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> installations.Installed | None:
        async with self._factory() as session:
            return await installations.find(
                session,
                self._cipher,
                enterprise_id=enterprise_id,
                team_id=team_id,
                is_enterprise_install=is_enterprise_install,
            )

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        found = await self._find(enterprise_id, team_id, is_enterprise_install)
        if found is None:
            return None
        return Bot(
            app_id=found.app_id,
            enterprise_id=found.enterprise_id,
            team_id=found.team_id,
            bot_token=found.bot_token,
            bot_id=found.bot_id or "",
            bot_user_id=found.bot_user_id or "",
            bot_scopes=found.bot_scopes,
            is_enterprise_install=found.is_enterprise_install,
            installed_at=found.installed_at.timestamp(),
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        found = await self._find(enterprise_id, team_id, is_enterprise_install)
        if found is None or (user_id is not None and user_id != found.installer_user_id):
            return None
        return Installation(
            app_id=found.app_id,
            enterprise_id=found.enterprise_id,
            team_id=found.team_id,
            bot_token=found.bot_token,
            bot_id=found.bot_id,
            bot_user_id=found.bot_user_id,
            bot_scopes=found.bot_scopes,
            user_id=found.installer_user_id or "",
            is_enterprise_install=found.is_enterprise_install,
            installed_at=found.installed_at.timestamp(),
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:  # Vigil keeps no user tokens: only the whole install goes
            await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        async with transaction(self._factory) as session:
            await installations.uninstall(
                session,
                enterprise_id=enterprise_id,
                team_id=team_id,
                is_enterprise_install=team_id is None,
                now=self._clock(),
            )


class StateStore(AsyncOAuthStateStore):
    """OAuth states in the database: a keyed hash each, used once, expiring."""

    def __init__(
        self, factory: SessionFactory, *, secret: str, clock: Callable[[], dt.datetime]
    ) -> None:
        self._factory = factory
        self._secret = secret
        self._clock = clock

    @property
    def logger(self) -> logging.Logger:
        return _quiet

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        async with transaction(self._factory) as session:
            return await installations.issue_state(session, secret=self._secret, now=self._clock())

    async def async_consume(self, state: str) -> bool:
        async with transaction(self._factory) as session:
            return await installations.consume_state(
                session, secret=self._secret, state=state, now=self._clock()
            )


async def _succeeded(args: AsyncSuccessArgs) -> BoltResponse:
    installed = args.installation
    name = installed.enterprise_name if installed.is_enterprise_install else installed.team_name
    return BoltResponse(status=200, body=name or "")


async def _failed(args: AsyncFailureArgs) -> BoltResponse:
    return BoltResponse(status=args.suggested_status_code, body=args.reason)


def oauth_flow(
    *,
    client: AsyncWebClient,
    client_id: str,
    client_secret: str,
    public_url: str,
    slack_web_url: str,
    installation_store: InstallationStore,
    state_store: StateStore,
) -> AsyncOAuthFlow:
    """Bolt's OAuth flow for "Add to Slack", pointed at `slack_web_url` (Slack, or the
    stand-in), its outcomes answered plainly for the web view to render."""
    return AsyncOAuthFlow(
        client=client,
        logger=_quiet,
        settings=AsyncOAuthSettings(
            client_id=client_id,
            client_secret=client_secret,
            scopes=list(BOT_SCOPES),
            user_scopes=[],
            redirect_uri=f"{public_url}{REDIRECT_PATH}",
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            authorization_url=f"{slack_web_url}oauth/v2/authorize",
            installation_store=installation_store,
            state_store=state_store,
            state_expiration_seconds=int(installations.STATE_TTL.total_seconds()),
            callback_options=AsyncCallbackOptions(success=_succeeded, failure=_failed),
            logger=_quiet,
        ),
    )


def installation_authorize(
    installation_store: InstallationStore, *, client_id: str, client_secret: str
) -> AsyncInstallationStoreAuthorize:
    """Bolt's authorize over the store: the installation is read for every request (an
    uninstalled workspace is refused at once), `auth.test` asked once per token."""
    return AsyncInstallationStoreAuthorize(
        logger=_quiet,
        installation_store=installation_store,
        client_id=client_id,
        client_secret=client_secret,
        bot_only=True,
        cache_enabled=True,
    )
