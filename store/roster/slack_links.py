"""Linking staff to their Slack accounts by email, after the roster was imported.

A roster imported before Slack was connected (no `SLACK_BOT_TOKEN`, no `slack_user_id`
column) links nobody: those staff get no alerts and `/concern` tells them they are not on
the staff list. `vigil serve` calls `link_unlinked_staff` at start, in the background,
with a `users.lookupByEmail` lookup; the import's report says how many remain.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from store.db import SessionFactory, transaction
from store.models import Staff
from store.roster.staff_import import SlackLookup
from store.staff import unlinked_staff


@dataclass(frozen=True)
class LinkReport:
    """What linking did: staff linked, staff Slack has no account for, ids already taken."""

    linked: int = 0
    not_found: int = 0
    taken: int = 0

    @property
    def still_unlinked(self) -> int:
        """Staff left without a Slack account."""
        return self.not_found + self.taken


async def link_unlinked_staff(
    factory: SessionFactory, *, workspace_id: int, lookup: SlackLookup
) -> LinkReport:
    """Find each unlinked active member of staff's Slack id by email and record it.

    An id that another member of staff of the workspace already has is left alone (the
    roster import reports such clashes); a lookup error stops the run, keeping what was
    linked so far.
    """
    async with factory() as session:
        emails = [
            (staff.id, staff.email)
            for staff in await unlinked_staff(session, workspace_id=workspace_id)
        ]
    linked = not_found = taken = 0
    for staff_id, email in emails:
        slack_id = await lookup(email)
        if slack_id is None:
            not_found += 1
            continue
        async with transaction(factory) as session:
            holder = await session.scalar(
                select(Staff.id).where(
                    Staff.workspace_id == workspace_id, Staff.slack_user_id == slack_id
                )
            )
            staff = await session.get(Staff, staff_id)
            if holder is not None:
                taken += 1
            elif staff is not None and staff.slack_user_id is None:
                staff.slack_user_id = slack_id
                linked += 1
    return LinkReport(linked=linked, not_found=not_found, taken=taken)
