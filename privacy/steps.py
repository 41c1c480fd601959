"""How the drill takes each step: as a member of staff does it, checking every answer.

:class:`Steps` holds the drill's state (the running harness, the made-up data, every
answer Vigil gave Slack, the flows run so far) and the steps the flows are made of:
/concern with the pupil typeahead and Submit, signing in to the web view, moving the
server's clock, waiting for the outbox. Every unexpected answer stops the drill with a
:class:`~privacy.report.PrivacyCheckError` naming the step.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.concern_modal import ADULT_SEARCH, PUPIL_SEARCH
from privacy.matching import ADULT_TYPEAHEAD, TYPEAHEAD
from privacy.report import PrivacyCheckError
from privacy.seeds import Seeds
from privacy.sources import SlackAnswer
from store import pupils
from store.models import Staff
from testing.harness import Harness
from testing.school import DemoPupil
from testing.simulator import SlackResponse
from testing.webclient import WebUser


def at(day: dt.date, hour: int, minute: int, zone: ZoneInfo) -> dt.datetime:
    """`hour:minute` on `day` in `zone`, in UTC."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone).astimezone(dt.UTC)


def form_time(day: dt.date, hour: int, minute: int = 0) -> str:
    """A time as a `datetime-local` form field holds it."""
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}"


def button_value(message: Mapping[str, Any], action_id: str) -> str:
    """The value of the button `action_id` in a Slack message."""
    for block in message.get("blocks") or []:
        for element in block.get("elements") or [block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return str(element.get("value", ""))
    raise PrivacyCheckError(f"no {action_id} button in the message")


def expect(step: str, status: int, *wanted: int) -> None:
    """Stop the drill unless `step` got one of the `wanted` HTTP statuses."""
    if status not in wanted:
        raise PrivacyCheckError(f"the drill's step '{step}' got HTTP {status}")


@contextlib.contextmanager
def database_fails_once(engine: AsyncEngine, marker: str) -> Iterator[None]:
    """The next SQL statement containing `marker` fails as if the database had gone away."""
    armed = [True]
    outage = engine.dialect.loaded_dbapi.OperationalError

    def fail(*args: Any) -> None:
        statement = args[2]
        if armed and marker in statement:
            armed.clear()
            raise outage("the privacy drill's simulated outage")

    event.listen(engine.sync_engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", fail)
    if armed:
        raise PrivacyCheckError(f"the drill's simulated outage never happened ({marker!r})")


async def download(user: WebUser, path: str) -> int:
    """Download a file (a CSV, a PDF) as a browser does; its HTTP status."""
    async with user.http.get(f"{user.base_url}{path}") as response:
        await response.read()
        return response.status


class Steps:
    """The drill's state and the steps its flows are made of."""

    def __init__(self, harness: Harness, seeds: Seeds, directory: Path) -> None:
        self.harness = harness
        self.seeds = seeds
        self.directory = directory
        self.answers: list[SlackAnswer] = []
        self.flows: list[str] = []
        self.totp: dict[str, str] = {}
        self.working = harness.server.school.working_time

    def _answered(self, kind: str, response: SlackResponse, step: str) -> SlackResponse:
        expect(step, response.status, 200)
        self.answers.append(SlackAnswer(kind, response.body))
        return response

    def _move_clock(self, instant: dt.datetime) -> None:
        """Set the server's clock (forward only, so queued messages stay due)."""
        self.harness.clock_offset = max(
            self.harness.clock_offset, instant - dt.datetime.now(dt.UTC)
        )

    def _working_monday(self) -> dt.date:
        """A Monday at least two days away whose Monday to Thursday are all working days."""
        zone = self.working.zone
        day = dt.datetime.now(zone).date() + dt.timedelta(days=2)
        while day.weekday() != 0 or not all(
            self.working.is_working_day(day + dt.timedelta(days=n)) for n in range(4)
        ):
            day += dt.timedelta(days=1)
        return day

    async def _staff_id(self, slack_id: str) -> int:
        async with self.harness.server.factory() as db:
            found = await db.scalar(select(Staff.id).where(Staff.slack_user_id == slack_id))
        if found is None:
            raise PrivacyCheckError(f"the drill's staff member {slack_id} was not imported")
        return int(found)

    async def _pupil_id(self, pupil: DemoPupil) -> int:
        async with self.harness.server.factory() as db:
            found = await pupils.by_upn(
                db,
                workspace_id=self.harness.workspace_id,
                cipher=self.harness.server.cipher,
                upn=pupil.upn,
            )
        assert found is not None
        return int(found.id)

    async def _settle(self) -> None:
        await self.harness.server.tasks.idle()
        await self.harness.delivered()

    @contextlib.asynccontextmanager
    async def _signed_in(self, user_id: str) -> AsyncIterator[WebUser]:
        """Signed in with the one-time link from `/concern login` and a TOTP code."""
        user = await self.harness.sign_in(user_id, secret=self.totp.get(user_id))
        if user.secret:
            self.totp[user_id] = user.secret
        try:
            yield user
            status, _ = await user.post("/signout")
            expect("sign out", status, 200)
        finally:
            await user.close()

    async def _typeahead(self, user_id: str, view: dict[str, Any], query: str, block: str) -> Any:
        response = await self.harness.slack.block_suggestion(
            user_id, view=view, action_id=PUPIL_SEARCH, block_id=block, value=query
        )
        self._answered(TYPEAHEAD, response, "pupil typeahead")
        options = (response.json or {}).get("options") or []
        if not options:
            raise PrivacyCheckError("the pupil typeahead found none of the drill's pupils")
        return options[0]

    async def _adult_typeahead(self, user_id: str, view: dict[str, Any], typed: str) -> Any:
        """Type a name into the allegation's adult picker; take "someone not on the list"."""
        response = await self.harness.slack.block_suggestion(
            user_id, view=view, action_id=ADULT_SEARCH, block_id="adult", value=typed
        )
        self._answered(ADULT_TYPEAHEAD, response, "adult typeahead")
        options = (response.json or {}).get("options") or []
        typed_options = [o for o in options if str(o.get("value", "")).startswith("name:")]
        if not typed_options:
            raise PrivacyCheckError("the adult typeahead offered no typed name")
        return typed_options[0]

    async def _submit(
        self,
        user_id: str,
        *,
        query: str,
        values: dict[str, Any],
        linked: Sequence[str] = (),
        adult_typed: str | None = None,
    ) -> SlackResponse:
        """/concern, the typeahead, then Submit: as a member of staff does it (with
        `adult_typed`, an allegation about an adult whose name is typed)."""
        view = await self.harness.open_concern(user_id)
        values = {"pupil": await self._typeahead(user_id, view, query, "pupil"), **values}
        if adult_typed is not None:
            values["adult"] = await self._adult_typeahead(user_id, view, adult_typed)
        if linked:
            values["linked_pupils"] = [
                await self._typeahead(user_id, view, q, "linked_pupils") for q in linked
            ]
        response = await self.harness.slack.view_submission(user_id, view=view, values=values)
        return self._answered("modal submission", response, "submit a concern")
