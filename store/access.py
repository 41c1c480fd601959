"""Who is who: staff roles and key-holders. The one place these rules live."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Select, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Alert, Incident, IncidentInvite, Staff

ROLES = ("keyholder", "head", "dsl", "slt", "pastoral", "teacher", "staff", "chair")

# The safeguarding team: they see every incident and may use restricted categories.
# A DSL is always a key-holder; anyone else is one when given the `keyholder` role.
KEYHOLDER_ROLES = frozenset({"keyholder", "dsl"})


def is_keyholder(roles: Iterable[str]) -> bool:
    """True for members of the safeguarding team."""
    return not KEYHOLDER_ROLES.isdisjoint(roles)


# -- who may see an incident (DESIGN §4) ------------------------------------------------
#
# An incident is visible to its author, the staff alerted on it or invited later, and
# every key-holder of its workspace. To anyone else it does not exist: every page and
# export asks `visible_incidents` and answers 404 when it finds nothing.


def visible_incidents(viewer: Staff) -> Select[Incident]:
    """A query of the incidents `viewer` may see (the one access rule)."""
    query = select(Incident).where(Incident.workspace_id == viewer.workspace_id)
    if not viewer.active:
        return query.where(false())
    if is_keyholder(viewer.role_set):
        return query
    alerted = select(Alert.id).where(
        Alert.incident_id == Incident.id, Alert.recipient_id == viewer.id
    )
    invited = select(IncidentInvite.staff_id).where(
        IncidentInvite.incident_id == Incident.id, IncidentInvite.staff_id == viewer.id
    )
    return query.where(or_(Incident.author_id == viewer.id, alerted.exists(), invited.exists()))


async def visible_incident(session: AsyncSession, *, viewer: Staff, number: int) -> Incident | None:
    """The incident with this number if `viewer` may see it; otherwise None (→ 404)."""
    return await session.scalar(visible_incidents(viewer).where(Incident.number == number))
