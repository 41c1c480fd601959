"""The stand-in itself: every API family on one server, and running one from the command line.

:class:`SlackStandIn` is composed of one class per Slack API family, all sharing the
stand-in's state (see the package docstring for what each serves).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Iterable

from testing.standin.chat import ChatApi
from testing.standin.install import InstallApi
from testing.standin.socket_mode import SocketModeApi
from testing.standin.views import ViewsApi


class SlackStandIn(ChatApi, ViewsApi, InstallApi, SocketModeApi):
    """A Slack Web API and Socket Mode stand-in served on 127.0.0.1.

    Use as an async context manager, or call :meth:`start` / :meth:`stop`::

        async with SlackStandIn() as slack:
            slack.add_user("U01", email="teacher@school.example", name="Ms Teacher")
            client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
            await client.chat_postMessage(channel="U01", text="hello")
            assert slack.messages_for_user("U01")[0]["text"] == "hello"

    For Sign in with Slack, point the app's authorize URL at :attr:`authorize_url`,
    its JWKS at :attr:`jwks_url` and its Web API client at :attr:`api_url`, then
    choose who "the browser" is signed in to Slack as with :meth:`oidc_sign_in_as`.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0VIGIL",
        team_name: str = "Vigil Demo School",
        bot_token: str = "xoxb-standin",
        app_token: str = "xapp-standin",
        bot_user_id: str = "U0VIGILBOT",
        trigger_ttl: float | None = None,
        client_id: str = "1234.5678",
        client_secret: str = "standin-client-secret",
    ) -> None:
        """Create a stopped stand-in.

        ``trigger_ttl`` (seconds) makes trigger ids from :meth:`register_trigger`
        expire like Slack's (3 s in production); None means they never expire.
        ``client_id`` / ``client_secret`` are the app's OAuth credentials for
        Sign in with Slack. A fresh 2048-bit RSA key signs the id_tokens; its
        key id is :attr:`kid` (the RFC 7638 thumbprint, as Slack's kids are).
        """
        super().__init__(
            team_id=team_id,
            team_name=team_name,
            bot_token=bot_token,
            app_token=app_token,
            bot_user_id=bot_user_id,
            trigger_ttl=trigger_ttl,
            client_id=client_id,
            client_secret=client_secret,
        )

    async def __aenter__(self) -> SlackStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def run_standin(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    standin: SlackStandIn | None = None,
    users: Iterable[tuple[str, str, str]] = (),
    on_ready: Callable[[SlackStandIn], None] | None = None,
) -> None:
    """Serve a stand-in until cancelled.

    ``users`` are ``(user_id, email, name)`` triples to add; ``on_ready`` is
    called once it is listening (e.g. to print :attr:`SlackStandIn.api_url`).
    """
    standin = standin or SlackStandIn()
    for user_id, email, name in users:
        standin.add_user(user_id, email=email, name=name)
    await standin.start(host, port)
    try:
        if on_ready is not None:
            on_ready(standin)
        await asyncio.Event().wait()
    finally:
        await standin.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m testing.standin --port 8765``: serve a stand-in until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m testing.standin", description="Serve a local Slack Web API stand-in."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    def ready(standin: SlackStandIn) -> None:
        print(f"Slack stand-in: {standin.api_url} (bot token {standin.bot_token})", flush=True)

    try:
        asyncio.run(run_standin(args.host, args.port, on_ready=ready))
    except KeyboardInterrupt:
        pass
