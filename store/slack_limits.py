"""Slack's rate limits, shared by every process: one 429 pauses a method everywhere.

A 429 names how long to wait (`Retry-After`) for one method in one workspace. The delivery
worker that met it writes `slack_rate_limits` (`pause`); every worker reads the pauses in
force (`in_force`) with each batch it claims, so another process does not spend its own
429 to learn the same thing.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import is_postgresql
from store.models import SlackRateLimit


async def pause(
    session: AsyncSession, *, workspace_id: int, method: str, until: dt.datetime
) -> None:
    """Slack asked `workspace_id` to wait until `until` before calling `method` again
    (kept if a later pause is already recorded)."""
    insert = pg_insert if is_postgresql(session) else sqlite_insert
    statement = insert(SlackRateLimit).values(
        workspace_id=workspace_id, method=method[:40], until=until
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[SlackRateLimit.workspace_id, SlackRateLimit.method],
            set_={"until": statement.excluded.until},
            where=SlackRateLimit.until < statement.excluded.until,
        )
    )


async def in_force(
    session: AsyncSession, *, now: dt.datetime
) -> dict[tuple[int, str], dt.datetime]:
    """Every pause not yet over: `(workspace_id, method)` → until when."""
    rows = await session.execute(
        select(SlackRateLimit.workspace_id, SlackRateLimit.method, SlackRateLimit.until).where(
            SlackRateLimit.until > now
        )
    )
    return {(workspace_id, method): until for workspace_id, method, until in rows.all()}
