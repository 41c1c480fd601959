"""Slack OAuth installations: which workspaces Vigil is installed in, with which bot token.

In OAuth mode (no `SLACK_BOT_TOKEN`) each school installs Vigil from the "Add to Slack"
page. `save` records an installation (the bot token sealed with the data key, bound to
its row, like every other secret) and creates or links the school's `workspaces` row; an
Enterprise Grid org-wide install serves every team of the org, each team still its own
workspace (school), linked on its first request by `join_org_team`. `find` is what Bolt's
installation store reads for each request; `token_for_workspace` is what outgoing calls
(the outbox, App Home, staff linking) use. `uninstall` marks the installation: Vigil
stops serving its workspaces, except a school of an org whose org-wide installation is in
service, which the org's then serves (as an org-wide install serves again a school of
the org whose own installation went before). The OAuth `state` of an install in flight
is stored as a keyed hash, used once, expiring (`issue_state`, `consume_state`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, keyring, workspaces
from store.crypto import Cipher, bind
from store.models import SlackInstallation, SlackOAuthState, Workspace, WorkspaceInstallation

STATE_TTL = dt.timedelta(minutes=10)
INSTALLED, UNINSTALLED, JOINED = "slack.installed", "slack.uninstalled", "slack.org_team_joined"


@dataclass(frozen=True)
class Installed:
    """An installation in service, its bot token decrypted (never logged, never stored)."""

    id: int
    enterprise_id: str | None
    team_id: str | None
    is_enterprise_install: bool
    name: str
    app_id: str | None
    bot_id: str | None
    bot_user_id: str | None
    bot_scopes: str
    installer_user_id: str | None
    bot_token: str
    installed_at: dt.datetime


def installation_key(
    *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool
) -> str:
    """What an installation is of: "E:<enterprise>" org-wide, else "T:<team>"."""
    if is_enterprise_install:
        if not enterprise_id:
            raise ValueError("an org-wide installation needs its enterprise id")
        return f"E:{enterprise_id}"
    if not team_id:
        raise ValueError("an installation needs its team id")
    return f"T:{team_id}"


async def save(
    session: AsyncSession,
    cipher: Cipher,
    *,
    enterprise_id: str | None,
    team_id: str | None,
    is_enterprise_install: bool,
    name: str,
    app_id: str | None,
    bot_id: str | None,
    bot_user_id: str | None,
    bot_scopes: str,
    installer_user_id: str | None,
    bot_token: str,
    now: dt.datetime,
) -> dict[int, str]:
    """Record an installation (a reinstall replaces the token and serves again); create or
    link the installed team's workspace. The workspaces it now serves: id → team id."""
    key = installation_key(
        enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
    )
    row = await session.scalar(select(SlackInstallation).where(SlackInstallation.key == key))
    if row is None:
        row = SlackInstallation(key=key, installed_at=now)
    row.enterprise_id = enterprise_id
    row.team_id = None if is_enterprise_install else team_id
    row.is_enterprise_install = is_enterprise_install
    row.name = name[:200]
    row.app_id, row.bot_id, row.bot_user_id = app_id, bot_id, bot_user_id
    row.bot_scopes = bot_scopes[:1000]
    row.installer_user_id = installer_user_id
    row.installed_at, row.uninstalled_at = now, None
    await keyring.seal(session, cipher, row, {SlackInstallation.bot_token_ct: bot_token})
    if not is_enterprise_install and team_id:
        workspace = await workspaces.ensure(session, team_id=team_id, name=name)
        await _link(session, workspace_id=workspace.id, installation_id=row.id)
    elif enterprise_id:  # the org's schools whose own installation was removed: served again
        for workspace_id in await _left_by_own(session, enterprise_id=enterprise_id):
            await _link(session, workspace_id=workspace_id, installation_id=row.id)
    linked = await session.execute(
        select(Workspace.id, Workspace.team_id)
        .join(WorkspaceInstallation, WorkspaceInstallation.workspace_id == Workspace.id)
        .where(WorkspaceInstallation.installation_id == row.id)
    )
    served = {workspace_id: team for workspace_id, team in linked.all()}
    for workspace_id in served:
        audit.record(
            session,
            action=INSTALLED,
            workspace_id=workspace_id,
            actor_slack_id=installer_user_id,
            detail="org-wide" if is_enterprise_install else None,
            now=now,
        )
    await session.flush()
    return served


async def _org_wide(session: AsyncSession, enterprise_id: str | None) -> SlackInstallation | None:
    """The org's org-wide installation, if it is in service."""
    if not enterprise_id:
        return None
    return await session.scalar(
        select(SlackInstallation).where(
            SlackInstallation.key == f"E:{enterprise_id}",
            SlackInstallation.uninstalled_at.is_(None),
        )
    )


async def _left_by_own(session: AsyncSession, *, enterprise_id: str) -> list[int]:
    """The org's workspaces whose own (team) installation was removed."""
    return list(
        await session.scalars(
            select(WorkspaceInstallation.workspace_id)
            .join(SlackInstallation, WorkspaceInstallation.installation_id == SlackInstallation.id)
            .where(
                SlackInstallation.enterprise_id == enterprise_id,
                SlackInstallation.is_enterprise_install.is_(False),
                SlackInstallation.uninstalled_at.is_not(None),
            )
        )
    )


async def _link(session: AsyncSession, *, workspace_id: int, installation_id: int) -> None:
    link = await session.get(WorkspaceInstallation, workspace_id)
    if link is None:
        session.add(
            WorkspaceInstallation(workspace_id=workspace_id, installation_id=installation_id)
        )
    else:
        link.installation_id = installation_id
    await session.flush()


async def _open(session: AsyncSession, cipher: Cipher, row: SlackInstallation) -> Installed:
    await keyring.ensure_data_key(session, cipher)
    token = cipher.decrypt(row.bot_token_ct, bind(SlackInstallation.bot_token_ct, row.id))
    return Installed(
        id=row.id,
        enterprise_id=row.enterprise_id,
        team_id=row.team_id,
        is_enterprise_install=row.is_enterprise_install,
        name=row.name,
        app_id=row.app_id,
        bot_id=row.bot_id,
        bot_user_id=row.bot_user_id,
        bot_scopes=row.bot_scopes,
        installer_user_id=row.installer_user_id,
        bot_token=token,
        installed_at=row.installed_at,
    )


async def find(
    session: AsyncSession,
    cipher: Cipher,
    *,
    enterprise_id: str | None,
    team_id: str | None,
    is_enterprise_install: bool | None,
) -> Installed | None:
    """The installation in service for a request from `team_id` (its own, else its org's
    org-wide one), or None."""
    keys = []
    if is_enterprise_install and enterprise_id:
        keys.append(f"E:{enterprise_id}")
    else:
        if team_id:
            keys.append(f"T:{team_id}")
        if enterprise_id:
            keys.append(f"E:{enterprise_id}")
    if not keys:
        return None
    rows = {
        row.key: row
        for row in await session.scalars(
            select(SlackInstallation).where(
                SlackInstallation.key.in_(keys), SlackInstallation.uninstalled_at.is_(None)
            )
        )
    }
    for key in keys:
        if key in rows:
            return await _open(session, cipher, rows[key])
    return None


async def token_for_workspace(
    session: AsyncSession, cipher: Cipher, *, workspace_id: int
) -> str | None:
    """The bot token that serves a workspace, or None (not installed, or uninstalled)."""
    row = await session.scalar(
        select(SlackInstallation)
        .join(WorkspaceInstallation, WorkspaceInstallation.installation_id == SlackInstallation.id)
        .where(
            WorkspaceInstallation.workspace_id == workspace_id,
            SlackInstallation.uninstalled_at.is_(None),
        )
    )
    return None if row is None else (await _open(session, cipher, row)).bot_token


async def join_org_team(
    session: AsyncSession, *, enterprise_id: str, team_id: str, name: str, now: dt.datetime
) -> int | None:
    """A team of an org with Vigil installed org-wide, seen for the first time: its own
    workspace (school), served by the org's installation. None if the org has none."""
    row = await _org_wide(session, enterprise_id)
    if row is None:
        return None
    workspace = await workspaces.ensure(session, team_id=team_id, name=name)
    await _link(session, workspace_id=workspace.id, installation_id=row.id)
    audit.record(session, action=JOINED, workspace_id=workspace.id, now=now)
    return workspace.id


async def uninstall(
    session: AsyncSession,
    *,
    enterprise_id: str | None,
    team_id: str | None,
    is_enterprise_install: bool,
    now: dt.datetime,
) -> list[str]:
    """Slack says the app was uninstalled (or its bot token revoked): stop serving. A
    school's own installation removed while its org's org-wide one is in service leaves
    the school served by the org's. The team ids of the workspaces no longer served."""
    try:
        key = installation_key(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
    except ValueError:
        return []
    row = await session.scalar(select(SlackInstallation).where(SlackInstallation.key == key))
    if row is None or row.uninstalled_at is not None:
        return []
    row.uninstalled_at = now
    linked = (
        await session.execute(
            select(Workspace.id, Workspace.team_id)
            .join(WorkspaceInstallation, WorkspaceInstallation.workspace_id == Workspace.id)
            .where(WorkspaceInstallation.installation_id == row.id)
        )
    ).all()
    org = None if row.is_enterprise_install else await _org_wide(session, row.enterprise_id)
    for workspace_id, _team in linked:
        audit.record(
            session,
            action=UNINSTALLED,
            workspace_id=workspace_id,
            detail=None if org is None else "served org-wide",
            now=now,
        )
        if org is not None:
            await _link(session, workspace_id=workspace_id, installation_id=org.id)
    await session.flush()
    return [] if org is not None else [team for _id, team in linked]


async def installed_workspaces(session: AsyncSession) -> list[int]:
    """The ids of every workspace an installation in service serves."""
    return list(
        await session.scalars(
            select(WorkspaceInstallation.workspace_id)
            .join(SlackInstallation, WorkspaceInstallation.installation_id == SlackInstallation.id)
            .where(SlackInstallation.uninstalled_at.is_(None))
            .order_by(WorkspaceInstallation.workspace_id)
        )
    )


# -- the OAuth state of an install in flight ----------------------------------------------


def _state_hash(secret: str, state: str) -> str:
    return hmac.new(secret.encode(), state.encode(), hashlib.sha256).hexdigest()


async def issue_state(session: AsyncSession, *, secret: str, now: dt.datetime) -> str:
    """A new random state for one "Add to Slack" click (expired ones are cleared)."""
    await session.execute(delete(SlackOAuthState).where(SlackOAuthState.expires_at <= now))
    state = secrets.token_urlsafe(32)
    session.add(SlackOAuthState(state_hash=_state_hash(secret, state), expires_at=now + STATE_TTL))
    await session.flush()
    return state


async def consume_state(
    session: AsyncSession, *, secret: str, state: str, now: dt.datetime
) -> bool:
    """True once for a state this server issued and that has not expired; never again."""
    if not state or len(state) > 200:
        return False
    expires = await session.scalar(
        delete(SlackOAuthState)
        .where(SlackOAuthState.state_hash == _state_hash(secret, state))
        .returning(SlackOAuthState.expires_at)
    )
    return expires is not None and expires > now
