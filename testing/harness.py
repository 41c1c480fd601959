"""Vigil wired to the Slack stand-in: used by the tests, `vigil demo` and the privacy drill.

It starts the stand-in, then a real `VigilServer` on 127.0.0.1 pointed at it, and drives
the server with correctly signed Slack requests through `SlackSimulator`, exactly as
Slack would. Nothing here talks to the real Slack.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.app import VigilServer
from bot.settings import Settings, load_settings
from bot.slack_lookup import make_slack_lookup
from handlers.concern_modal import ADULT_SEARCH, PUPIL_SEARCH
from store import outbox, roster
from store.crypto import generate_key
from testing.school import (
    STAFF,
    TEAM_ID,
    TEAM_NAME,
    DemoPupil,
    DemoStaff,
    fictional_pupils,
    pupils_csv,
    staff_csv,
)
from testing.simulator import SlackResponse, SlackSimulator
from testing.standin import SlackStandIn
from testing.webclient import WebUser

SIGNING_SECRET = "standin-signing-secret"


@dataclass
class Harness:
    """A running stand-in, server and simulator sharing one database."""

    database_url: str
    overrides: dict[str, Any] = field(default_factory=dict)
    worker_options: dict[str, Any] = field(default_factory=dict)
    staff: Iterable[DemoStaff] = STAFF
    data_key: str = field(default_factory=generate_key)
    clock_offset: dt.timedelta = dt.timedelta(0)
    standin: SlackStandIn = field(init=False)
    server: VigilServer = field(init=False)
    slack: SlackSimulator = field(init=False)
    settings: Settings = field(init=False)

    async def start(self) -> Harness:
        self.standin = SlackStandIn(team_id=TEAM_ID, team_name=TEAM_NAME)
        await self.standin.start()
        for person in self.staff:
            self.standin.add_user(person.slack_user_id, email=person.email, name=person.name)
        values: dict[str, Any] = {
            "VIGIL_DATABASE_URL": self.database_url,
            "SLACK_BOT_TOKEN": self.standin.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "VIGIL_SLACK_API_URL": self.standin.api_url,
            "VIGIL_PORT": 0,
            "VIGIL_PUBLIC_URL": "http://127.0.0.1:3000",
            "VIGIL_DATA_KEY": self.data_key,
            "VIGIL_SHUTDOWN_TIMEOUT": 5,
            "VIGIL_LOCAL_DEV": True,
            "SLACK_CLIENT_ID": self.standin.client_id,
            "SLACK_CLIENT_SECRET": self.standin.client_secret,
        }
        values.update(self.overrides)
        self.settings = load_settings(env_file=None, **values)
        await self._start_server()
        return self

    async def _start_server(self) -> None:
        self.server = VigilServer(
            self.settings, worker_options=self.worker_options or None, clock=self.now
        )
        await self.server.start()
        self.slack = SlackSimulator(
            app_url=f"{self.server.url}/slack/events",
            signing_secret=SIGNING_SECRET,
            standin=self.standin,
            team_id=TEAM_ID,
        )

    async def restart(self, **worker_options: Any) -> None:
        """Stop the server gracefully and start a fresh one on the same database."""
        await self.slack.close()
        await self.server.stop()
        if worker_options:
            self.worker_options = worker_options
        await self._start_server()

    async def close(self) -> None:
        await self.slack.close()
        await self.server.stop()
        await self.standin.stop()

    async def __aenter__(self) -> Harness:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def now(self) -> dt.datetime:
        """The server's clock: real time plus `clock_offset` (tests move it forward)."""
        return dt.datetime.now(dt.UTC) + self.clock_offset

    @property
    def workspace_id(self) -> int:
        workspace_id = self.server.teams.cached(TEAM_ID)
        assert workspace_id is not None
        return workspace_id

    async def seed_school(self, directory: Path, *, pupils: int = 30) -> list[DemoPupil]:
        """Import the fictional school's rosters through the real importer."""
        staff_file, pupil_file = directory / "staff.csv", directory / "pupils.csv"
        roster_pupils = fictional_pupils(pupils)
        staff_file.write_text(staff_csv(tuple(self.staff)), encoding="utf-8")
        pupil_file.write_text(pupils_csv(roster_pupils), encoding="utf-8")
        lookup = make_slack_lookup(self.server.client)
        for report in (
            await roster.import_staff(
                self.server.factory,
                workspace_id=self.workspace_id,
                path=staff_file,
                lookup_slack_id=lookup,
            ),
            await roster.import_pupils(
                self.server.factory,
                workspace_id=self.workspace_id,
                path=pupil_file,
                cipher=self.server.cipher,
            ),
        ):
            if report.errors or report.warnings:
                raise AssertionError(report.summary())
        return roster_pupils

    async def delivered(self, *, timeout: float = 10.0) -> None:
        """Wait until the outbox has nothing left to send (the worker keeps running)."""
        deadline = time.monotonic() + timeout
        while True:
            async with self.server.factory() as session:
                pending = await outbox.pending_count(session)
            if pending == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{pending} outbox messages still pending after {timeout}s")
            self.server.worker.notify()
            await asyncio.sleep(0.02)

    # -- the web view --------------------------------------------------------------------

    async def login_link(self, user_id: str) -> str:
        """Type `/concern login` in Slack; the one-time link Vigil answers with."""
        response = await self.slack.slash_command(user_id, "login", command=self.settings.command)
        found = re.search(r"(https?://\S+/login/\S+)", response.body)
        if response.status != 200 or not found:
            raise AssertionError(f"no sign-in link in {response.status} {response.body!r}")
        return found.group(1).replace(self.settings.public_url, self.server.url)

    async def sign_in(self, user_id: str, *, secret: str | None = None) -> WebUser:
        """A person signed in to the web view through the one-time link and a TOTP code.

        `secret` is their authenticator key if they enrolled before; otherwise they enrol.
        The clock moves on 30 s first, so the code is never a replay of an earlier one.
        """
        self.clock_offset += dt.timedelta(seconds=30)
        user = WebUser(self.server.url, self.now)
        await user.use_login_link(await self.login_link(user_id))
        status, page = await user.pass_totp(secret)
        if status != 200 or "/alerts" not in user.last_url:
            await user.close()
            raise AssertionError(f"sign-in failed: {status} {user.last_url}")
        return user

    # -- what a member of staff does --------------------------------------------------

    async def open_concern(self, user_id: str) -> dict[str, Any]:
        """Type /concern; the modal as Slack holds it once Vigil has tailored it."""
        known = {id(c) for c in self.standin.calls_to("views.open")}
        response = await self.slack.slash_command(user_id, command=self.settings.command)
        if response.status != 200:
            raise AssertionError(f"/concern answered {response.status}: {response.body}")
        # This user's modal: the views.open Vigil made with the trigger id Slack gave them.
        deadline = time.monotonic() + 5
        while True:
            mine = [
                c
                for c in self.standin.calls_to("views.open", ok_only=True)
                if id(c) not in known
                and self.standin.view_users.get(c.response["view"]["id"]) == user_id  # type: ignore[index]
            ]
            if mine or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        if not mine:
            raise AssertionError(f"no modal opened for {user_id}")
        await self.server.tasks.idle()
        return self.standin.views[mine[0].response["view"]["id"]]  # type: ignore[index]

    async def pick_pupil(
        self, user_id: str, view: dict[str, Any], query: str, *, block_id: str = "pupil"
    ) -> dict[str, Any]:
        """Type into a pupil typeahead and take the first option."""
        response = await self.slack.block_suggestion(
            user_id, view=view, action_id=PUPIL_SEARCH, block_id=block_id, value=query
        )
        options = (response.json or {}).get("options") or []
        if not options:
            raise AssertionError(f"no pupil matches {query!r}")
        return options[0]

    async def pick_adult(
        self, user_id: str, view: dict[str, Any], query: str, *, not_listed: bool = False
    ) -> dict[str, Any]:
        """Type into the adult typeahead; take the first member of staff offered, or (with
        `not_listed`) the "someone not on the list" option for what was typed."""
        response = await self.slack.block_suggestion(
            user_id, view=view, action_id=ADULT_SEARCH, block_id="adult", value=query
        )
        options = (response.json or {}).get("options") or []
        if not_listed:
            options = [o for o in options if str(o.get("value", "")).startswith("name:")]
        else:
            options = [o for o in options if str(o.get("value", "")).startswith("staff:")]
        if not options:
            raise AssertionError(f"no adult option for {query!r}")
        return options[0]

    async def report_concern(
        self,
        user_id: str,
        *,
        pupil_query: str,
        narrative: str,
        categories: list[str],
        linked_queries: Iterable[str] = (),
        also_alert: Iterable[str] = (),
        agencies: Iterable[str] = (),
        parents_contacted: str = "yes",
        parents_reason: str = "",
        happened_at: dt.datetime | None = None,
        about_adult: str | None = None,
        adult_query: str | None = None,
        adult_not_listed: bool = False,
        urgent: bool = False,
    ) -> SlackResponse:
        """The whole flow, as a teacher does it: /concern, typeahead, fill in, submit.
        An allegation: `about_adult` ("staff", "volunteer", "visitor") and the adult, the
        first member of staff the typeahead offers for `adult_query` (or, with
        `adult_not_listed`, that text as a name typed for someone not on the list).
        `urgent` ticks "A child may be at immediate risk"."""
        view = await self.open_concern(user_id)
        values: dict[str, Any] = {
            "pupil": await self.pick_pupil(user_id, view, pupil_query),
            "narrative": narrative,
            "categories": categories,
            "parents_contacted": parents_contacted,
        }
        linked = [
            await self.pick_pupil(user_id, view, q, block_id="linked_pupils")
            for q in linked_queries
        ]
        if linked:
            values["linked_pupils"] = linked
        if also_alert:
            values["also_alert"] = list(also_alert)
        if agencies:
            values["agencies"] = list(agencies)
        if parents_reason:
            values["parents_reason"] = parents_reason
        if happened_at is not None:
            values["happened_at"] = int(happened_at.timestamp())
        if about_adult is not None:
            values["about_adult"] = about_adult
        if adult_query is not None:
            values["adult"] = await self.pick_adult(
                user_id, view, adult_query, not_listed=adult_not_listed
            )
        if urgent:
            values["urgent"] = ["urgent"]
        return await self.slack.view_submission(user_id, view=view, values=values)
