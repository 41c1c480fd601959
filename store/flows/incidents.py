"""An incident in the web view: finding it for a viewer, its page, marking its alerts read
and sharing it with a colleague.

An incident is only ever found through `store.access.visible_incident`. When it answers
None the caller shows the same 404 as for a number that does not exist, and
`visible_or_refused` has audited the refusal (naming the incident, if it exists, in the
audit log only key-holders read).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from store import (
    access,
    actions,
    alerts,
    allegations,
    audit,
    casework,
    incidents,
    pupil_context,
    pupil_corrections,
    urgent,
)
from store.actions import ActionView, InvalidAction
from store.alerts import ReceiptRow
from store.casework import CaseState
from store.crypto import bind
from store.documents.bodymap import BodyMapView, body_maps_of
from store.documents.files import FileView, incident_files
from store.enums import ReadVia
from store.flows import Visit
from store.models import CaseStatusChange, Incident, Pupil, UrgentConcern
from store.referral_rows import ReferralRow, incident_rows
from store.staff import Pick, get_staff, picks
from store.tasks import TaskNote, notes_for_incident

log = structlog.get_logger(__name__)


async def visible_or_refused(
    session: AsyncSession, *, visit: Visit, number: int | None, action: str
) -> Incident | None:
    """The incident numbered `number` if the visitor may see it; otherwise audit the refusal."""
    viewer = visit.staff
    incident = (
        await access.visible_incident(session, viewer=viewer, number=number)
        if number is not None
        else None
    )
    if incident is None:
        # The audit log (key-holders only) names the incident if it exists; the person
        # refused sees the same page either way.
        existing = (
            await incidents.incident_id_by_number(
                session, workspace_id=viewer.workspace_id, number=number
            )
            if number is not None
            else None
        )
        detail = f"#{number}" if number is not None else "not an incident number"
        visit.trail(session, incident_id=existing).add(action, audit.REFUSED, detail=detail)
        log.warning("incident.refused", staff=viewer.id, number=number, action=action)
    return incident


# -- the page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    """An action, with the categories the incident had before it."""

    action: ActionView
    previous: list[str]


@dataclass(frozen=True)
class IncidentPage:
    """Everything the incident page shows, with the narrative and action text decrypted."""

    incident: Incident
    pupils: list[tuple[Pupil, bool]]  # each pupil, and whether they are the main one
    narrative: str
    parents_contacted: str
    parents_reason: str
    original_categories: list[str]
    current_categories: list[str]
    recategorised: bool
    agencies: list[str]
    receipts: list[ReceiptRow]
    my_unread: list[ReceiptRow]
    timeline: list[TimelineEntry]
    colleagues: list[Pick]  # whom the viewer may alert
    invitable: list[Pick]  # whom the viewer may share it with
    may_share: bool  # False: restricted, and the viewer is not a key-holder
    withdraw_buttons: dict[int, int]  # alert id -> person: where a key-holder may withdraw
    may_change_referrals: bool  # record, answer, close referrals (key-holders)
    referrals: list[ReferralRow]
    open_referrals: list[ReferralRow]
    as_of: dt.datetime  # the time the referrals' states (and the form's defaults) are for
    case: CaseState  # open, monitoring or closed (DESIGN §12)
    status_changes: dict[int, CaseStatusChange]  # by the action that recorded each
    adult: str | None = None  # an allegation: who it is about (`store.allegations`)
    # Each pupil's context (CP plan, SEN, social worker...), decrypted, by pupil id.
    contexts: Mapping[int, pupil_context.Context] = field(default_factory=dict)
    corrections: list[pupil_corrections.Note] = field(default_factory=list)  # wrong pupil
    urgent: UrgentConcern | None = None  # filed as "a child may be at immediate risk"
    files: list[FileView] = field(default_factory=list)  # attachments, names decrypted
    body_maps: list[BodyMapView] = field(default_factory=list)  # marks decrypted
    task_notes: Mapping[int, TaskNote] = field(default_factory=dict)  # by action id
    assignable: list[Pick] = field(default_factory=list)  # whom a task may be assigned to


async def incident_page(session: AsyncSession, *, incident: Incident, visit: Visit) -> IncidentPage:
    """The page of an incident the visitor may see (decrypted here and nowhere else)."""
    viewer, cipher = visit.staff, visit.setup.cipher
    action_views = await actions.list_actions(session, incident=incident, cipher=cipher)
    original = incident.category_names
    timeline = []
    categories = original
    for item in action_views:
        previous = categories
        if item.categories:
            categories = list(item.categories)
        timeline.append(TimelineEntry(item, previous))
    receipt_rows = await alerts.receipts(session, incident_id=incident.id)
    adult = await allegations.adult_of(session, incident_id=incident.id)
    # The pickers' staff: one column query of ids, names and roles (`store.staff.picks`).
    colleagues = [
        s
        for s in await picks(session, workspace_id=incident.workspace_id)
        # Nobody is offered the adult an allegation is about (the store refuses them too).
        if s.id != viewer.id and not (adult and s.id == adult.staff_id)
    ]
    # Which of files, body maps, tasks, referrals, corrections, status changes and the
    # urgent row it has, asked once: only those it has are read.
    has = await incidents.extras_of(session, incident_id=incident.id)
    referral_rows = (
        await incident_rows(
            session,
            incident_id=incident.id,
            number=incident.number,
            working=visit.setup.school.working_time,
            now=visit.now,
        )
        if has.referrals
        else []
    )
    corrections = (
        await pupil_corrections.notes(session, incident_id=incident.id) if has.corrections else []
    )
    pupils = await pupil_corrections.pupils_of(
        session, incident=incident, corrected=has.corrections
    )
    changes = (
        await casework.changes_by_action(session, incident_id=incident.id)
        if has.status_changes
        else {}
    )
    changes_case = await access.may_change_case(session, staff=viewer, incident_id=incident.id)
    return IncidentPage(
        incident=incident,
        pupils=pupils,
        contexts=await pupil_context.contexts(
            session,
            workspace_id=incident.workspace_id,
            pupil_ids=[p.id for p, _main in pupils],
            cipher=cipher,
        ),
        corrections=corrections,
        narrative=cipher.decrypt(incident.narrative_ct, bind(Incident.narrative_ct, incident.id)),
        parents_contacted=incident.parents_contacted,
        parents_reason=(
            cipher.decrypt(
                incident.parents_reason_ct, bind(Incident.parents_reason_ct, incident.id)
            )
            if incident.parents_reason_ct
            else ""
        ),
        original_categories=original,
        current_categories=categories,
        recategorised=categories != original,
        agencies=[a.name for a in incident.agencies],
        receipts=receipt_rows,
        my_unread=[r for r in receipt_rows if r.recipient_id == viewer.id and not r.read_at],
        timeline=timeline,
        colleagues=colleagues,
        task_notes=(
            await notes_for_incident(session, incident_id=incident.id) if has.tasks else {}
        ),
        assignable=[Pick.of(viewer), *colleagues],
        invitable=[s for s in colleagues if s.id != incident.author_id],
        # An allegation's sharing is its manager's (`store.access.share_refusal`).
        may_share=adult is not None
        or access.may_share(
            viewer.role_set,
            # Its categories now are the timeline's: not read again.
            restricted=actions.restricted_now(
                incident, current=categories, catalogue=visit.setup.catalogue
            ),
        ),
        may_change_referrals=changes_case,
        withdraw_buttons=_withdraw_buttons(
            receipt_rows,
            incident=incident,
            colleagues=colleagues,
            may=changes_case,
            allegation=adult is not None,
        ),
        referrals=referral_rows,
        open_referrals=[r for r in referral_rows if r.state != "closed"],
        as_of=visit.now,
        adult=await allegations.line_of(session, adult=adult, cipher=cipher),
        urgent=await urgent.is_urgent(session, incident_id=incident.id) if has.urgent else None,
        # Its status now is the latest of its changes, read once for both.
        case=await casework.state_of(
            session, latest=max(changes.values(), key=lambda c: c.id, default=None)
        ),
        status_changes=changes,
        files=(
            await incident_files(session, incident_id=incident.id, cipher=cipher)
            if has.files
            else []
        ),
        body_maps=(
            await body_maps_of(session, incident_id=incident.id, cipher=cipher)
            if has.body_maps
            else []
        ),
    )


def _withdraw_buttons(
    rows: list[ReceiptRow],
    *,
    incident: Incident,
    colleagues: list[Pick],
    may: bool,
    allegation: bool,
) -> dict[int, int]:
    """For those who may change the case: each person whose access may be withdrawn
    (alerted or shared, not withdrawn, not the author, not a key-holder unless this is an
    allegation, which key-holders see only when alerted or shared), by their first alert."""
    if not may:
        return {}
    staff = {s.id: s for s in colleagues}
    buttons: dict[int, int] = {}
    for row in rows:
        person = staff.get(row.recipient_id)
        if (
            person is None
            or row.withdrawn_at is not None
            or person.id == incident.author_id
            or (access.is_keyholder(person.role_set) and not allegation)
            or person.id in buttons.values()
        ):
            continue
        buttons[row.alert_id] = person.id
    return buttons


async def view_incident(
    session: AsyncSession, *, visit: Visit, number: int | None
) -> IncidentPage | None:
    """The incident's page for the visitor, audited; None (refusal audited) if not theirs."""
    incident = await visible_or_refused(session, visit=visit, number=number, action="incident.view")
    if incident is None:
        return None
    page = await incident_page(session, incident=incident, visit=visit)
    # Recorded after the reads, in the same transaction: on SQLite the first write takes
    # the database's write lock, and it should not be held through them.
    await visit.trail(session, incident_id=incident.id).write("incident.view")
    # Opened, not only acknowledged: the viewer's alerts on it, and an urgent concern's
    # escalation stops once someone on the safeguarding team has opened it. The page has
    # just read both (its receipts, its urgent row): nothing to write, nothing asked.
    unopened = any(r.recipient_id == visit.staff.id and r.opened_at is None for r in page.receipts)
    if unopened and await alerts.mark_opened(
        session, incident_id=incident.id, staff_id=visit.staff.id, now=visit.now
    ):
        page = dataclasses.replace(
            page,
            receipts=[
                dataclasses.replace(r, opened_at=r.opened_at or visit.now)
                if r.recipient_id == visit.staff.id
                else r
                for r in page.receipts
            ],
        )
    if page.urgent is not None and await urgent.mark_opened(
        session,
        incident_id=incident.id,
        viewer=visit.staff,
        config=visit.setup.school,
        now=visit.now,
    ):
        visit.trail(session, incident_id=incident.id).add("urgent.opened")
    return page


async def refused_page(
    session: AsyncSession,
    *,
    visit: Visit,
    incident: Incident,
    trail: audit.Trail,
    action: str,
    errors: Mapping[str, str],
) -> IncidentPage:
    """Audit a change to the incident that was refused (the fields at fault, never what was
    typed), and the page to show its errors on."""
    trail.add(action, audit.FAILED, detail="invalid: " + ", ".join(sorted(errors)))
    return await incident_page(session, incident=incident, visit=visit)


# -- marking its alerts read ----------------------------------------------------------------


@dataclass(frozen=True)
class MarkedRead:
    incident_id: int
    number: int
    alert_ids: list[int]  # the alerts read now (none if all were read already)


async def mark_read_on_web(
    session: AsyncSession, *, visit: Visit, number: int | None
) -> MarkedRead | None:
    """Mark the visitor's own unread alerts on the incident as read, from the web view."""
    incident = await visible_or_refused(session, visit=visit, number=number, action="alert.read")
    if incident is None:
        return None
    viewer = visit.staff
    read: list[int] = []
    for alert_id in await alerts.unread_alert_ids(
        session, incident_id=incident.id, staff_id=viewer.id
    ):
        try:
            result = await alerts.mark_read(
                session,
                alert_id=alert_id,
                workspace_id=viewer.workspace_id,
                slack_user_id=viewer.slack_user_id or "",
                public_url=visit.setup.public_url,
                via=ReadVia.WEB,
            )
        except alerts.AlertNotFound:
            continue
        if result.newly_read:
            read.append(result.alert_id)
    if read:
        detail = "via web; alerts " + ",".join(map(str, read))
        visit.trail(session, incident_id=incident.id).add("alert.read", detail=detail)
    return MarkedRead(incident.id, incident.number, read)


# -- sharing it --------------------------------------------------------------------------


@dataclass(frozen=True)
class Shared:
    incident_id: int
    number: int
    guest_id: int


@dataclass(frozen=True)
class ShareRefused:
    """Not shared: why (by form field), and the page to say so on."""

    errors: dict[str, str]
    page: IncidentPage


async def share(
    session: AsyncSession, *, visit: Visit, number: int | None, staff_id: int | None
) -> Shared | ShareRefused | None:
    """Share the incident with a colleague and alert them; audited, refusals too. None (the
    404, audited) if not theirs, or restricted and they are not a key-holder."""
    incident = await visible_or_refused(
        session, visit=visit, number=number, action="incident.invite"
    )
    if incident is None:
        return None
    trail = visit.trail(session, incident_id=incident.id)
    try:
        guest = await actions.invite(
            session,
            inviter=visit.staff,
            incident=incident,
            staff_id=staff_id,
            catalogue=visit.setup.catalogue,
            public_url=visit.setup.public_url,
        )
    except actions.ShareRefused:
        trail.add("incident.invite", audit.REFUSED, detail="restricted; not a key-holder")
        return None
    except InvalidAction as invalid:
        page = await refused_page(
            session,
            visit=visit,
            incident=incident,
            trail=trail,
            action="incident.invite",
            errors=invalid.errors,
        )
        return ShareRefused(invalid.errors, page)
    trail.add("incident.invite", subject_id=guest.id)
    return Shared(incident.id, incident.number, guest.id)


# -- withdrawing someone's access ----------------------------------------------------------

NOT_ALERTED = "They have no access to this concern to withdraw."
IS_AUTHOR = "They wrote this concern: its author always keeps access."
IS_KEYHOLDER = (
    "They are on the safeguarding team, who see every concern: change their roles on the "
    "staff roster instead."
)


@dataclass(frozen=True)
class Withdrawn:
    incident_id: int
    number: int
    person_id: int
    alert_ids: list[int]  # the alerts withdrawn (their DMs are being changed to say so)


@dataclass(frozen=True)
class WithdrawRefused:
    """Nothing withdrawn: why (by form field), and the page to say so on."""

    errors: dict[str, str]
    page: IncidentPage


async def withdraw(
    session: AsyncSession, *, visit: Visit, number: int | None, staff_id: int | None
) -> Withdrawn | WithdrawRefused | None:
    """Withdraw a person's access to the incident (key-holders, or an allegation's
    manager), audited: their alerts and invitation no longer grant access and their DMs
    say so. None (the 404, audited) if the visitor may not see the incident or change it."""
    action = "incident.withdraw"
    incident = await visible_or_refused(session, visit=visit, number=number, action=action)
    if incident is None:
        return None
    trail = visit.trail(session, incident_id=incident.id)
    if not await access.may_change_case(session, staff=visit.staff, incident_id=incident.id):
        trail.add(action, audit.REFUSED, detail="not a key-holder", subject_id=staff_id)
        log.warning("incident.refused", staff=visit.staff.id, number=number, action=action)
        return None
    person = (
        await get_staff(session, workspace_id=incident.workspace_id, staff_id=staff_id)
        if staff_id is not None
        else None
    )
    problem = None
    if person is None or not await alerts.has_access_to_withdraw(
        session, incident_id=incident.id, staff_id=person.id
    ):
        problem = IS_AUTHOR if person and person.id == incident.author_id else NOT_ALERTED
    elif person.id == incident.author_id:
        problem = IS_AUTHOR
    elif access.is_keyholder(person.role_set) and not await allegations.adult_of(
        session, incident_id=incident.id
    ):
        problem = IS_KEYHOLDER
    if problem is not None or person is None:
        errors = {"withdraw": problem or NOT_ALERTED}
        page = await refused_page(
            session, visit=visit, incident=incident, trail=trail, action=action, errors=errors
        )
        return WithdrawRefused(errors, page)
    withdrawn = await alerts.withdraw(session, incident=incident, person=person, now=visit.now)
    detail = "alerts " + ",".join(map(str, withdrawn)) if withdrawn else "invitation"
    trail.add(action, subject_id=person.id, detail=detail)
    return Withdrawn(incident.id, incident.number, person.id, withdrawn)
