"""Urgent concerns ("a child may be at immediate risk"): who is told at once, escalating
until someone on the safeguarding team opens the record, and what counts as opening it.

Who is told is decided by `store.rota.urgent_plan` (pure); this module finds the staff,
writes the rows and queues the DMs (`store.messages`, through the outbox). Each
escalation step is a row of `urgent_escalations` (unique per concern and step), so it is
sent once however many servers run the check and however often they restart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import messages, outbox
from store.access import is_keyholder
from store.actions import original_categories_for
from store.enums import AlertReason
from store.models import Alert, Incident, IncidentAdult, Staff, UrgentConcern, UrgentEscalation
from store.rota import HEAD_ROLE, Person, step_recipients, urgent_plan
from store.school_config import SchoolConfig
from store.staff import StaffLike
from store.workspaces import in_school

log = structlog.get_logger(__name__)

URGENT_BATCH = 100


def people(staff: Iterable[StaffLike]) -> list[Person]:
    """What the rota needs of these members of staff."""
    return [Person(s.id, s.email, frozenset(s.role_set), is_keyholder(s.role_set)) for s in staff]


def plan(
    config: SchoolConfig,
    *,
    at: dt.datetime,
    staff: Mapping[int, StaffLike],
    exclude: Collection[int] = (),
) -> list[list[int]]:
    """`store.rota.urgent_plan` for these staff at `at`."""
    return urgent_plan(
        rota=config.on_call,
        at=at,
        working=config.working_time,
        staff=people(staff.values()),
        exclude=exclude,
    )


def on_safeguarding_team(viewer: Staff, config: SchoolConfig) -> bool:
    """Whether the viewer opening an urgent concern stops its escalation: a key-holder,
    a head, or someone on the on-call rota."""
    return (
        is_keyholder(viewer.role_set)
        or HEAD_ROLE in viewer.role_set
        or viewer.email.strip().lower() in {entry.staff for entry in config.on_call}
    )


def start(
    session: AsyncSession,
    *,
    incident: Incident,
    on_duty: Collection[int],
    config: SchoolConfig,
    now: dt.datetime,
) -> UrgentConcern:
    """The urgent concern's row: first escalation due one interval from now."""
    row = UrgentConcern(
        incident_id=incident.id,
        workspace_id=incident.workspace_id,
        created_at=now,
        on_duty_id=next(iter(on_duty), None),
        last_step=0,
        next_step_at=now + _interval(config),
    )
    session.add(row)
    return row


def _interval(config: SchoolConfig) -> dt.timedelta:
    return dt.timedelta(minutes=config.escalate_every_minutes)


async def mark_opened(
    session: AsyncSession,
    *,
    incident_id: int,
    viewer: Staff,
    config: SchoolConfig,
    now: dt.datetime,
) -> bool:
    """The viewer opened the incident's page: if it is urgent, still unopened, and they
    are on the safeguarding team, its escalation stops. True if it stopped now."""
    row = await session.get(UrgentConcern, incident_id)
    if row is None or row.opened_at is not None:
        return False
    audience = await allegation_audience(session, incident_id=incident_id)
    if not (on_safeguarding_team(viewer, config) or viewer.id in (audience or ())):
        return False
    row.opened_at, row.opened_by_id = now, viewer.id
    return True


async def allegation_audience(session: AsyncSession, *, incident_id: int) -> list[int] | None:
    """For an allegation about an adult, the people it was told to (its managers): the
    only people its urgency may reach, never the adult named. None for other concerns."""
    adult = await session.scalar(
        select(IncidentAdult).where(IncidentAdult.incident_id == incident_id)
    )
    if adult is None:
        return None
    told = await session.scalars(
        select(Alert.recipient_id)
        .where(
            Alert.incident_id == incident_id,
            Alert.action_id.is_(None),
            Alert.reason == AlertReason.ALLEGATIONS,
        )
        .order_by(Alert.id)
    )
    return [i for i in told if i != adult.staff_id]


async def is_urgent(session: AsyncSession, *, incident_id: int) -> UrgentConcern | None:
    """The incident's urgent row, if it was filed as urgent."""
    return await session.get(UrgentConcern, incident_id)


async def escalate_unopened(
    session: AsyncSession,
    *,
    config: SchoolConfig,
    public_url: str,
    now: dt.datetime,
    limit: int = URGENT_BATCH,
    workspace_id: int | None = None,
) -> int:
    """Escalate up to `limit` urgent concerns still unopened whose next step is due.

    Step n falls due n intervals after filing; a check that runs late sends the step due
    now (which tells everyone the missed steps would have: `store.rota.step_recipients`).
    Rows are claimed with `FOR UPDATE SKIP LOCKED`. Returns how many were escalated.
    """
    interval = _interval(config)
    claimed = list(
        (
            await session.scalars(
                select(UrgentConcern)
                .where(
                    UrgentConcern.opened_at.is_(None),
                    UrgentConcern.next_step_at <= now,
                    *in_school(UrgentConcern.workspace_id, workspace_id),
                )
                .order_by(UrgentConcern.next_step_at, UrgentConcern.incident_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    if not claimed:
        return 0
    incidents = {
        i.id: i
        for i in await session.scalars(
            select(Incident).where(Incident.id.in_([r.incident_id for r in claimed]))
        )
    }
    categories = await original_categories_for(session, incident_ids=list(incidents))
    staff_of: dict[int, dict[int, Staff]] = {}
    escalated = 0
    for row in claimed:
        step = max(row.last_step + 1, int((now - row.created_at) / interval))
        row.last_step = step
        row.next_step_at = row.created_at + interval * (step + 1)
        incident = incidents[row.incident_id]
        if row.workspace_id not in staff_of:
            found = await session.scalars(
                select(Staff).where(Staff.workspace_id == row.workspace_id, Staff.active.is_(True))
            )
            staff_of[row.workspace_id] = {s.id: s for s in found}
        staff = staff_of[row.workspace_id]
        audience = await allegation_audience(session, incident_id=incident.id)
        if audience is not None:  # an allegation: its managers again, nobody new
            ids = [i for i in audience if i in staff]
        else:
            ids = step_recipients(
                plan(config, at=now, staff=staff, exclude={incident.author_id}), step
            )
        session.add(
            UrgentEscalation(incident_id=row.incident_id, step=step, at=now, recipients=len(ids))
        )
        await _send_step(
            session,
            incident=incident,
            recipients=[staff[i] for i in ids],
            categories=categories.get(incident.id, []),
            minutes=int((now - row.created_at).total_seconds() // 60),
            public_url=public_url,
            now=now,
        )
        escalated += 1
        log.info("urgent.escalated", incident=incident.id, step=step, told=len(ids))
    await session.flush()
    return escalated


async def _send_step(
    session: AsyncSession,
    *,
    incident: Incident,
    recipients: list[Staff],
    categories: list[str],
    minutes: int,
    public_url: str,
    now: dt.datetime,
) -> None:
    """One escalation DM to each recipient. Someone not yet alerted on the incident gets
    an alert (so they may open it), whose DM is this message."""
    alerted = set(
        (
            await session.scalars(
                select(Alert.recipient_id).where(
                    Alert.incident_id == incident.id, Alert.action_id.is_(None)
                )
            )
        ).all()
    )
    author_slack = incident.author.slack_user_id
    url = messages.incident_url(public_url, incident.number)
    payload = messages.urgent_escalation(
        number=incident.number,
        author_slack_id=author_slack,
        categories=categories,
        minutes=minutes,
        url=url,
    )
    for person in recipients:
        if person.id not in alerted:
            alert = Alert(
                workspace_id=incident.workspace_id,
                incident_id=incident.id,
                recipient_id=person.id,
                reason=AlertReason.URGENT,
                created_at=now,
            )
            session.add(alert)
            await session.flush()
            if person.slack_user_id:
                dm = messages.alert(alert_id=alert.id, url=url, headline=payload["text"])
                outbox.enqueue_alert(
                    session, alert=alert, channel=person.slack_user_id, payload=dm, now=now
                )
            continue
        if person.slack_user_id:
            outbox.enqueue(
                session,
                workspace_id=incident.workspace_id,
                kind=outbox.URGENT,
                channel=person.slack_user_id,
                incident_id=incident.id,
                payload=payload,
                now=now,
            )
