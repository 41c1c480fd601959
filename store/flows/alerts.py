"""Mark as read in Slack: the receipt, the DM updated in place, and the audit entry.

(Marking an incident's alerts read in the web view is `store.flows.incidents`.)
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from store import alerts, audit
from store.alerts import AlertNotFound, ReadResult


async def read_in_slack(
    session: AsyncSession,
    *,
    alert_id: int | None,
    workspace_id: int,
    slack_user_id: str,
    public_url: str,
) -> ReadResult | None:
    """The alert's own recipient read it; None for anyone else, or an alert that is not
    there (withdrawn, unknown, not a number): the refusal is audited."""
    trail = audit.Trail(session, workspace_id=workspace_id, actor_slack_id=slack_user_id)
    try:
        if alert_id is None:
            raise AlertNotFound(alert_id)
        result = await alerts.mark_read(
            session,
            alert_id=alert_id,
            workspace_id=workspace_id,
            slack_user_id=slack_user_id,
            public_url=public_url,
        )
    except AlertNotFound:
        detail = f"alert {alert_id}: not theirs or not there" if alert_id else "no alert id"
        trail.add("alert.read", audit.REFUSED, detail=f"slack; {detail}")
        return None
    if result.newly_read:
        trail.add("alert.read", incident_id=result.incident_id, detail="slack")
    return result
