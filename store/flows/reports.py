"""The reports and their CSV downloads, each audited with the report and its range."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, workspaces
from store.models import Staff
from store.reports import DateRange
from store.workdays import WorkingTime

#: `build(session, workspace_id=, period=, working=, now=)`: a report, or one of its tables.
Build = Callable[..., Awaitable[Any]]


async def view_report(
    session: AsyncSession,
    *,
    viewer: Staff,
    build: Build,
    period: DateRange,
    working: WorkingTime,
    detail: str,
    action: str,
    ip: str | None,
    now: dt.datetime,
) -> tuple[Any, str]:
    """What `build` counts for the viewer's school, and the school's name; audited as
    `action`, with `detail` (which report) and the range."""
    data = await build(
        session, workspace_id=viewer.workspace_id, period=period, working=working, now=now
    )
    school = await workspaces.school_name(session, workspace_id=viewer.workspace_id)
    audit.record(session, action=action, actor=viewer, ip=ip, detail=f"{detail}; {period.key}")
    return data, school
