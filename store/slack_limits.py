"""Slack's rate limits, shared by every process: one 429 pauses a method everywhere.

A 429 names how long to wait (`Retry-After`) for one method in one workspace. The delivery
worker that met it writes `slack_rate_limits` (`pause`); every worker reads the pauses in
force (`in_force`) with each batch it claims, so another process does not spend its own
429 to learn the same thing.

Slack refusing the app itself (a revoked token, a missing scope) pauses every method of
the workspace: the worker that meets it writes a `pause` whose method is `APP_REFUSED` and
Slack's error (`refusal_method`), again at each try while it lasts (so a report from a
delivery process that stopped runs out), lifted once Slack accepts a message
(`lift_app_refusals`). `/healthz` reads them (`app_refusals`) whichever process
delivers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import is_postgresql
from store.models import SlackRateLimit

APP_REFUSED = "*"  # no Slack method starts so: Slack refuses the app, every method waits


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
            SlackRateLimit.until > now, ~SlackRateLimit.method.startswith(APP_REFUSED)
        )
    )
    return {(workspace_id, method): until for workspace_id, method, until in rows.all()}


@dataclass(frozen=True)
class AppRefusal:
    """Slack refuses the app in `workspace_id` with `error` (and the scope it asked for);
    reported until `until` unless written again."""

    workspace_id: int
    error: str
    needed: str | None
    until: dt.datetime


def refusal_method(error: str, needed: str | None) -> str:
    """The `method` of an app refusal's row: `APP_REFUSED`, the error, any scope needed."""
    return f"{APP_REFUSED}{error} {needed}" if needed else f"{APP_REFUSED}{error}"


async def app_refusals(session: AsyncSession, *, now: dt.datetime) -> list[AppRefusal]:
    """Every app refusal reported and not run out, the latest written first."""
    rows = await session.execute(
        select(SlackRateLimit.workspace_id, SlackRateLimit.method, SlackRateLimit.until)
        .where(SlackRateLimit.until > now, SlackRateLimit.method.startswith(APP_REFUSED))
        .order_by(SlackRateLimit.until.desc())
    )
    found = []
    for workspace_id, method, until in rows.all():
        error, _, needed = method.removeprefix(APP_REFUSED).partition(" ")
        found.append(AppRefusal(workspace_id, error, needed or None, until))
    return found


async def lift_app_refusals(session: AsyncSession, *, workspace_ids: Iterable[int]) -> None:
    """Slack accepts the app again in these workspaces."""
    await session.execute(
        delete(SlackRateLimit).where(
            SlackRateLimit.workspace_id.in_(list(workspace_ids)),
            SlackRateLimit.method.startswith(APP_REFUSED),
        )
    )
