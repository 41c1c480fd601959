"""Many schools on one deployment: each installs Vigil from "Add to Slack" (OAuth mode).

The server runs without SLACK_BOT_TOKEN. Two schools install it into their own
workspaces and an Enterprise Grid trust installs it org-wide (two of its schools), each
through the real redirects (Vigil → the stand-in's authorize page → Vigil), then Slack's
correctly signed requests come from each workspace. Each school's alerts go out with its
own bot token, to its own staff only; tokens are stored encrypted; an uninstall stops
service; a state used twice, forged or expired is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, text

from bot.installations import BOT_SCOPES
from bot.settings import load_settings
from bot.slack_lookup import make_slack_lookup
from store import outbox, roster
from store.db import transaction
from store.models import AuditEvent, OutboxMessage, SlackInstallation, Workspace
from testing.harness import SIGNING_SECRET, Harness
from testing.school import DemoStaff, fictional_pupils, pupils_csv, staff_csv
from testing.simulator import SlackSimulator
from testing.webclient import WebUser
from tests.support.school import FAST_WORKER, PUPIL_4B

ASHFORD, BRAMLEY = "T0ASHFORD1", "T0BRAMLEY1"
ORG, CEDAR, DALE = "E0OAKTRUST", "T0CEDAR001", "T0DALE0001"
# The simulators each test made, closed with its server.
SIMULATORS: dict[int, list[SlackSimulator]] = {}


def school_staff(letter: str, domain: str) -> tuple[DemoStaff, DemoStaff]:
    """A DSL and a 4B teacher, with Slack ids unique to the school."""
    return (
        DemoStaff(f"U0{letter}DSL00001", f"dsl@{domain}", f"{letter} Lead", "dsl;slt"),
        DemoStaff(
            f"U0{letter}TEACH0001", f"teacher@{domain}", f"{letter} Teacher", "teacher", "4B"
        ),
    )


STAFF = {
    ASHFORD: school_staff("A", "ashford.example"),
    BRAMLEY: school_staff("B", "bramley.example"),
    CEDAR: school_staff("C", "cedar.example"),
    DALE: school_staff("D", "dale.example"),
}


def dsl(team: str) -> str:
    return STAFF[team][0].slack_user_id


def teacher(team: str) -> str:
    return STAFF[team][1].slack_user_id


@contextlib.asynccontextmanager
async def trust(db_url: str) -> AsyncIterator[Harness]:
    """The server in OAuth mode, with four schools' workspaces known to the stand-in."""
    harness = Harness(
        database_url=db_url,
        staff=(),
        worker_options=dict(FAST_WORKER),
        overrides={"SLACK_BOT_TOKEN": None, "SLACK_STATE_SECRET": "state-secret-for-tests"},
    )
    async with harness:
        standin = harness.standin
        standin.add_team(ASHFORD, "Ashford Primary")
        standin.add_team(BRAMLEY, "Bramley Academy")
        standin.add_team(CEDAR, "Cedar School", enterprise_id=ORG, enterprise_name="Oak Trust")
        standin.add_team(DALE, "Dale School", enterprise_id=ORG, enterprise_name="Oak Trust")
        for team, people in STAFF.items():
            for person in people:
                standin.add_user(
                    person.slack_user_id, email=person.email, name=person.name, team_id=team
                )
        try:
            yield harness
        finally:
            for made in SIMULATORS.pop(id(harness), []):
                await made.close()


async def start_install(harness: Harness, browser: WebUser) -> str:
    """Open "Add to Slack" and follow its link to Slack; where Slack sends the browser."""
    status, page = await browser.get("/slack/install")
    assert status == 200 and "Add to Slack" in page
    link = re.search(r'href="([^"]*/oauth/v2/authorize[^"]*)"', page)
    assert link is not None
    async with browser.http.get(html.unescape(link.group(1)), allow_redirects=False) as answer:
        assert answer.status == 302
        location = answer.headers["Location"]
    assert location.startswith(f"{harness.settings.public_url}/slack/oauth_redirect?")
    return location.replace(harness.settings.public_url, harness.server.url)


async def install(harness: Harness, team: str, *, org_wide: bool = False) -> None:
    """A DSL installs Vigil into their workspace (or, org-wide, their org)."""
    harness.standin.install_as(dsl(team), team, org_wide=org_wide)
    async with WebUser(harness.server.url, harness.now) as browser:
        status, page = await browser.get(await start_install(harness, browser))
    assert status == 200 and "Vigil is installed" in page, page


def simulator(harness: Harness, team: str) -> SlackSimulator:
    org = harness.standin.teams[team].enterprise_id
    made = SlackSimulator(
        app_url=f"{harness.server.url}/slack/events",
        signing_secret=SIGNING_SECRET,
        standin=harness.standin,
        team_id=team,
        enterprise_id=org,
        org_wide=org is not None,
    )
    SIMULATORS.setdefault(id(harness), []).append(made)
    return made


async def workspace_of(harness: Harness, team: str) -> Workspace:
    async with harness.server.factory() as session:
        found = await session.scalar(select(Workspace).where(Workspace.team_id == team))
    assert found is not None, f"no workspace for {team}"
    return found


async def seed(harness: Harness, team: str, directory: Path) -> int:
    """Import the school's staff (linked through its own bot token) and pupils."""
    workspace = await workspace_of(harness, team)
    client = await harness.server.slack_clients.for_workspace(workspace.id)
    assert client is not None
    staff_file, pupil_file = directory / f"{team}-staff.csv", directory / f"{team}-pupils.csv"
    staff_file.write_text(staff_csv(STAFF[team]), encoding="utf-8")
    pupil_file.write_text(pupils_csv(fictional_pupils(10)), encoding="utf-8")
    for report in (
        await roster.import_staff(
            harness.server.factory,
            workspace_id=workspace.id,
            path=staff_file,
            lookup_slack_id=make_slack_lookup(client),
        ),
        await roster.import_pupils(
            harness.server.factory,
            workspace_id=workspace.id,
            path=pupil_file,
            cipher=harness.server.cipher,
        ),
    ):
        assert not report.errors, report.summary()
    return workspace.id


async def report(harness: Harness, team: str, narrative: str) -> None:
    """The school's teacher files a concern from Slack; the outbox sends its alerts."""
    harness.slack = simulator(harness, team)
    response = await harness.report_concern(
        teacher(team), pupil_query=PUPIL_4B, narrative=narrative, categories=["Well-being"]
    )
    assert response.status == 200 and not (response.json or {}).get("errors"), response.body
    await harness.delivered()


def dm_tokens(harness: Harness, user: str) -> set[str | None]:
    """The tokens of every alert DM posted to `user`."""
    return {
        call.token
        for call in harness.standin.calls_to("chat.postMessage", ok_only=True)
        if call.params.get("channel") == user
    }


async def test_each_school_installs_vigil_and_its_alerts_go_with_its_own_token(
    db_url: str, tmp_path: Path
) -> None:
    async with trust(db_url) as harness:
        await install(harness, ASHFORD)
        await install(harness, BRAMLEY)
        for team in (ASHFORD, BRAMLEY):
            await seed(harness, team, tmp_path)
            assert (await workspace_of(harness, team)).name in {
                "Ashford Primary",
                "Bramley Academy",
            }
        await report(harness, ASHFORD, "Ashford: came in without a coat again.")
        await report(harness, BRAMLEY, "Bramley: bruise on the left forearm.")

        token_a, token_b = harness.standin.token_of(ASHFORD), harness.standin.token_of(BRAMLEY)
        assert token_a != token_b
        assert dm_tokens(harness, dsl(ASHFORD)) == {token_a}
        assert dm_tokens(harness, dsl(BRAMLEY)) == {token_b}
        # Every call Vigil made for a school's modal used that school's token.
        for team, token in ((ASHFORD, token_a), (BRAMLEY, token_b)):
            opened = [
                call
                for call in harness.standin.calls_to("views.open", ok_only=True)
                if harness.standin.view_users.get(call.response["view"]["id"]) == teacher(team)  # type: ignore[index]
            ]
            assert opened and {call.token for call in opened} == {token}

        # A DSL of one school never sees the other school's concern (both are number 1).
        harness.slack = simulator(harness, ASHFORD)
        user = await harness.sign_in(dsl(ASHFORD))
        try:
            status, page = await user.get("/incidents/1")
            assert status == 200 and "without a coat" in page and "forearm" not in page
            status, page = await user.get("/alerts")
            assert "forearm" not in page and "Bramley" not in page
        finally:
            await user.close()

        # No token is in the database as text: only sealed, bound to its row.
        async with harness.server.factory() as session:
            rows = (await session.execute(text("SELECT * FROM slack_installations"))).all()
        assert len(rows) == 2
        dump = repr(rows)
        assert token_a not in dump and token_b not in dump
        assert token_a.encode() not in b"".join(bytes(row.bot_token_ct) for row in rows)


async def test_an_org_wide_install_serves_each_school_of_the_org_as_its_own(
    db_url: str, tmp_path: Path
) -> None:
    async with trust(db_url) as harness:
        await install(harness, CEDAR, org_wide=True)
        org_token = harness.standin.token_of(CEDAR)
        assert harness.standin.token_of(DALE) == org_token
        # Each team of the org becomes its own school on its first request.
        for team in (CEDAR, DALE):
            response = await simulator(harness, team).slash_command(
                teacher(team), "help", command=harness.settings.command
            )
            assert response.status == 200
        cedar, dale = await workspace_of(harness, CEDAR), await workspace_of(harness, DALE)
        assert cedar.id != dale.id
        assert (cedar.name, dale.name) == ("Cedar School", "Dale School")
        for team in (CEDAR, DALE):
            await seed(harness, team, tmp_path)

        await report(harness, CEDAR, "Cedar: asleep in every lesson this week.")
        assert dm_tokens(harness, dsl(CEDAR)) == {org_token}
        assert dm_tokens(harness, dsl(DALE)) == set()  # Dale's DSL hears nothing of Cedar's
        async with harness.server.factory() as session:
            where = set(await session.scalars(select(OutboxMessage.workspace_id)))
        assert where == {cedar.id}
        # A team outside the org is not served by the org's installation.
        opened = len(harness.standin.calls_to("views.open"))
        await simulator(harness, ASHFORD).slash_command(
            teacher(ASHFORD), command=harness.settings.command
        )
        assert len(harness.standin.calls_to("views.open")) == opened
        async with harness.server.factory() as session:
            assert (
                await session.scalar(select(Workspace).where(Workspace.team_id == ASHFORD)) is None
            )


async def test_uninstalling_stops_service_for_that_school_only(db_url: str, tmp_path: Path) -> None:
    async with trust(db_url) as harness:
        await install(harness, ASHFORD)
        await install(harness, BRAMLEY)
        bramley = await seed(harness, BRAMLEY, tmp_path)
        await seed(harness, ASHFORD, tmp_path)
        token_b = harness.standin.token_of(BRAMLEY)

        harness.standin.uninstall(token_b)
        response = await simulator(harness, BRAMLEY).event({"type": "app_uninstalled"})
        assert response.status == 200
        async with harness.server.factory() as session:
            row = await session.scalar(
                select(SlackInstallation).where(SlackInstallation.team_id == BRAMLEY)
            )
            audited = await session.scalar(
                select(AuditEvent).where(
                    AuditEvent.action == "slack.uninstalled", AuditEvent.workspace_id == bramley
                )
            )
        assert row is not None and row.uninstalled_at is not None and audited is not None

        before = len(harness.standin.calls_to("views.open"))
        response = await simulator(harness, BRAMLEY).slash_command(
            teacher(BRAMLEY), command=harness.settings.command
        )
        assert response.status in (200, 401, 403)
        assert len(harness.standin.calls_to("views.open")) == before  # no modal for Bramley
        assert await harness.server.slack_clients.for_workspace(bramley) is None
        # A message the scheduler queues for Bramley now is failed, never sent.
        async with transaction(harness.server.factory) as session:
            queued = outbox.enqueue(
                session,
                workspace_id=bramley,
                kind=outbox.NUDGE,
                channel=dsl(BRAMLEY),
                payload={"text": "Concern #1 is overdue"},
            )
            await session.flush()
            queued_id = queued.id
        harness.server.worker.notify()
        await harness.delivered()
        async with harness.server.factory() as session:
            row = await session.get(OutboxMessage, queued_id)
        assert row is not None and row.status == "failed" and row.last_error == "app_uninstalled"
        assert token_b not in {c.token for c in harness.standin.calls_to("chat.postMessage")}

        # Ashford is untouched.
        await report(harness, ASHFORD, "Ashford: new concern after Bramley left.")
        assert dm_tokens(harness, dsl(ASHFORD)) == {harness.standin.token_of(ASHFORD)}

        # Reinstalling serves the school again, with a new token.
        await install(harness, BRAMLEY)
        assert harness.standin.token_of(BRAMLEY) != token_b
        await report(harness, BRAMLEY, "Bramley: back again.")
        assert dm_tokens(harness, dsl(BRAMLEY)) == {harness.standin.token_of(BRAMLEY)}


async def test_a_state_used_twice_forged_or_expired_installs_nothing(db_url: str) -> None:
    async with trust(db_url) as harness:
        harness.standin.install_as(dsl(ASHFORD), ASHFORD)
        async with WebUser(harness.server.url, harness.now) as browser:
            back = await start_install(harness, browser)
            status, page = await browser.get(back)
            assert status == 200 and "Vigil is installed" in page
            # The same redirect again (a replay): refused, Slack's code not exchanged again.
            exchanges = len(harness.standin.calls_to("oauth.v2.access"))
            status, page = await browser.get(back)
            assert status == 400 and "not installed" in page
            assert len(harness.standin.calls_to("oauth.v2.access")) == exchanges

        harness.standin.install_as(dsl(BRAMLEY), BRAMLEY)
        async with WebUser(harness.server.url, harness.now) as browser:
            # A state Vigil never issued, even with a matching cookie.
            forged = "forged-state-0123456789"
            browser.http.cookie_jar.update_cookies({"slack-app-oauth-state": forged})
            status, page = await browser.get(f"/slack/oauth_redirect?code=x&state={forged}")
            assert status == 400 and "not installed" in page
        async with WebUser(harness.server.url, harness.now) as browser:
            # A real state from another browser (no cookie): refused.
            back = await start_install(harness, browser)
        async with WebUser(harness.server.url, harness.now) as other:
            status, page = await other.get(back)
            assert status == 400 and "another browser" in page
        async with WebUser(harness.server.url, harness.now) as browser:
            # A state past its ten minutes: refused.
            back = await start_install(harness, browser)
            harness.clock_offset += dt.timedelta(minutes=11)
            status, page = await browser.get(back)
            assert status == 400 and "not installed" in page
        async with harness.server.factory() as session:
            teams = set(await session.scalars(select(SlackInstallation.team_id)))
        assert teams == {ASHFORD}


@pytest.mark.parametrize("missing", ["SLACK_CLIENT_SECRET", "SLACK_STATE_SECRET"])
def test_oauth_mode_needs_the_client_secret_and_the_state_secret(missing: str) -> None:
    values = {
        "SLACK_CLIENT_ID": "1.2",
        "SLACK_CLIENT_SECRET": "s",
        "SLACK_STATE_SECRET": "t",
        missing: "",
    }
    assert not load_settings(env_file=None, **values).oauth_install
    assert load_settings(env_file=None, **{**values, missing: "x"}).oauth_install
    with_token = {**values, missing: "x", "SLACK_BOT_TOKEN": "xoxb-1"}
    assert not load_settings(env_file=None, **with_token).oauth_install


def test_the_install_asks_for_the_manifests_bot_scopes() -> None:
    manifest = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())
    assert set(BOT_SCOPES) == set(manifest["oauth_config"]["scopes"]["bot"])
    assert any(
        url.endswith("/slack/oauth_redirect") for url in manifest["oauth_config"]["redirect_urls"]
    )
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"app_uninstalled", "tokens_revoked"} <= set(events)
