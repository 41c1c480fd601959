"""A past range's figures, kept in memory per process (issue 17: the term report of a term
that has ended was counted again on every request).

What is kept: the reports page's counts by category and month, by year group, and its
late alerts, for one workspace, one range, one school calendar and one viewer (what a
report counts is what its viewer may see, `store.access.in_view`: the figures are kept
per viewer, never shared between people). Only for a range whose every alert deadline has
passed (`ended`): its counts no longer change with the time of asking, and a read of one
of its alerts changes only who is still unread, counted afresh on each request
(`store.reports.late_alerts.unread_by_person`). The referrals still open are never kept:
they are about now.

Each use compares a `stamp` read from the database in one cheap statement, about the
report's own workspace only (a trust's schools share one database: another school's
records never make this school's figures be counted again): its newest concern, action,
alert and pupil correction (every process's new concern, action, re-categorisation,
alert, invitation or correction at the school raises one; each row carries its concern's
workspace), each one backward scan of an index stopped at its first row, however many
schools there are (a concern's highest number, given in order per school:
`uq_incidents_workspace_number`; the others' highest id: (workspace_id, id), migration
0026); the workspace's roster version (pupils' year groups); its staff (names in the late
alerts); how many concerns happened and alerts were sent in the range (a destroyed record
lowers them); and the allegations about adults the viewer may see now (a key-holder sees
every other concern of the school; an alert or invitation withdrawn, or an allegation
about the viewer, changes this list). A stamp that differs means the figures are counted
again. So another process's change is seen at the next request, and nothing is ever
counted to someone who may not see it.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import BindParameter, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.access import is_keyholder, visible_allegation_ids
from store.db import bind_of
from store.models import (
    Alert,
    Incident,
    IncidentAction,
    IncidentPupilCorrection,
    Staff,
    UTCDateTime,
    Workspace,
)
from store.reports.periods import DateRange
from store.workdays import WorkingTime

MAX_ENTRIES = 256  # per database: a few ranges for each key-holder of each school

_KEPT: WeakKeyDictionary[Any, OrderedDict[Hashable, tuple[Hashable, Any]]] = WeakKeyDictionary()


def _stamp_statement() -> Select[Any]:
    """The stamp's one statement, built once (its parameters: workspace, range)."""
    workspace_id: BindParameter[int] = bindparam("workspace_id")
    start, end = bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())

    def scalar(query: Select[Any]) -> Any:
        return query.correlate(None).scalar_subquery()

    def newest(column: Any, workspace: Any) -> Any:
        """The workspace's highest `column`: the first row of a backward scan of a
        (workspace_id, column) index (PostgreSQL's and SQLite's max() both do that)."""
        return scalar(select(func.max(column)).where(workspace == workspace_id))

    return select(
        newest(Incident.number, Incident.workspace_id),
        newest(IncidentAction.id, IncidentAction.workspace_id),
        newest(Alert.id, Alert.workspace_id),
        newest(IncidentPupilCorrection.id, IncidentPupilCorrection.workspace_id),
        scalar(select(Workspace.roster_version).where(Workspace.id == workspace_id)),
        scalar(select(func.max(Staff.updated_at)).where(Staff.workspace_id == workspace_id)),
        scalar(select(func.count()).select_from(Staff).where(Staff.workspace_id == workspace_id)),
        scalar(
            select(func.count())
            .select_from(Incident)
            .where(
                Incident.workspace_id == workspace_id,
                Incident.happened_at >= start,
                Incident.happened_at < end,
            )
        ),
        scalar(
            select(func.count())
            .select_from(Alert)
            .where(
                Alert.workspace_id == workspace_id,
                Alert.created_at >= start,
                Alert.created_at < end,
            )
        ),
    )


_STAMP = _stamp_statement()


def ended(period: DateRange, *, working: WorkingTime, now: dt.datetime) -> bool:
    """Whether the range is over and every alert sent in it is past its deadline (one
    working day), so its counts no longer change with the time of asking."""
    _start, end = period.bounds(working.zone)
    return now >= working.add_working_days(end, 1)


def keeps_for(viewer: Staff | None) -> bool:
    """Whose figures are kept: an active key-holder's (who sees every concern but the
    allegations the stamp lists). Anyone else's are counted each time."""
    return viewer is not None and viewer.active and is_keyholder(viewer.role_set)


async def stamp(
    session: AsyncSession,
    *,
    workspace_id: int,
    period: DateRange,
    working: WorkingTime,
    viewer: Staff,
) -> Hashable:
    """What the kept figures were counted against (see the module's docstring)."""
    start, end = period.bounds(working.zone)
    row = (
        await session.execute(_STAMP, {"workspace_id": workspace_id, "start": start, "end": end})
    ).one()
    allegations = tuple(await session.scalars(visible_allegation_ids(viewer)))
    return (*row, allegations)


def _kept(session: AsyncSession) -> OrderedDict[Hashable, tuple[Hashable, Any]]:
    bind = bind_of(session)
    engine = bind.sync_engine
    found = _KEPT.get(engine)
    if found is None:
        found = _KEPT[engine] = OrderedDict()
    return found


def get(session: AsyncSession, key: Hashable, current: Hashable) -> Any | None:
    """The figures kept under `key`, if they were counted against `current`."""
    kept = _kept(session)
    found = kept.get(key)
    if found is None or found[0] != current:
        return None
    kept.move_to_end(key)
    return found[1]


def put(session: AsyncSession, key: Hashable, current: Hashable, value: Any) -> None:
    """Keep `value`, counted against `current`, under `key` (the oldest go first)."""
    kept = _kept(session)
    kept[key] = (current, value)
    kept.move_to_end(key)
    while len(kept) > MAX_ENTRIES:
        kept.popitem(last=False)


def forget() -> None:
    """Drop every kept figure of this process (a record destroyed here)."""
    for kept in list(_KEPT.values()):
        kept.clear()
