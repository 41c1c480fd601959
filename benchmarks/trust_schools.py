"""The trust day's deployment: one `vigil serve` in OAuth mode, a workspace per school.

Each of `--trust-schools` schools is its own Slack workspace in the stand-in, with its own
staff (Slack ids and emails unique to the school) and pupils. `vigil serve` runs without
`SLACK_BOT_TOKEN` (OAuth mode, `bot.installations`), and each school installs it through
the real flow: "Add to Slack" at `/slack/install`, the stand-in's authorize page, Vigil's
`/slack/oauth_redirect` exchanging the code (`oauth.v2.access`) for the school's own bot
token, sealed in `slack_installations`. Each school's staff are then imported with the
store's importer (`store.roster.import_staff`, linked to Slack through `users.lookupByEmail`
with the school's own token, as `vigil import staff --school` does) and its pupils
(`import_pupils`); concerns are seeded in every school (`benchmarks.seed`).

`cross_school_calls` is the trust day's isolation check: every DM (`chat.postMessage`)
Vigil sent went with the bot token of the recipient's own workspace.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from benchmarks.deployment import PUBLIC_URL
from benchmarks.load import BenchmarkError
from bot.slack_lookup import make_slack_lookup
from store import roster
from store.access import is_keyholder
from store.crypto import Cipher
from store.models import Workspace
from testing.school import (
    FORENAMES,
    STAFF,
    SURNAMES,
    DemoPupil,
    DemoStaff,
    fictional_pupils,
    pupils_csv,
    staff_csv,
)
from testing.standin import SlackStandIn
from testing.webclient import WebUser

STATE_SECRET = "trust-day-state-secret"  # SLACK_STATE_SECRET: OAuth mode needs one


@dataclass
class School:
    """One school of the trust: its workspace, its people, its pupils."""

    index: int
    team_id: str
    name: str
    staff: tuple[DemoStaff, ...]
    pupils: list[DemoPupil]
    workspace_id: int = 0

    @property
    def keyholders(self) -> list[str]:
        return [
            s.slack_user_id for s in self.staff if is_keyholder(r for r in s.roles.split(";") if r)
        ]

    @property
    def reporters(self) -> list[str]:
        """Who reports concerns in the arrivals: the invented teachers (else every teacher)."""
        invented = [s.slack_user_id for s in self.staff[len(STAFF) :]]
        return invented or [s.slack_user_id for s in self.staff if "teacher" in s.roles]


def team_id(index: int) -> str:
    return f"T0TRUST{index:03d}"


def school_staff(index: int, size: int) -> tuple[DemoStaff, ...]:
    """The demo school's nine (renamed for school `index`) and teachers up to `size`."""
    domain = f"school{index:03d}.example"
    own = tuple(
        DemoStaff(
            slack_user_id=f"U{index:03d}{s.slack_user_id[3:]}",
            email=f"{s.email.split('@')[0]}@{domain}",
            name=s.name,
            roles=s.roles,
            classes=s.classes,
        )
        for s in STAFF
    )
    invented = tuple(
        DemoStaff(
            slack_user_id=f"U{index:03d}BENCH{i:04d}",
            email=f"bench.{i:04d}@{domain}",
            name=f"{FORENAMES[i % len(FORENAMES)]} {SURNAMES[(7 * i) % len(SURNAMES)]}",
            roles="teacher",
        )
        for i in range(1, max(0, size - len(STAFF)) + 1)
    )
    return (*own, *invented)


def make_schools(count: int, *, staff: int, pupils: int) -> list[School]:
    return [
        School(
            index=i,
            team_id=team_id(i),
            name=f"Trust School {i:03d}",
            staff=school_staff(i, staff),
            pupils=fictional_pupils(pupils, seed=1000 + i),
        )
        for i in range(1, count + 1)
    ]


def add_to_standin(standin: SlackStandIn, schools: list[School]) -> None:
    """Each school a workspace of the stand-in, its staff members of it."""
    for school in schools:
        standin.add_team(school.team_id, school.name)
        for person in school.staff:
            standin.add_user(
                person.slack_user_id, email=person.email, name=person.name, team_id=school.team_id
            )


async def install(server_url: str, standin: SlackStandIn, school: School) -> None:
    """The school's DSL installs Vigil into its workspace: "Add to Slack" → Slack's
    authorize page (the stand-in) → Vigil's `/slack/oauth_redirect`."""
    standin.install_as(school.keyholders[0], school.team_id)
    async with WebUser(server_url, lambda: dt.datetime.now(dt.UTC)) as browser:
        status, page = await browser.get("/slack/install")
        link = re.search(r'href="([^"]*/oauth/v2/authorize[^"]*)"', page)
        if status != 200 or link is None:
            raise BenchmarkError(f"/slack/install answered {status} without Slack's link")
        async with browser.http.get(html.unescape(link.group(1)), allow_redirects=False) as back:
            location = back.headers.get("Location", "")
        if not location.startswith(f"{PUBLIC_URL}/slack/oauth_redirect?"):
            raise BenchmarkError(f"Slack's authorize page sent the browser to {location!r}")
        status, page = await browser.get(location.replace(PUBLIC_URL, server_url))
        if status != 200 or "Vigil is installed" not in page:
            raise BenchmarkError(f"installing {school.team_id}: {status} {page[:200]!r}")


async def import_roster(
    factory: Any, cipher: Cipher, standin: SlackStandIn, school: School, workdir: Path
) -> None:
    """The school's staff (linked with its own bot token) and pupils, as `vigil import
    staff|pupils --school` imports them."""
    async with factory() as session:
        workspace_id = await session.scalar(
            select(Workspace.id).where(Workspace.team_id == school.team_id)
        )
    if workspace_id is None:
        raise BenchmarkError(f"no workspace for {school.team_id} after its install")
    school.workspace_id = int(workspace_id)
    staff_file = workdir / f"{school.team_id}-staff.csv"
    pupil_file = workdir / f"{school.team_id}-pupils.csv"
    staff_file.write_text(staff_csv(school.staff), encoding="utf-8")
    pupil_file.write_text(pupils_csv(school.pupils), encoding="utf-8")
    client = AsyncWebClient(token=standin.token_of(school.team_id), base_url=standin.api_url)
    reports = (
        await roster.import_staff(
            factory,
            workspace_id=school.workspace_id,
            path=staff_file,
            lookup_slack_id=make_slack_lookup(client),
        ),
        await roster.import_pupils(
            factory, workspace_id=school.workspace_id, path=pupil_file, cipher=cipher
        ),
    )
    for report in reports:
        if report.errors:
            raise BenchmarkError(f"{school.team_id}: {report.summary()}")


async def install_all(
    server_url: str,
    standin: SlackStandIn,
    schools: list[School],
    *,
    factory: Any,
    cipher: Cipher,
    workdir: Path,
) -> None:
    """Install and import every school (a few at a time; the installs one after another,
    since the stand-in's authorize page consents as one chosen person)."""
    for school in schools:
        await install(server_url, standin, school)
    limit = asyncio.Semaphore(4)

    async def one(school: School) -> None:
        async with limit:
            await import_roster(factory, cipher, standin, school, workdir)

    await asyncio.gather(*(one(school) for school in schools))


def cross_school_calls(standin: SlackStandIn, *, since: int = 0) -> dict[str, int]:
    """Vigil's DMs (`chat.postMessage`, from call `since` on) by whether the token was the
    recipient's own workspace's: `own`, `other` (a cross-school DM), `unknown`."""
    team_of_token = {
        token: installation.team.team_id for token, installation in standin.installations.items()
    }
    member_of_dm = {standin.dm_channel_for(user): user for user in standin.users}
    counts = {"own": 0, "other": 0, "unknown": 0}
    for call in standin.calls[since:]:
        if call.method != "chat.postMessage" or not call.ok:
            continue
        channel = str(call.params.get("channel") or "")
        user = standin.users.get(member_of_dm.get(channel, channel))
        sent_as = team_of_token.get(call.token or "")
        if user is None or sent_as is None:
            counts["unknown"] += 1
        elif user["team_id"] == sent_as:
            counts["own"] += 1
        else:
            counts["other"] += 1
    return counts
