"""Enterprise Grid: a school's own install and its org's org-wide install, in either order.

Cedar School is a team of the Oak Trust org (Enterprise Grid). In one order Cedar's DSL
installs Vigil into Cedar first and the org admin installs it org-wide later; in the other
the org-wide install comes first and Cedar installs it for itself afterwards. Both go
through the real redirects against the stand-in, then Slack's signed requests come from
Cedar's staff with `enterprise_id` and `team_id` as Slack sends them for Grid (the
installation Slack names for a request in `is_enterprise_install`).

What must hold: Cedar stays one school (one workspace row, its settings, staff, pupils and
concerns); a request goes with the token of the installation Slack names, and the school's
alerts with an installation that serves it; Dale School, a team of the same org that is not
yet a school, is refused while only Cedar has Vigil and becomes its own school on its first
request once the org has it (`handlers.context.team_guard`); and removing one of the two
installations leaves Cedar served by the other.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from store.models import OutboxMessage, Pupil, SchoolSettings, Staff, Workspace
from testing.harness import SIGNING_SECRET, Harness
from testing.simulator import SlackSimulator
from testing.webclient import WebUser
from tests.bot.test_oauth_install import (
    ASHFORD,
    CEDAR,
    DALE,
    ORG,
    SIMULATORS,
    dm_tokens,
    dsl,
    install,
    seed,
    start_install,
    teacher,
    trust,
    workspace_of,
)
from tests.support.school import PUPIL_4B

# A setting only Cedar's key-holders could have made: it must survive the second install.
CEDAR_AGENCIES = """
[[agencies]]
name = "Police"
respond_within = "4 working hours"

[[agencies]]
name = "Cedar family support"
respond_within = "3 working days"
"""
ORG_ADMIN = "U0OAKADMIN01"
Rows = tuple[list[int], int, int, int]  # Cedar's workspace ids; its staff, pupils, settings


def slack_for(harness: Harness, team: str, *, org_wide: bool) -> SlackSimulator:
    """Slack's requests from `team` (a team of the org), naming the installation Slack
    attributes them to: the org's (`org_wide`) or the team's own."""
    made = SlackSimulator(
        app_url=f"{harness.server.url}/slack/events",
        signing_secret=SIGNING_SECRET,
        standin=harness.standin,
        team_id=team,
        enterprise_id=ORG,
        org_wide=org_wide,
    )
    SIMULATORS.setdefault(id(harness), []).append(made)
    return made


async def install_org_wide(harness: Harness) -> str:
    """The org admin installs Vigil for the whole org; the org's token."""
    harness.standin.add_user(ORG_ADMIN, email="admin@oak.example", name="Oak Admin", team_id=CEDAR)
    before = set(harness.standin.installations)
    harness.standin.install_as(ORG_ADMIN, CEDAR, org_wide=True)
    async with WebUser(harness.server.url, harness.now) as browser:
        status, page = await browser.get(await start_install(harness, browser))
    assert status == 200 and "Vigil is installed" in page and "Oak Trust" in page, page
    (token,) = set(harness.standin.installations) - before
    assert harness.standin.installations[token].org_wide
    return token


async def install_team(harness: Harness, team: str) -> str:
    """The school's DSL installs Vigil into the school's own workspace; its token."""
    before = set(harness.standin.installations)
    await install(harness, team)
    (token,) = set(harness.standin.installations) - before
    assert not harness.standin.installations[token].org_wide
    return token


async def file_concern(harness: Harness, slack: SlackSimulator, narrative: str) -> str:
    """Cedar's teacher files a concern through `slack`; the token its modal was opened
    with. The outbox then sends its alerts."""
    harness.slack = slack
    opened = len(harness.standin.calls_to("views.open"))
    response = await harness.report_concern(
        teacher(slack.team_id), pupil_query=PUPIL_4B, narrative=narrative, categories=["Well-being"]
    )
    assert response.status == 200 and not (response.json or {}).get("errors"), response.body
    await harness.delivered()
    (call,) = harness.standin.calls_to("views.open")[opened:]
    assert call.response["ok"]  # type: ignore[index]
    return str(call.token)


def new_dm_tokens(harness: Harness, user: str, seen: int) -> set[str | None]:
    """The tokens of the DMs posted to `user` after the first `seen` postMessage calls."""
    return {
        call.token
        for call in harness.standin.calls_to("chat.postMessage", ok_only=True)[seen:]
        if call.params.get("channel") == user
    }


async def cedar_rows(harness: Harness) -> Rows:
    """Cedar's workspace rows, and its staff, pupils and saved settings."""
    async with harness.server.factory() as session:
        ids = list(await session.scalars(select(Workspace.id).where(Workspace.team_id == CEDAR)))
        counts = [
            int(await session.scalar(select(func.count()).where(*where)) or 0)
            for where in (
                (Staff.workspace_id.in_(ids),),
                (Pupil.workspace_id.in_(ids),),
                (SchoolSettings.workspace_id.in_(ids),),
            )
        ]
    return ids, counts[0], counts[1], counts[2]


async def failed_messages(harness: Harness) -> list[str | None]:
    async with harness.server.factory() as session:
        return list(
            await session.scalars(
                select(OutboxMessage.last_error).where(OutboxMessage.status == "failed")
            )
        )


async def save_settings(harness: Harness, user: WebUser) -> None:
    status, _ = await user.get("/settings")
    assert status == 200
    status, body = await user.post("/settings", {"settings": CEDAR_AGENCIES})
    assert status == 200 and "Saved." in body


async def still_the_same_school(harness: Harness, user: WebUser, before: Rows) -> None:
    """Cedar's DSL, signed in before the second install, sees Cedar as it was."""
    assert await cedar_rows(harness) == before
    status, page = await user.get("/settings")
    assert status == 200 and "Cedar family support" in page
    status, page = await user.get("/incidents/1")
    assert status == 200 and "first concern" in page


async def dale_is_refused(harness: Harness, *, org_wide: bool) -> None:
    """Dale (a team of the org Vigil does not serve): no modal, no school made for it."""
    opened = len(harness.standin.calls_to("views.open"))
    response = await slack_for(harness, DALE, org_wide=org_wide).slash_command(
        teacher(DALE), command=harness.settings.command
    )
    assert response.status in (200, 401, 403)
    assert len(harness.standin.calls_to("views.open")) == opened
    async with harness.server.factory() as session:
        assert await session.scalar(select(Workspace).where(Workspace.team_id == DALE)) is None


async def dale_joins_as_its_own_school(harness: Harness, org_token: str) -> int:
    """Dale's first request under the org-wide install: its own school, named from Slack,
    served with the org's token; its teacher is not on any staff list there."""
    opened = len(harness.standin.calls_to("views.open"))
    response = await slack_for(harness, DALE, org_wide=True).slash_command(
        teacher(DALE), command=harness.settings.command
    )
    assert response.status == 200
    await harness.server.tasks.idle()
    (call,) = harness.standin.calls_to("views.open")[opened:]
    assert call.token == org_token
    dale, cedar = await workspace_of(harness, DALE), await workspace_of(harness, CEDAR)
    assert dale.id != cedar.id and dale.name == "Dale School"
    async with harness.server.factory() as session:
        staff = await session.scalar(
            select(func.count()).where(Staff.workspace_id == dale.id, Staff.active.is_(True))
        )
    assert staff == 0
    client = await harness.server.slack_clients.for_workspace(dale.id, fresh=True)
    assert client is not None and client.token == org_token
    return dale.id


async def test_a_school_installed_first_keeps_its_school_when_the_org_installs(
    db_url: str, tmp_path: Path
) -> None:
    async with trust(db_url) as harness:
        team_token = await install_team(harness, CEDAR)
        await seed(harness, CEDAR, tmp_path)
        own = slack_for(harness, CEDAR, org_wide=False)
        assert await file_concern(harness, own, "Cedar: first concern, coat again.") == team_token
        assert dm_tokens(harness, dsl(CEDAR)) == {team_token}
        harness.slack = own
        keyholder = await harness.sign_in(dsl(CEDAR))
        try:
            await save_settings(harness, keyholder)
            before = await cedar_rows(harness)
            assert len(before[0]) == 1 and before[1:] == (2, 10, 1)
            # Only Cedar has Vigil: Dale, in the same org, is not served.
            await dale_is_refused(harness, org_wide=False)

            org_token = await install_org_wide(harness)
            assert org_token != team_token
            await still_the_same_school(harness, keyholder, before)
            cedar = await workspace_of(harness, CEDAR)
            assert cedar.name == "Cedar School"  # not renamed after the org
            # Cedar's alerts still go with its own installation (in service).
            client = await harness.server.slack_clients.for_workspace(cedar.id, fresh=True)
            assert client is not None and client.token == team_token

            # Slack now names the org's installation for Cedar's requests: the modal opens
            # with the org's token, the concern is Cedar's second, its alerts go with
            # Cedar's own token, and its pupils are Cedar's.
            seen = len(harness.standin.calls_to("chat.postMessage"))
            org = slack_for(harness, CEDAR, org_wide=True)
            assert await file_concern(harness, org, "Cedar: second concern.") == org_token
            assert new_dm_tokens(harness, dsl(CEDAR), seen) == {team_token}
            status, page = await keyholder.get("/incidents/2")
            assert status == 200 and "second concern" in page
            # A request naming Cedar's own installation still works, with its token.
            assert await file_concern(harness, own, "Cedar: third concern.") == team_token
            assert await cedar_rows(harness) == before

            # Dale, not yet a school, becomes its own on its first request.
            dale = await dale_joins_as_its_own_school(harness, org_token)
            assert dm_tokens(harness, dsl(DALE)) == set()

            # Cedar revokes its own installation's token; the org's still serves Cedar.
            harness.standin.uninstall(team_token)
            response = await own.event(
                {
                    "type": "tokens_revoked",
                    "tokens": {"oauth": [], "bot": [harness.standin.bot_user_id]},
                }
            )
            assert response.status == 200
            seen = len(harness.standin.calls_to("chat.postMessage"))
            assert await file_concern(harness, org, "Cedar: after the revocation.") == org_token
            assert new_dm_tokens(harness, dsl(CEDAR), seen) == {org_token}
            assert await failed_messages(harness) == []
            client = await harness.server.slack_clients.for_workspace(dale, fresh=True)
            assert client is not None and client.token == org_token  # Dale: untouched
            await still_the_same_school(harness, keyholder, before)
        finally:
            await keyholder.close()


async def test_an_org_installed_first_then_the_school_installs_for_itself(
    db_url: str, tmp_path: Path
) -> None:
    async with trust(db_url) as harness:
        org_token = await install_org_wide(harness)
        org = slack_for(harness, CEDAR, org_wide=True)
        response = await org.slash_command(teacher(CEDAR), "help", command=harness.settings.command)
        assert response.status == 200  # Cedar joins on its first request
        cedar = await seed(harness, CEDAR, tmp_path)
        assert await file_concern(harness, org, "Cedar: first concern, asleep.") == org_token
        assert dm_tokens(harness, dsl(CEDAR)) == {org_token}
        harness.slack = org
        keyholder = await harness.sign_in(dsl(CEDAR))
        try:
            await save_settings(harness, keyholder)
            before = await cedar_rows(harness)
            assert before[0] == [cedar] and before[1:] == (2, 10, 1)

            # Cedar's DSL installs Vigil into Cedar itself: the same school, now served
            # by its own installation.
            team_token = await install_team(harness, CEDAR)
            await still_the_same_school(harness, keyholder, before)
            client = await harness.server.slack_clients.for_workspace(cedar, fresh=True)
            assert client is not None and client.token == team_token
            own = slack_for(harness, CEDAR, org_wide=False)
            seen = len(harness.standin.calls_to("chat.postMessage"))
            assert await file_concern(harness, own, "Cedar: second concern.") == team_token
            assert new_dm_tokens(harness, dsl(CEDAR), seen) == {team_token}
            # A request Slack names the org's installation for opens with the org's token;
            # the alerts are still Cedar's own.
            seen = len(harness.standin.calls_to("chat.postMessage"))
            assert await file_concern(harness, org, "Cedar: third concern.") == org_token
            assert new_dm_tokens(harness, dsl(CEDAR), seen) == {team_token}
            assert await cedar_rows(harness) == before

            # Dale, not yet a school, joins as its own under the org's installation.
            dale = await dale_joins_as_its_own_school(harness, org_token)

            # The org removes Vigil: Dale is no longer served; Cedar, with its own
            # installation, still is.
            harness.standin.uninstall(org_token)
            response = await org.event({"type": "app_uninstalled"})
            assert response.status == 200
            assert await harness.server.slack_clients.for_workspace(dale) is None
            opened = len(harness.standin.calls_to("views.open"))
            await slack_for(harness, DALE, org_wide=True).slash_command(
                teacher(DALE), command=harness.settings.command
            )
            assert len(harness.standin.calls_to("views.open")) == opened
            seen = len(harness.standin.calls_to("chat.postMessage"))
            assert await file_concern(harness, own, "Cedar: after the org left.") == team_token
            assert new_dm_tokens(harness, dsl(CEDAR), seen) == {team_token}
            assert await failed_messages(harness) == []
            await still_the_same_school(harness, keyholder, before)
            # A school outside the org never was a school here.
            async with harness.server.factory() as session:
                assert (
                    await session.scalar(select(Workspace).where(Workspace.team_id == ASHFORD))
                    is None
                )
        finally:
            await keyholder.close()
