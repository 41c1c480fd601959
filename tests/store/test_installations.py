"""Slack installations in the database (`store.installations`): tokens sealed to their row,
an org-wide install serving its teams, uninstalling, and OAuth states used once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from store import installations
from store.crypto import Cipher, IntegrityError, generate_key
from store.db import SessionFactory, transaction
from store.models import SlackInstallation, Workspace, utcnow

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
