"""Allegations about an adult (DESIGN §5, KCSIE part 4): who is told, and the LADO.

A concern about a member of staff, a volunteer or a visitor goes only to the allegations
manager (`[allegations]`: by default staff with the `head` role; when the adult named is
a head, staff with the `chair` role), never to the adult named whatever their roles, and
to no class teacher or key-holder by rule. Who may then see it is `store.access`.

Filing one also opens a LADO consultation: a referral to `[allegations] lado_agency` in
the CONSULT state, due in that agency's timescale and nudged (to the manager, never to the
DSLs in general: the adult may be one) until it is recorded as held or as not needed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import messages, outbox
from store.access import is_allegation, is_keyholder
from store.alert_rules import Recipient
from store.crypto import Cipher, bind
from store.enums import AdultKind, AlertReason, ReferralEventKind, ReferralStatus
from store.models import (
    Incident,
    IncidentAdult,
    Nudge,
    Referral,
    ReferralEvent,
    Staff,
)
from store.nudges import NudgeDay, Nudger, nudge_due
from store.school_config import Allegations, SchoolConfig
from store.staff import AnyStaff, StaffLike

log = structlog.get_logger(__name__)

CONSULT, AWAITING = ReferralStatus.CONSULT, ReferralStatus.AWAITING
CATEGORY = "Allegation about an adult"  # what the alert DM says it is (never who)
NUDGE_BATCH = 200
_CONSULT_LITERAL: BindParameter[str] = bindparam("consult", CONSULT.value, literal_execute=True)


def managers(
    staff: Iterable[AnyStaff], *, config: Allegations, adult_id: int | None
) -> list[AnyStaff]:
    """The allegations manager(s) among `staff`: the configured roles, or the roles for an
    allegation about a head; never the adult named. Empty if nobody has those roles."""
    people = list(staff)
    adult = next((s for s in people if s.id == adult_id), None) if adult_id else None
    roles = config.manager_when_head if adult and "head" in adult.role_set else config.manager
    return [s for s in people if s.id != adult_id and not set(roles).isdisjoint(s.role_set)]


def allegation_recipients(
    *,
    author_id: int,
    adult_id: int | None,
    manager_ids: Sequence[int],
    keyholder_ids: Iterable[int],
) -> list[Recipient]:
    """Who is alerted about an allegation (pure): the managers; if there are none, the
    key-holders. Never the adult named, never the author, each once."""
    chosen = list(manager_ids)
    if not [i for i in chosen if i not in (author_id, adult_id)]:
        chosen = list(keyholder_ids)
    recipients: list[Recipient] = []
    seen = {author_id} | ({adult_id} if adult_id else set())
    for staff_id in chosen:
        if staff_id not in seen:
            seen.add(staff_id)
            recipients.append(Recipient(staff_id, AlertReason.ALLEGATIONS))
    return recipients


async def recipients_for(
    session: AsyncSession,
    *,
    staff: Mapping[int, StaffLike],
    author: Staff,
    adult_id: int | None,
    config: Allegations,
) -> list[Recipient]:
    """`allegation_recipients` for the active `staff` (by id); a warning (ids only) when no
    manager exists and the key-holders are told instead."""
    found = managers(staff.values(), config=config, adult_id=adult_id)
    manager_ids = [s.id for s in found if s.id != author.id]
    if not manager_ids:
        log.warning(
            "allegations.no_manager", workspace=author.workspace_id, roles=list(config.manager)
        )
    return allegation_recipients(
        author_id=author.id,
        adult_id=adult_id,
        manager_ids=manager_ids,
        keyholder_ids=[i for i, s in staff.items() if is_keyholder(s.role_set)],
    )


ABOUT_PUPIL = "pupil"
ABOUT_CHOICES = (ABOUT_PUPIL, *AdultKind)
ADULT_NAME_MAX = 100
STAFF_PREFIX, NAME_PREFIX = "staff:", "name:"  # the `adult` option values


@dataclass(frozen=True)
class AdultChoice:
    """The adult as the modal gave them: a staff id (raw) or a typed name."""

    kind: AdultKind
    staff_id: str | None
    name: str


def check_adult(about: str | None, adult: str | None) -> tuple[AdultChoice | None, dict[str, str]]:
    """Read the `about_adult` and `adult` fields (pure): the adult chosen, if the concern
    is about one, and errors by field. `adult` is "staff:<id>" or "name:<typed name>"."""
    adult = (adult or "").strip()
    if about in (None, "", ABOUT_PUPIL):
        if adult:
            return None, {
                "about_adult": "You named an adult: say whether they are a member of staff, "
                "a volunteer or a visitor, or remove the name."
            }
        return None, {}
    if about not in ABOUT_CHOICES:
        return None, {"about_adult": "Choose who the concern is about."}
    kind = AdultKind(about)
    if adult.startswith(STAFF_PREFIX):
        staff_id = adult.removeprefix(STAFF_PREFIX).strip()
        return AdultChoice(kind, staff_id, ""), {}
    name = " ".join(adult.removeprefix(NAME_PREFIX).split())
    if not name:
        return None, {"adult": "Choose the member of staff, or type the adult's name."}
    if len(name) > ADULT_NAME_MAX or not _storable(name):
        return None, {"adult": f"Type the adult's name in at most {ADULT_NAME_MAX} characters."}
    return AdultChoice(kind, None, name), {}


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


async def adult_of(session: AsyncSession, *, incident_id: int) -> IncidentAdult | None:
    """The adult an incident is an allegation about, if it is one."""
    return await session.get(IncidentAdult, incident_id)


KIND_LABELS = {
    AdultKind.STAFF: "A member of staff",
    AdultKind.VOLUNTEER: "A volunteer",
    AdultKind.VISITOR: "A visitor",
}


async def adult_line(session: AsyncSession, *, incident_id: int, cipher: Cipher) -> str | None:
    """Who an allegation is about, for its page ("A member of staff: <name>"); None if the
    incident is not one. Decrypted here for `store.flows.incidents.incident_page` only."""
    return await line_of(
        session, adult=await adult_of(session, incident_id=incident_id), cipher=cipher
    )


async def line_of(
    session: AsyncSession, *, adult: IncidentAdult | None, cipher: Cipher
) -> str | None:
    """`adult_line`, given the incident's `adult_of` (already read by the caller)."""
    if adult is None:
        return None
    if adult.staff_id is not None:
        person = await session.get(Staff, adult.staff_id)
        name = person.name if person else "a member of staff"
    else:
        name = (
            cipher.decrypt(adult.name_ct, bind(IncidentAdult.name_ct, adult.incident_id))
            if adult.name_ct
            else "not named"
        )
    return f"{KIND_LABELS.get(AdultKind(adult.kind), 'An adult')}: {name}"


# -- the LADO consultation ------------------------------------------------------------------


async def open_consultation(
    session: AsyncSession,
    *,
    incident: Incident,
    author: Staff,
    config: SchoolConfig,
    now: dt.datetime,
) -> Referral:
    """A consultation with the LADO agency, due in its timescale from `now`."""
    # The configuration refuses a lado_agency it does not list; unnamed, it may be unlisted.
    agency = config.agency(config.allegations.lado_agency) or config.allegations.lado_default
    referral = Referral(
        workspace_id=incident.workspace_id,
        incident_id=incident.id,
        agency=agency.name,
        referred_at=now,
        timescale=agency.timescale.describe(),
        due_at=agency.timescale.due(now, config.working_time),
        status=CONSULT,
        created_by_id=author.id,
        created_at=now,
    )
    session.add(referral)
    await session.flush()
    session.add(
        ReferralEvent(
            referral_id=referral.id,
            kind=ReferralEventKind.REFERRED,
            at=now,
            actor_id=author.id,
            detail=f"consultation due by {agency.timescale.describe()}",
        )
    )
    return referral


async def nudge_consultations(
    session: AsyncSession,
    *,
    config: SchoolConfig,
    public_url: str,
    now: dt.datetime | None = None,
    limit: int = NUDGE_BATCH,
    workspace_id: int | None = None,
) -> int:
    """Nudge the allegations manager(s) about LADO consultations past due, and about any
    other referral on an allegation that waits past due, once per working day each (like
    `store.referrals.nudge_overdue`, which leaves allegations alone; both through
    `store.nudges.nudge_due`). Returns how many were nudged."""
    return await nudge_due(
        session,
        _OverdueConsultations(config, public_url),
        working=config.working_time,
        now=now,
        limit=limit,
        workspace_id=workspace_id,
    )


@dataclass(frozen=True)
class _ConsultationNudge:
    overdue_days: int
    people: list[Staff]
    payload: messages.Message


class _OverdueConsultations(Nudger[Referral, _ConsultationNudge]):
    model = Referral
    failed_event, row_name = "allegations.nudge_failed", "referral"

    def __init__(self, config: SchoolConfig, public_url: str) -> None:
        self.config, self.public_url = config, public_url

    def due(self, day: NudgeDay) -> Sequence[ColumnElement[bool]]:
        return (
            or_(
                Referral.status == _CONSULT_LITERAL,
                and_(Referral.status == AWAITING, is_allegation(Referral.incident_id)),
            ),
            Referral.due_at <= day.now,
        )

    def order(self) -> Sequence[Any]:
        return (Referral.due_at, Referral.id)

    async def plan(
        self, session: AsyncSession, row: Referral, day: NudgeDay
    ) -> _ConsultationNudge | None:
        incident = await session.get(Incident, row.incident_id)
        adult = await adult_of(session, incident_id=row.incident_id)
        if incident is None:
            return None
        staff = {
            s.id: s
            for s in await session.scalars(
                select(Staff).where(Staff.workspace_id == row.workspace_id, Staff.active.is_(True))
            )
        }
        adult_id = adult.staff_id if adult else None
        people = [
            staff[r.staff_id]
            for r in allegation_recipients(
                author_id=0,  # the author is not told: the manager owns the consultation
                adult_id=adult_id,
                manager_ids=[
                    s.id
                    for s in managers(
                        staff.values(), config=self.config.allegations, adult_id=adult_id
                    )
                ],
                keyholder_ids=[i for i, s in staff.items() if is_keyholder(s.role_set)],
            )
            if staff[r.staff_id].slack_user_id
        ]
        overdue_days = day.working.working_days_between(row.due_at, day.now)
        payload = (
            messages.consultation_nudge(
                number=incident.number,
                agency=row.agency,
                overdue_days=overdue_days,
                url=messages.referral_url(self.public_url, incident.number, row.id),
            )
            if row.status == CONSULT
            else messages.nudge(
                referral_id=row.id,
                number=incident.number,
                agency=row.agency,
                overdue_days=overdue_days,
                public_url=self.public_url,
            )
        )
        return _ConsultationNudge(overdue_days, people, payload)

    def send(
        self, session: AsyncSession, row: Referral, day: NudgeDay, plan: _ConsultationNudge
    ) -> None:
        session.add(
            Nudge(
                referral_id=row.id,
                work_day=day.today,
                overdue_days=plan.overdue_days,
                recipients=len(plan.people),
                escalated=False,
                created_at=day.now,
            )
        )
        session.add(
            ReferralEvent(
                referral_id=row.id,
                kind=ReferralEventKind.NUDGED,
                at=day.now,
                detail=f"consultation {plan.overdue_days} working days overdue; "
                f"{len(plan.people)} told",
            )
        )
        outbox.dm_each(
            session,
            workspace_id=row.workspace_id,
            people=plan.people,
            payload=plan.payload,
            kind=outbox.NUDGE,
            incident_id=row.incident_id,
            now=day.now,
        )
