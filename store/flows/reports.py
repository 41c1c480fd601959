"""The reports and their CSV downloads, each audited with the report and its range."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from store import workspaces
from store.flows import Visit
from store.reports import DateRange

#: `build(session, workspace_id=, period=, working=, now=, viewer=)`: a report, or one of
#: its tables, counting only the incidents `viewer` may see.
Build = Callable[..., Awaitable[Any]]


async def view_report(
    session: AsyncSession, *, visit: Visit, build: Build, period: DateRange, action: str, name: str
) -> tuple[Any, str]:
    """What `build` counts for the visitor's school, and the school's name; audited as
    `action`, naming the report (or table) and the range."""
    workspace_id = visit.staff.workspace_id
    working = visit.setup.school.working_time
    data = await build(
        session,
        workspace_id=workspace_id,
        period=period,
        working=working,
        now=visit.now,
        viewer=visit.staff,  # an allegation the visitor may not see is not counted
    )
    school = await workspaces.school_name(session, workspace_id=workspace_id)
    visit.trail(session).add(action, detail=f"{name}; {period.key}")
    return data, school
