"""Adding an action from the incident page: all of it, or none of it.

An action may alert colleagues, re-categorise the incident (key-holders) and record a
referral change: a new referral, or an agency's response to (or closing of) an open one.
`add_action` checks every part before it writes anything; then it writes the action, its
alerts and their DMs, the referral changes and the audit rows in the caller's
transaction. When anything is wrong nothing is written but a FAILED audit entry, and the
answer carries every error (by form field) and the page to show them on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import access, actions, audit, referrals, tasks
from store.actions import ActionWanted, InvalidAction
from store.flows import Visit
from store.flows.incidents import IncidentPage, refused_page, visible_or_refused
from store.models import Incident, IncidentAction, Referral
from store.referral_changes import (
    CONSULTED,
    NOT_NEEDED,
    RESPONSE,
    ReferralChanges,
    asks_for_change,
    check_changes,
    read_changes,
)
from store.referrals import InvalidReferral

UNREADABLE_ALERT = "Some of the people chosen are not current staff."


@dataclass(frozen=True)
class ActionDraft:
    """An action as the person entered it (ids already read; nothing else trusted yet)."""

    text: str
    alert_staff_ids: list[int]
    unreadable_alert_ids: bool  # some of the people chosen were not ids at all
    categories: list[str]  # a re-categorisation, or none
    referral_fields: Mapping[str, str]  # the Referral fieldset (`store.referral_changes`)
    assignee_id: int | None = None  # a task: whom it is assigned to ...
    unreadable_assignee: bool = False  # (not an id at all)
    due: str = ""  # ... and the date it is due (YYYY-MM-DD)


@dataclass(frozen=True)
class ActionAdded:
    incident_id: int
    number: int
    action_id: int
    referral_ids: list[int]  # the referrals it recorded or answered
    task_id: int | None = None  # the task it set, if any


@dataclass(frozen=True)
class ActionRefused:
    """Nothing was added: every error by form field, what was typed, and the page."""

    errors: dict[str, str]
    referral_typed: dict[str, str]
    page: IncidentPage


async def add_action(
    session: AsyncSession, *, visit: Visit, number: int | None, draft: ActionDraft
) -> ActionAdded | ActionRefused | None:
    """Add an action with all it records, audited; None (refusal audited) if not theirs, or
    if it changes a referral and they are not a key-holder."""
    incident = await visible_or_refused(session, visit=visit, number=number, action="action.add")
    if incident is None:
        return None
    trail = visit.trail(session, incident_id=incident.id, timed=True)
    if asks_for_change(draft.referral_fields) and not await access.may_change_case(
        session, staff=visit.staff, incident_id=incident.id
    ):
        # The form offers referrals to key-holders (and an allegation's manager) only:
        # this one was forged.
        trail.add("referral.change", audit.REFUSED, detail=f"#{incident.number}; not a key-holder")
        return None
    open_referrals = await referrals.open_for_incident(session, incident_id=incident.id, lock=True)
    changes = read_changes(
        draft.referral_fields,
        school=visit.setup.school,
        now=visit.now,
        open_referrals=open_referrals,
    )
    try:
        plan, task_wanted = await _checked(
            session,
            visit=visit,
            incident=incident,
            draft=draft,
            changes=changes,
            open_referrals=open_referrals,
        )
    except (InvalidAction, InvalidReferral, tasks.InvalidTask) as invalid:
        page = await refused_page(
            session,
            visit=visit,
            incident=incident,
            trail=trail,
            action="action.add",
            errors=invalid.errors,
        )
        return ActionRefused(invalid.errors, changes.typed, page)

    setup = visit.setup
    action = await actions.write_action(
        session, plan, cipher=setup.cipher, public_url=setup.public_url, now=visit.now
    )
    changed = await _record_referrals(
        trail, changes, incident=incident, action=action, open_referrals=open_referrals, visit=visit
    )
    trail.add("action.add", detail=f"action {action.id}; alerted {len(plan.recipients)}")
    if action.categories:
        detail = f"action {action.id}; to " + "; ".join(action.categories)
        trail.add("incident.recategorise", detail=detail)
    task_id = None
    if task_wanted is not None:
        task_id = await _record_task(
            trail, task_wanted, incident=incident, action=action, visit=visit
        )
    return ActionAdded(incident.id, incident.number, action.id, changed, task_id)


async def _record_task(
    trail: audit.Trail,
    wanted: tasks.TaskWanted,
    *,
    incident: Incident,
    action: IncidentAction,
    visit: Visit,
) -> int:
    """Record the checked task with `action`: access for its assignee (as "also alert"
    gives it), the task row and its DM, audited on `trail`."""
    session, now = trail.session, visit.now
    granted = await actions.grant_task_access(
        session, incident=incident, recipient=wanted.assignee, action_id=action.id, now=now
    )
    task = await tasks.record_task(
        session,
        action=action,
        incident=incident,
        wanted=wanted,
        author=visit.staff,
        public_url=visit.setup.public_url,
        now=now,
    )
    detail = f"task {task.id}; action {action.id}; to staff {wanted.assignee.id}; due {task.due_on}"
    trail.add("task.add", detail=detail + ("; access by alert" if granted else ""))
    return task.id


async def _checked(
    session: AsyncSession,
    *,
    visit: Visit,
    incident: Incident,
    draft: ActionDraft,
    changes: ReferralChanges,
    open_referrals: Mapping[int, Referral],
) -> tuple[actions.ActionPlan, tasks.TaskWanted | None]:
    """The action (and its task, if any) ready to write, or every error: the action's,
    the task's and the form's together, else the first referral change the store would
    refuse."""
    problems = dict(changes.errors)
    plan = None
    task_wanted = None
    try:
        task_wanted = await tasks.check_task(
            session,
            incident=incident,
            assignee_id=draft.assignee_id,
            unreadable_assignee=draft.unreadable_assignee,
            due_text=draft.due,
            today=tasks.today_for(visit.setup.school.working_time, visit.now),
        )
    except tasks.InvalidTask as invalid:
        problems.update(invalid.errors)
    try:
        if draft.unreadable_alert_ids:
            raise InvalidAction({"alert": UNREADABLE_ALERT})
        wanted = ActionWanted(draft.text, draft.alert_staff_ids, draft.categories or None)
        plan = await actions.check_action(
            session,
            author=visit.staff,
            incident=incident,
            wanted=wanted,
            catalogue=visit.setup.catalogue,
        )
    except InvalidAction as invalid:
        problems = {**invalid.errors, **problems}
    if problems or plan is None:
        raise InvalidAction(problems)
    check_changes(changes, open_referrals=open_referrals, now=visit.now)
    if any(o.outcome in (CONSULTED, NOT_NEEDED) for o in changes.outcomes):
        if not await access.manages_allegation(session, staff=visit.staff, incident=incident):
            raise InvalidAction(
                {"referral": "Only the allegations manager records the LADO consultation."}
            )
    return plan, task_wanted


async def _record_referrals(
    trail: audit.Trail,
    changes: ReferralChanges,
    *,
    incident: Incident,
    action: IncidentAction,
    open_referrals: Mapping[int, Referral],
    visit: Visit,
) -> list[int]:
    """Record the checked referral changes with `action`, each audited on `trail`."""
    session, author, now = trail.session, visit.staff, visit.now
    changed: list[int] = []
    for item in changes.outcomes:
        referral = await referrals.record_outcome(
            session,
            referral=open_referrals[item.referral_id],
            action=action,
            author=author,
            outcome=item.outcome,
            at=item.at,
            now=now,
        )
        kind = {
            RESPONSE: "referral.response",
            CONSULTED: "referral.consulted",
            NOT_NEEDED: "referral.not_needed",
        }.get(item.outcome, "referral.close")
        trail.add(kind, detail=f"referral {referral.id}; action {action.id}")
        changed.append(referral.id)
    if changes.new is not None:
        referral = await referrals.record_referral(
            session,
            incident=incident,
            action=action,
            author=author,
            agency=changes.new.agency,
            referred_at=changes.new.referred_at,
            reference=changes.new.reference,
            working=visit.setup.school.working_time,
            cipher=visit.setup.cipher,
            now=now,
        )
        detail = f"referral {referral.id}; {referral.agency}; action {action.id}"
        trail.add("referral.add", detail=detail)
        changed.append(referral.id)
    return changed
