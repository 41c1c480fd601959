"""Who is who: staff roles and key-holders. The one place these rules live."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Select, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Alert, Incident, IncidentInvite, Staff

ROLES = ("keyholder", "head", "dsl", "slt", "pastoral", "senco", "chair", "teacher", "staff")

# The safeguarding team: they see every incident and may use restricted categories.
# A DSL is always a key-holder; anyone else is one when given the `keyholder` role.
KEYHOLDER_ROLES = frozenset({"keyholder", "dsl"})


def is_keyholder(roles: Iterable[str]) -> bool:
    """True for members of the safeguarding team."""
    return not KEYHOLDER_ROLES.isdisjoint(roles)


# -- who may change a case (issue 12) ---------------------------------------------------
#
# Seeing an incident lets anyone add an action to it. Changing the case itself is for the
# safeguarding team: recording a referral to an agency, its response, closing it or
# snoozing its nudges; withdrawing someone's access; and sharing an incident that has a
# restricted category (anyone who can see an unrestricted one may share it).


def may_change_referrals(roles: Iterable[str]) -> bool:
    """Whether this member of staff may record, answer, close or snooze referrals."""
    return is_keyholder(roles)


def may_share(roles: Iterable[str], *, restricted: bool) -> bool:
    """Whether this member of staff, who can see the incident, may share it onward."""
    return is_keyholder(roles) or not restricted


def may_withdraw(roles: Iterable[str]) -> bool:
    """Whether this member of staff may withdraw someone's access to an incident."""
    return is_keyholder(roles)


# -- who may see an incident (DESIGN §4) ------------------------------------------------
#
# An incident is visible to its author, the staff alerted on it or invited later (unless
# a key-holder withdrew their access), and every key-holder of its workspace. To anyone
# else it does not exist: every page and export asks `visible_incidents` and answers 404
# when it finds nothing.


def visible_incidents(viewer: Staff) -> Select[Incident]:
    """A query of the incidents `viewer` may see (the one access rule)."""
    query = select(Incident).where(Incident.workspace_id == viewer.workspace_id)
    if not viewer.active:
        return query.where(false())
    if is_keyholder(viewer.role_set):
        return query
    # An alert or invitation whose access a key-holder withdrew grants nothing.
    alerted = select(Alert.id).where(
        Alert.incident_id == Incident.id,
        Alert.recipient_id == viewer.id,
        Alert.withdrawn_at.is_(None),
    )
    invited = select(IncidentInvite.staff_id).where(
        IncidentInvite.incident_id == Incident.id,
        IncidentInvite.staff_id == viewer.id,
        IncidentInvite.withdrawn_at.is_(None),
    )
    return query.where(or_(Incident.author_id == viewer.id, alerted.exists(), invited.exists()))


async def visible_incident(session: AsyncSession, *, viewer: Staff, number: int) -> Incident | None:
    """The incident with this number if `viewer` may see it; otherwise None (→ 404)."""
    return await session.scalar(visible_incidents(viewer).where(Incident.number == number))
