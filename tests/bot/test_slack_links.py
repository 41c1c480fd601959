"""Staff imported before Slack was connected are linked to Slack when `vigil serve` starts.

The import without a bot token links nobody ("9 created, 0 rows rejected" said nothing
more); those staff got no alerts and were told they were not on the staff list.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import select

from bot.slack_lookup import make_slack_lookup
from store import roster
from store.models import Staff
from testing.harness import Harness
from testing.school import STAFF, staff_csv
from tests.support.school import TEACHER

NOT_IN_SLACK = "supply.teacher@larkspur.example"


async def slack_ids(harness: Harness) -> dict[str, str | None]:
    async with harness.server.factory() as session:
        rows = (await session.execute(select(Staff.email, Staff.slack_user_id))).all()
    return {email: slack_id for email, slack_id in rows}


async def test_staff_imported_without_slack_are_linked_by_email_when_the_server_starts(
    harness: Harness, tmp_path: Path
) -> None:
    path = tmp_path / "staff.csv"
    path.write_text(staff_csv() + f"{NOT_IN_SLACK},Sam Supply,teacher,3A,\n")
    report = await roster.import_staff(
        harness.server.factory, workspace_id=harness.workspace_id, path=path
    )
    assert report.created == len(STAFF) + 1 and report.unlinked == len(STAFF) + 1
    assert f"{len(STAFF) + 1} members of staff are not linked to Slack" in report.summary()
    assert "`vigil serve` links them by email when it starts" in report.summary()
    assert set((await slack_ids(harness)).values()) == {None}

    await harness.restart()
    deadline = time.monotonic() + 10
    while (await slack_ids(harness))[STAFF[0].email] is None or len(harness.server.tasks):
        assert time.monotonic() < deadline, "staff were not linked after the start"
        await asyncio.sleep(0.05)

    linked = await slack_ids(harness)
    assert {email: linked[email] for email in (p.email for p in STAFF)} == {
        p.email: p.slack_user_id for p in STAFF
    }
    assert linked[NOT_IN_SLACK] is None  # Slack has nobody with that email
    lookups = harness.standin.calls_to("users.lookupByEmail")
    # Each looked up (a lookup Slack answered late may have been tried again).
    assert {c.params["email"] for c in lookups} == {p.email for p in STAFF} | {NOT_IN_SLACK}
    view = await harness.open_concern(TEACHER)  # a teacher Slack knows is staff now
    assert view["callback_id"] == "concern_submit"


async def test_an_import_that_asked_slack_names_staff_slack_does_not_know(
    harness: Harness, tmp_path: Path
) -> None:
    path = tmp_path / "staff.csv"
    path.write_text(staff_csv() + f"{NOT_IN_SLACK},Sam Supply,teacher,3A,\n")
    report = await roster.import_staff(
        harness.server.factory,
        workspace_id=harness.workspace_id,
        path=path,
        lookup_slack_id=make_slack_lookup(harness.server.client),
    )
    assert report.unlinked == 1
    summary = report.summary()
    assert "1 member of staff is not linked to Slack" in summary
    assert "Slack has no account with their email" in summary
