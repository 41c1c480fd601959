"""Workspaces (schools): one per Slack team."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import SessionFactory
from store.models import Workspace


def in_school(column: Any, workspace_id: int | None) -> tuple[ColumnElement[bool], ...]:
    """A scheduled check's filter: one school's rows (`workspace_id`), or every school's."""
    return () if workspace_id is None else (column == workspace_id,)


async def get_by_team(session: AsyncSession, *, team_id: str) -> Workspace | None:
    """The workspace for a Slack team id."""
    return await session.scalar(select(Workspace).where(Workspace.team_id == team_id))


async def find_school(session: AsyncSession, wanted: str) -> Workspace | list[tuple[str, str]]:
    """The workspace with this Slack team id, else the one school with this name (ignoring
    case and spaces); if none or several, every school as (team id, name)."""
    rows = list((await session.scalars(select(Workspace).order_by(Workspace.name))).all())
    by_team = [w for w in rows if w.team_id == wanted.strip()]
    folded = " ".join(wanted.split()).casefold()
    by_name = [w for w in rows if " ".join(w.name.split()).casefold() == folded]
    found = by_team or by_name
    if len(found) == 1:
        return found[0]
    return [(w.team_id, w.name) for w in rows]


async def check_exists(session: AsyncSession, *, workspace_id: int) -> None:
    """Raise ValueError when there is no workspace with this id."""
    found = await session.scalar(select(Workspace.id).where(Workspace.id == workspace_id))
    if found is None:
        raise ValueError(f"no workspace with id {workspace_id}")


async def ensure(session: AsyncSession, *, team_id: str, name: str) -> Workspace:
    """The workspace for a Slack team, created on first sight; the name follows Slack's."""
    workspace = await get_by_team(session, team_id=team_id)
    if workspace is None:
        workspace = Workspace(team_id=team_id, name=name, next_incident_number=1)
        session.add(workspace)
        await session.flush()
    elif workspace.name != name and name:
        workspace.name = name
    return workspace


async def school_name(session: AsyncSession, *, workspace_id: int) -> str:
    """The school's name (its Slack workspace's), for report and chronology headings."""
    return await session.scalar(select(Workspace.name).where(Workspace.id == workspace_id)) or ""


async def all_teams(session: AsyncSession) -> dict[str, int]:
    """Every known Slack team id, mapped to its workspace id."""
    rows = await session.execute(select(Workspace.team_id, Workspace.id))
    return {team_id: workspace_id for team_id, workspace_id in rows.all()}


class TeamDirectory:
    """Slack team id → workspace id, cached so a Slack request needs no query to check it.

    An unknown team is looked up again at most every `recheck_seconds`, so a flood of
    requests from a stranger's workspace cannot turn into a flood of queries.
    """

    def __init__(
        self,
        factory: SessionFactory,
        *,
        recheck_seconds: float = 30.0,
        installed_by_oauth: bool = False,
    ) -> None:
        self._factory = factory
        # OAuth mode: workspaces come and go with installs; a team of an Enterprise Grid
        # org with Vigil installed org-wide joins on its first request (`handlers.context`).
        self.installed_by_oauth = installed_by_oauth
        self._known: dict[str, int] = {}
        self._misses: dict[str, float] = {}
        self._recheck = recheck_seconds

    def remember(self, team_id: str, workspace_id: int) -> None:
        """Cache a team's workspace id."""
        self._known[team_id] = workspace_id
        self._misses.pop(team_id, None)

    def forget(self, team_id: str) -> None:
        """Drop a team from the cache (its installation was removed)."""
        self._known.pop(team_id, None)

    def cached(self, team_id: str | None) -> int | None:
        """The cached workspace id for a team (no query), if known."""
        return self._known.get(team_id or "")

    async def lookup(self, team_id: str | None) -> int | None:
        """The workspace id for a team, or None if Vigil does not serve it."""
        if not team_id:
            return None
        if team_id in self._known:
            return self._known[team_id]
        last = self._misses.get(team_id)
        if last is not None and time.monotonic() - last < self._recheck:
            return None
        async with self._factory() as session:
            workspace = await get_by_team(session, team_id=team_id)
        if workspace is None:
            self._misses[team_id] = time.monotonic()
            return None
        self.remember(team_id, workspace.id)
        return workspace.id
