"""Incident numbers under concurrent filing: each number once, and any number taken by a
filing that never committed is recorded with its reason (PostgreSQL), so the numbers
stay explainable; on SQLite a rolled-back filing gives its number back."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from store import incidents
from store.db import is_sqlite
from store.models import Incident, Workspace
from testing.harness import Harness

from ..support.records import pupil_by_upn, staff_member
from ..support.school import CLASS_TEACHER, PUPIL_4B, TA, TEACHER


class Abandoned(Exception):
    """The filing's transaction fails after the concern was written (a lost connection)."""


async def test_concurrent_filings_get_unique_numbers_and_lost_ones_are_recorded(
    school: Harness, db_url: str
) -> None:
    factory = school.server.factory
    authors = [await staff_member(school, who) for who in (TEACHER, CLASS_TEACHER, TA)]
    pupil = await pupil_by_upn(school, PUPIL_4B)
    async with factory() as db:
        workspace = await db.get(Workspace, school.workspace_id)
    assert workspace is not None

    async def file(index: int) -> int:
        async with factory() as db, db.begin():
            filed = await incidents.submit_concern(
                db,
                workspace_id=workspace.id,
                author=authors[index % len(authors)],
                draft=incidents.ConcernDraft(
                    pupil_id=str(pupil.id),
                    narrative=f"Concern {index} of a busy morning.",
                    categories=["Behaviour"],
                    parents_contacted="yes",
                ),
                catalogue=school.server.catalogue,
                cipher=school.server.cipher,
                public_url=school.settings.public_url,
                now=school.now(),
            )
            if index % 4 == 3:
                raise Abandoned(filed.number)
            return filed.number

    results = await asyncio.gather(*(file(i) for i in range(12)), return_exceptions=True)
    for r in results:
        if isinstance(r, Exception) and not isinstance(r, Abandoned):
            raise r
    committed = [r for r in results if isinstance(r, int)]
    lost = [int(r.args[0]) for r in results if isinstance(r, Abandoned)]
    assert len(committed) == 9 and len(lost) == 3, results
    assert len(set(committed)) == 9

    async with factory() as db:
        stored = list(
            await db.scalars(
                select(Incident.number).where(Incident.workspace_id == school.workspace_id)
            )
        )
        later = school.now() + dt.timedelta(minutes=1)
        gaps = await incidents.number_gaps(db, workspace_id=school.workspace_id, before=later)
    assert sorted(stored) == sorted(committed)
    if is_sqlite(db_url):
        # One writer at a time: a rolled-back filing's number is given to the next one.
        assert gaps == []
        assert sorted(stored) == list(range(1, 10))
    else:
        # Each lost number is recorded, with why; with the filed ones they leave no hole.
        assert sorted(number for number, _ in gaps) == sorted(lost)
        assert {reason for _, reason in gaps} == {incidents.NEVER_FILED}
        assert sorted([*stored, *lost]) == list(range(1, 13))
        # Before the moment a number was taken, it is not yet called a gap.
        async with factory() as db:
            early = school.now() - dt.timedelta(minutes=1)
            assert (
                await incidents.number_gaps(db, workspace_id=school.workspace_id, before=early)
                == []
            )
