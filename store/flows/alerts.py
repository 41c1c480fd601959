"""Mark as read in Slack: the receipt, the DM updated in place, and the audit entry.

(Marking an incident's alerts read in the web view is `store.flows.incidents`.)
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from store import alerts, audit
from store.alerts import ReadResult


async def read_in_slack(
    session: AsyncSession,
    *,
    alert_id: int,
    workspace_id: int,
    slack_user_id: str,
    public_url: str,
) -> ReadResult:
    """The alert's own recipient read it; AlertNotFound for anyone else."""
    result = await alerts.mark_read(
        session,
        alert_id=alert_id,
        workspace_id=workspace_id,
        slack_user_id=slack_user_id,
        public_url=public_url,
    )
    if result.newly_read:
        trail = audit.Trail(session, workspace_id=workspace_id, actor_slack_id=slack_user_id)
        trail.add("alert.read", incident_id=result.incident_id, detail="slack")
    return result
