"""Slack installations in the database (`store.installations`): tokens sealed to their row,
an org-wide install serving its teams, uninstalling, and OAuth states used once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from store import installations
from store.crypto import Cipher, IntegrityError, generate_key
from store.db import SessionFactory, transaction
from store.models import AuditEvent, SlackInstallation, Workspace, utcnow

NOW = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)
SECRET = "state-secret"


async def install(
    factory: SessionFactory,
    cipher: Cipher,
    *,
    team: str | None,
    token: str,
    org: str | None = None,
    org_wide: bool = False,
) -> dict[int, str]:
    async with transaction(factory) as session:
        return await installations.save(
            session,
            cipher,
            enterprise_id=org,
            team_id=team,
            is_enterprise_install=org_wide,
            name=f"School {team or org}",
            app_id="A1",
            bot_id="B1",
            bot_user_id="U0BOT",
            bot_scopes="commands,chat:write",
            installer_user_id="U0INSTALLER",
            bot_token=token,
            now=NOW,
        )


async def found(factory: SessionFactory, cipher: Cipher, **where: object) -> str | None:
    async with factory() as session:
        result = await installations.find(session, cipher, **where)  # type: ignore[arg-type]
    return None if result is None else result.bot_token


async def test_a_token_is_sealed_to_its_row_and_a_moved_one_is_refused(
    factory: SessionFactory,
) -> None:
    cipher = Cipher(generate_key())
    first = await install(factory, cipher, team="T1", token="xoxb-one")
    second = await install(factory, cipher, team="T2", token="xoxb-two")
    (one,), (two,) = first, second
    async with factory() as session:
        assert await installations.token_for_workspace(session, cipher, workspace_id=one) == (
            "xoxb-one"
        )
        rows = {row.team_id: row for row in await session.scalars(select(SlackInstallation))}
        assert b"xoxb-one" not in rows["T1"].bot_token_ct
    async with transaction(factory) as session:  # someone copies T1's token into T2's row
        row = await session.get(SlackInstallation, rows["T2"].id)
        assert row is not None
        row.bot_token_ct = rows["T1"].bot_token_ct
    async with factory() as session:
        with pytest.raises(IntegrityError):
            await installations.token_for_workspace(session, cipher, workspace_id=two)


async def test_an_org_wide_install_serves_a_team_of_the_org_once_it_joins(
    factory: SessionFactory,
) -> None:
    cipher = Cipher(generate_key())
    assert (
        await install(factory, cipher, team=None, org="E1", org_wide=True, token="xoxb-org") == {}
    )
    assert (
        await found(factory, cipher, enterprise_id="E1", team_id="T7", is_enterprise_install=True)
        == "xoxb-org"
    )
    assert (
        await found(factory, cipher, enterprise_id="E2", team_id="T7", is_enterprise_install=True)
        is None
    )
    async with transaction(factory) as session:
        joined = await installations.join_org_team(
            session, enterprise_id="E1", team_id="T7", name="Seven", now=NOW
        )
        stranger = await installations.join_org_team(
            session, enterprise_id="E2", team_id="T8", name="Eight", now=NOW
        )
    assert joined is not None and stranger is None
    async with factory() as session:
        assert await installations.token_for_workspace(session, cipher, workspace_id=joined) == (
            "xoxb-org"
        )
        names = set(await session.scalars(select(Workspace.name)))
    assert names == {"Seven"}


async def test_uninstalling_stops_the_token_and_reinstalling_brings_it_back(
    factory: SessionFactory,
) -> None:
    cipher = Cipher(generate_key())
    (workspace_id,) = await install(factory, cipher, team="T1", token="xoxb-old")
    async with transaction(factory) as session:
        teams = await installations.uninstall(
            session, enterprise_id=None, team_id="T1", is_enterprise_install=False, now=NOW
        )
    assert teams == ["T1"]
    assert (
        await found(factory, cipher, enterprise_id=None, team_id="T1", is_enterprise_install=False)
        is None
    )
    async with factory() as session:
        assert (
            await installations.token_for_workspace(session, cipher, workspace_id=workspace_id)
            is None
        )
    assert await install(factory, cipher, team="T1", token="xoxb-new") == {workspace_id: "T1"}
    assert (
        await found(factory, cipher, enterprise_id=None, team_id="T1", is_enterprise_install=False)
        == "xoxb-new"
    )


async def serving(factory: SessionFactory, cipher: Cipher, workspace_id: int) -> str | None:
    async with factory() as session:
        return await installations.token_for_workspace(session, cipher, workspace_id=workspace_id)


async def remove(factory: SessionFactory, **where: object) -> list[str]:
    async with transaction(factory) as session:
        return await installations.uninstall(session, now=NOW, **where)  # type: ignore[arg-type]


async def test_a_school_of_an_org_whose_own_install_goes_is_served_by_the_orgs(
    factory: SessionFactory,
) -> None:
    cipher = Cipher(generate_key())
    (cedar,) = await install(factory, cipher, team="T1", org="E1", token="xoxb-cedar")
    assert (
        await install(factory, cipher, team=None, org="E1", org_wide=True, token="xoxb-org") == {}
    )
    assert await serving(factory, cipher, cedar) == "xoxb-cedar"  # its own, while it has one
    # Cedar's own installation goes: the org's serves it, Cedar is still a school here.
    own = {"enterprise_id": "E1", "team_id": "T1", "is_enterprise_install": False}
    assert await remove(factory, **own) == []
    assert await serving(factory, cipher, cedar) == "xoxb-org"
    assert await found(factory, cipher, **own) == "xoxb-org"
    async with factory() as session:
        assert await installations.installed_workspaces(session) == [cedar]
        details = list(
            await session.scalars(
                select(AuditEvent.detail).where(AuditEvent.action == installations.UNINSTALLED)
            )
        )
    assert details == ["served org-wide"]
    # Cedar installs again: its own again. Then the org goes: Cedar, with its own, stays.
    assert await install(factory, cipher, team="T1", org="E1", token="xoxb-cedar2") == {cedar: "T1"}
    assert await serving(factory, cipher, cedar) == "xoxb-cedar2"
    org = {"enterprise_id": "E1", "team_id": None, "is_enterprise_install": True}
    assert await remove(factory, **org) == []
    assert await serving(factory, cipher, cedar) == "xoxb-cedar2"
    # Its own goes too, with no org-wide installation left: Cedar is no longer served.
    assert await remove(factory, **own) == ["T1"]
    assert await serving(factory, cipher, cedar) is None


async def test_an_org_install_serves_again_its_schools_whose_own_install_went(
    factory: SessionFactory,
) -> None:
    cipher = Cipher(generate_key())
    (cedar,) = await install(factory, cipher, team="T1", org="E1", token="xoxb-cedar")
    (elsewhere,) = await install(factory, cipher, team="T9", org="E9", token="xoxb-nine")
    (ashford,) = await install(factory, cipher, team="T5", token="xoxb-ashford")
    for team, org in (("T1", "E1"), ("T9", "E9"), ("T5", None)):
        assert await remove(
            factory, enterprise_id=org, team_id=team, is_enterprise_install=False
        ) == [team]
    served = await install(factory, cipher, team=None, org="E1", org_wide=True, token="xoxb-org")
    assert served == {cedar: "T1"}  # the same school, no second workspace for T1
    assert await serving(factory, cipher, cedar) == "xoxb-org"
    assert await serving(factory, cipher, elsewhere) is None  # another org's school
    assert await serving(factory, cipher, ashford) is None  # a school outside any org
    async with factory() as session:
        teams = list(await session.scalars(select(Workspace.team_id).order_by(Workspace.id)))
    assert teams == ["T1", "T9", "T5"]


async def test_a_state_is_good_once_and_only_before_it_expires(factory: SessionFactory) -> None:
    now = utcnow()
    async with transaction(factory) as session:
        state = await installations.issue_state(session, secret=SECRET, now=now)
        late = await installations.issue_state(session, secret=SECRET, now=now)
    later = now + installations.STATE_TTL + dt.timedelta(seconds=1)
    async with transaction(factory) as session:
        assert not await installations.consume_state(
            session, secret="another", state=state, now=now
        )
        assert await installations.consume_state(session, secret=SECRET, state=state, now=now)
        assert not await installations.consume_state(session, secret=SECRET, state=state, now=now)
        assert not await installations.consume_state(session, secret=SECRET, state=late, now=later)
        assert not await installations.consume_state(session, secret=SECRET, state=late, now=now)
        assert not await installations.consume_state(session, secret=SECRET, state="", now=now)
