"""Filing a concern from the Slack modal: once per modal, only by staff (DESIGN §2.2)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from store import incidents
from store.flows import Setup
from store.incidents import ConcernDraft, FiledConcern, InvalidConcern
from store.models import Staff

NOT_STAFF = "You are not on Vigil's staff list: ask the school office to add you."


async def file_from_slack(
    session: AsyncSession,
    *,
    workspace_id: int,
    author: Staff | None,
    draft: ConcernDraft,
    setup: Setup,
    alert_channel: str | None,
    slack_view_id: str,
    now: dt.datetime | None = None,
) -> FiledConcern | None:
    """File the modal's draft (`store.incidents.submit_concern`); None when this modal was
    filed already (Slack may resend), InvalidConcern when it cannot be."""
    if await incidents.filed_from_view(session, slack_view_id=slack_view_id):
        return None
    # Active staff of this workspace (`handlers.context.staff_of`), so it exists.
    if author is None or author.workspace_id != workspace_id:
        raise InvalidConcern({"pupil": NOT_STAFF})
    return await incidents.submit_concern(
        session,
        workspace_id=workspace_id,
        author=author,
        draft=draft,
        catalogue=setup.catalogue,
        cipher=setup.cipher,
        public_url=setup.public_url,
        alert_channel=alert_channel,
        slack_view_id=slack_view_id,
        now=now,
        school=setup.school,
    )
