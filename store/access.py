"""Who is who: staff roles and key-holders. The one place these rules live."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased, joinedload

from store.enums import AlertReason
from store.models import Alert, Incident, IncidentAdult, IncidentInvite, Staff

ROLES = (
    "keyholder",
    "head",
    "dsl",
    "slt",
    "pastoral",
    "senco",
    "teacher",
    "staff",
    "chair",
    "trust_lead",
)

# The safeguarding team: they see every incident and may use restricted categories.
# A DSL is always a key-holder; anyone else is one when given the `keyholder` role.
KEYHOLDER_ROLES = frozenset({"keyholder", "dsl"})


def is_keyholder(roles: Iterable[str]) -> bool:
    """True for members of the safeguarding team."""
    return not KEYHOLDER_ROLES.isdisjoint(roles)


# -- a school's settings, and the trust's figures (issue 17) -------------------------------
#
# A school's key-holders edit its settings page (`store.schools.EDITABLE`). A trust lead
# (the `trust_lead` role, given in the staff roster of any one of the trust's schools;
# one deployment is one trust) sees the trust page: counts per school and category, never
# a narrative, a pupil or a name. Their own school's concerns they see by the rule below,
# like anyone else: only what they are alerted on or shown. Nothing else grants them more.

TRUST_LEAD = "trust_lead"


def may_edit_settings(staff: Staff) -> bool:
    """Whether `staff` may change their school's settings page: its key-holders."""
    return staff.active and is_keyholder(staff.role_set)


def may_see_trust(staff: Staff) -> bool:
    """Whether `staff` may see the trust's figures (`store.trust`): a trust lead."""
    return staff.active and TRUST_LEAD in staff.role_set


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


async def may_change_case(session: AsyncSession, *, staff: Staff, incident_id: int) -> bool:
    """Whether `staff` may change this incident's referrals or withdraw access to it: a
    key-holder, or the allegations manager of an allegation (who may hold no key)."""
    if may_change_referrals(staff.role_set):
        return True
    found = await session.scalar(_MANAGES, {"incident_id": incident_id, "staff_id": staff.id})
    return found is not None


_MANAGES = select(Alert.id).where(  # built once: `may_change_case`'s statement
    Alert.incident_id == bindparam("incident_id"),
    Alert.recipient_id == bindparam("staff_id"),
    Alert.action_id.is_(None),
    Alert.reason == AlertReason.ALLEGATIONS,
)


# -- who may see an incident (DESIGN §4) ------------------------------------------------
#
# An incident is visible to its author, the staff alerted on it or invited later (unless
# a key-holder withdrew their access), and every key-holder of its workspace. An
# allegation about an adult (`incident_adults`) is visible to its author and the people
# alerted on it or invited only, key-holders included, and never to the adult named,
# whatever else would let them see it. To anyone else it does not exist: every page,
# list, count and export asks `visible_incidents` (or `visible_incident_ids`) and answers
# 404 when it finds nothing.


def visible_incidents(viewer: Staff) -> Select[Incident]:
    """A query of the incidents `viewer` may see (the one access rule)."""
    if not viewer.active:
        return select(Incident).where(false())
    return _visible_to(viewer.workspace_id, viewer.id, keyholder=is_keyholder(viewer.role_set))


def _visible_to(workspace_id: Any, viewer_id: Any, *, keyholder: bool) -> Select[Incident]:
    """The rule for an active member of staff: `workspace_id` and `viewer_id` are their
    values, or bound parameters for a statement built once (`visible_incident`)."""
    query = select(Incident).where(Incident.workspace_id == workspace_id)
    about_viewer = select(IncidentAdult.incident_id).where(
        IncidentAdult.incident_id == Incident.id, IncidentAdult.staff_id == viewer_id
    )
    query = query.where(~about_viewer.exists())
    # An alert or invitation whose access a key-holder withdrew grants nothing.
    alerted = select(Alert.id).where(
        Alert.incident_id == Incident.id,
        Alert.recipient_id == viewer_id,
        Alert.withdrawn_at.is_(None),
    )
    invited = select(IncidentInvite.staff_id).where(
        IncidentInvite.incident_id == Incident.id,
        IncidentInvite.staff_id == viewer_id,
        IncidentInvite.withdrawn_at.is_(None),
    )
    personal = or_(Incident.author_id == viewer_id, alerted.exists(), invited.exists())
    if keyholder:
        allegation = select(IncidentAdult.incident_id).where(
            IncidentAdult.incident_id == Incident.id
        )
        return query.where(or_(~allegation.exists(), personal))
    return query.where(personal)


def in_view(
    incident_id: ColumnElement[Any] | InstrumentedAttribute[Any], viewer: Staff | None
) -> ColumnElement[bool]:
    """SQL: the incident `incident_id` names is one `viewer` may see (always, for None:
    a count that is nobody's view, such as the benchmarks')."""
    if viewer is None:
        return true()
    return incident_id.in_(visible_incident_ids(viewer))


def not_about(
    incident_id: InstrumentedAttribute[Any], staff_id: InstrumentedAttribute[Any]
) -> ColumnElement[bool]:
    """SQL: the incident is not an allegation about that member of staff (their own alert
    lists never show one, even if an alert to them existed)."""
    return ~(
        select(IncidentAdult.incident_id)
        .where(IncidentAdult.incident_id == incident_id, IncidentAdult.staff_id == staff_id)
        .exists()
    )


def is_allegation(incident_id: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    """SQL: the incident is an allegation about an adult."""
    return (
        select(IncidentAdult.incident_id).where(IncidentAdult.incident_id == incident_id).exists()
    )


def visible_incident_ids(viewer: Staff) -> Select[tuple[int]]:
    """The ids of the incidents `viewer` may see, for `Incident.id.in_(...)` in the lists,
    counts and exports the key-holders' pages show."""
    return visible_incidents(viewer).with_only_columns(Incident.id)


def visible_allegation_ids(viewer: Staff) -> Select[tuple[int]]:
    """The ids of the allegations about adults `viewer` may see (few in any school): what a
    key-holder's view holds beyond every other concern of their workspace, so what a
    cached count must be kept per (`store.reports.cache`)."""
    adult = aliased(IncidentAdult)  # apart from the rule's own subqueries of the table
    return (
        visible_incident_ids(viewer)
        .join(adult, adult.incident_id == Incident.id)
        .order_by(Incident.id)
    )


def _visible_by_number(*, keyholder: bool) -> Select[Incident]:
    return (
        _visible_to(bindparam("workspace_id"), bindparam("viewer_id"), keyholder=keyholder)
        .where(Incident.number == bindparam("number"))
        .options(
            joinedload(Incident.pupils),
            joinedload(Incident.categories),
            joinedload(Incident.agencies),
        )
    )


# `visible_incident`'s statement for a key-holder and for anyone else, built once (a
# statement built for each request costs more CPU than the database spends on it).
_VISIBLE_BY_NUMBER = {
    keyholder: _visible_by_number(keyholder=keyholder) for keyholder in (True, False)
}


async def visible_incident(session: AsyncSession, *, viewer: Staff, number: int) -> Incident | None:
    """The incident with this number if `viewer` may see it; otherwise None (→ 404).

    Its pupils, categories and agencies come in the same statement (joined, not one
    query each): a few rows of each, and every page of an incident shows them."""
    if not viewer.active:
        return None
    found = await session.scalars(
        _VISIBLE_BY_NUMBER[is_keyholder(viewer.role_set)],
        {"workspace_id": viewer.workspace_id, "viewer_id": viewer.id, "number": number},
    )
    return found.unique().one_or_none()


async def share_refusal(
    session: AsyncSession, *, sharer: Staff, incident: Incident, guest: Staff
) -> str | None:
    """Why `sharer` may not share `incident` with `guest` (None: they may). An allegation
    is shared only by its allegations manager (those alerted as such), and never with the
    adult it is about."""
    adult = await session.get(IncidentAdult, incident.id)
    if adult is None:
        return None
    if adult.staff_id is not None and guest.id == adult.staff_id:
        return "This concern cannot be shared with the person it is about."
    if not await manages_allegation(session, staff=sharer, incident=incident):
        return "Only the allegations manager can share a concern about an adult."
    return None


async def alert_refusal(
    session: AsyncSession, *, incident: Incident, staff_ids: Iterable[int]
) -> str | None:
    """Why these people may not be alerted about an action on `incident` (None: they may):
    never the adult an allegation is about."""
    adult = await session.get(IncidentAdult, incident.id)
    if adult is not None and adult.staff_id is not None and adult.staff_id in set(staff_ids):
        return "The person this concern is about cannot be alerted about it."
    return None


async def manages_allegation(session: AsyncSession, *, staff: Staff, incident: Incident) -> bool:
    """Whether `staff` is the allegations manager of `incident` (alerted as such)."""
    found = await session.scalar(
        select(Alert.id).where(
            Alert.incident_id == incident.id,
            Alert.recipient_id == staff.id,
            Alert.action_id.is_(None),
            Alert.reason == AlertReason.ALLEGATIONS,
        )
    )
    return found is not None
