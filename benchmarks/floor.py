"""The framework floor: a bare Bolt app on the same machinery as Vigil.

Same `AsyncApp(process_before_response=True)`, same aiohttp adapter and server settings as
`bot.app.VigilServer`, same Slack stand-in, same signed requests from the same simulator
class. It does the least each request type allows: ack (and, for the slash command, one
`views.open` of a constant tiny view), so Vigil's figures can be read as a ratio to it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import MAX_BODY, SLACK_PATH
from bot.standin import SlackStandIn
from handlers.concern_modal import CALLBACK_ID, PUPIL_SEARCH

TINY_VIEW: dict[str, Any] = {
    "type": "modal",
    "title": {"type": "plain_text", "text": "Floor"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "ok"}}],
}
CONSTANT_OPTIONS: list[dict[str, Any]] = [
    {"text": {"type": "plain_text", "text": f"Pupil {i} · 4 · 4B"}, "value": str(i)}
    for i in range(1, 11)
]


class FloorServer:
    """A bare Bolt app served by aiohttp on 127.0.0.1, pointed at the stand-in."""

    def __init__(self, *, standin: SlackStandIn, signing_secret: str, command: str) -> None:
        self.bolt = AsyncApp(
            signing_secret=signing_secret,
            client=AsyncWebClient(token=standin.bot_token, base_url=standin.api_url),
            process_before_response=True,
        )

        @self.bolt.command(command)
        async def command_floor(
            ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
        ) -> None:
            await ack()
            await client.views_open(trigger_id=body["trigger_id"], view=TINY_VIEW)

        @self.bolt.options(PUPIL_SEARCH)
        async def options_floor(ack: AsyncAck) -> None:
            await ack(options=CONSTANT_OPTIONS)

        @self.bolt.view(CALLBACK_ID)
        async def submission_floor(ack: AsyncAck) -> None:
            await ack()

        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(SLACK_PATH, self._slack_events)
        self._app = app
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def _slack_events(self, request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await self.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SLACK_PATH}"
