"""Notices to the key-holders about Vigil itself, sent through the outbox like alerts.

They say what happened to the service (Slack refusing the app for a while), never
anything about a pupil or a concern; the text is built in `store.messages`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import messages, outbox
from store.access import is_keyholder
from store.models import Staff, utcnow


async def tell_keyholders_slack_restored(
    session: AsyncSession,
    *,
    workspace_id: int,
    error: str,
    since: dt.datetime,
    now: dt.datetime | None = None,
) -> int:
    """Queue a DM to every active key-holder: Slack refused Vigil since `since` (with
    `error`) and works again. Returns how many were queued."""
    now = now or utcnow()
    payload = messages.slack_restored(error=error, since=since)
    staff = await session.scalars(
        select(Staff).where(
            Staff.workspace_id == workspace_id,
            Staff.active.is_(True),
            Staff.slack_user_id.is_not(None),
        )
    )
    keyholders = [s for s in staff if is_keyholder(s.role_set)]
    return outbox.dm_each(
        session, workspace_id=workspace_id, people=keyholders, payload=payload, now=now
    )
