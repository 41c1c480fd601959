"""Adding an action from the incident page: all of it, or none of it.

An action may alert colleagues, re-categorise the incident (key-holders) and record a
referral change: a new referral, or an agency's response to (or closing of) an open one.
`add_action` checks every part before it writes anything; then it writes the action, its
alerts and their DMs, the referral changes and the audit rows in the caller's
transaction. When anything is wrong nothing is written but a FAILED audit entry, and the
answer carries every error (by form field) and the page to show them on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import actions, audit, referrals
from store.actions import InvalidAction
from store.catalogue import Catalogue
from store.crypto import Cipher
from store.flows.incidents import IncidentPage, incident_page, visible_or_refused
from store.models import Incident, IncidentAction, Referral, Staff
from store.referral_changes import RESPONSE, ReferralChanges, check_changes, read_changes
from store.referrals import InvalidReferral
from store.school_config import SchoolConfig

UNREADABLE_ALERT = "Some of the people chosen are not current staff."


@dataclass(frozen=True)
class ActionDraft:
    """An action as the person entered it (ids already read; nothing else trusted yet)."""

    text: str
    alert_staff_ids: list[int]
    unreadable_alert_ids: bool  # some of the people chosen were not ids at all
    categories: list[str]  # a re-categorisation, or none
    referral_fields: Mapping[str, str]  # the Referral fieldset (`store.referral_changes`)


@dataclass(frozen=True)
class ActionAdded:
    incident_id: int
    number: int
    action_id: int
    referral_ids: list[int]  # the referrals it recorded or answered


@dataclass(frozen=True)
class ActionRefused:
    """Nothing was added: every error by form field, what was typed, and the page."""

    errors: dict[str, str]
    referral_typed: dict[str, str]
    page: IncidentPage


async def add_action(
    session: AsyncSession,
    *,
    viewer: Staff,
    number: int | None,
    draft: ActionDraft,
    catalogue: Catalogue,
    cipher: Cipher,
    school: SchoolConfig,
    public_url: str,
    ip: str | None,
    now: dt.datetime,
) -> ActionAdded | ActionRefused | None:
    """Add an action with all it records, audited; None (refusal audited) if not theirs."""
    incident = await visible_or_refused(
        session, viewer=viewer, number=number, action="action.add", ip=ip
    )
    if incident is None:
        return None
    open_referrals = await referrals.open_for_incident(session, incident_id=incident.id, lock=True)
    changes = read_changes(
        draft.referral_fields, school=school, now=now, open_referrals=open_referrals
    )
    try:
        plan = await _checked(
            session,
            viewer=viewer,
            incident=incident,
            draft=draft,
            changes=changes,
            open_referrals=open_referrals,
            catalogue=catalogue,
            now=now,
        )
    except (InvalidAction, InvalidReferral) as invalid:
        audit.record(
            session,
            action="action.add",
            outcome=audit.FAILED,
            actor=viewer,
            incident_id=incident.id,
            ip=ip,
            detail="invalid: " + ", ".join(sorted(invalid.errors)),
            now=now,
        )
        page = await incident_page(
            session,
            incident=incident,
            viewer=viewer,
            cipher=cipher,
            working=school.working_time,
            now=now,
        )
        return ActionRefused(invalid.errors, changes.typed, page)

    action = await actions.write_action(
        session, plan, cipher=cipher, public_url=public_url, now=now
    )
    changed = await _record_referrals(
        session,
        changes,
        incident=incident,
        action=action,
        author=viewer,
        open_referrals=open_referrals,
        school=school,
        now=now,
        ip=ip,
    )
    audit.record(
        session,
        action="action.add",
        actor=viewer,
        incident_id=incident.id,
        ip=ip,
        detail=f"action {action.id}; alerted {len(draft.alert_staff_ids)}",
        now=now,
    )
    if action.categories:
        audit.record(
            session,
            action="incident.recategorise",
            actor=viewer,
            incident_id=incident.id,
            ip=ip,
            detail=f"action {action.id}; to " + "; ".join(action.categories),
            now=now,
        )
    return ActionAdded(incident.id, incident.number, action.id, changed)


async def _checked(
    session: AsyncSession,
    *,
    viewer: Staff,
    incident: Incident,
    draft: ActionDraft,
    changes: ReferralChanges,
    open_referrals: Mapping[int, Referral],
    catalogue: Catalogue,
    now: dt.datetime,
) -> actions.ActionPlan:
    """The action ready to write, or every error: the action's and the form's together,
    else the first referral change the store would refuse."""
    problems = dict(changes.errors)
    plan = None
    try:
        if draft.unreadable_alert_ids:
            raise InvalidAction({"alert": UNREADABLE_ALERT})
        plan = await actions.check_action(
            session,
            author=viewer,
            incident=incident,
            text=draft.text,
            alert_staff_ids=draft.alert_staff_ids,
            recategorise=draft.categories or None,
            catalogue=catalogue,
        )
    except InvalidAction as invalid:
        problems = {**invalid.errors, **problems}
    if problems or plan is None:
        raise InvalidAction(problems)
    check_changes(changes, open_referrals=open_referrals, now=now)
    return plan


async def _record_referrals(
    session: AsyncSession,
    changes: ReferralChanges,
    *,
    incident: Incident,
    action: IncidentAction,
    author: Staff,
    open_referrals: Mapping[int, Referral],
    school: SchoolConfig,
    now: dt.datetime,
    ip: str | None,
) -> list[int]:
    """Record the checked referral changes with `action`, each audited."""
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
        audit.record(
            session,
            action="referral.response" if item.outcome == RESPONSE else "referral.close",
            actor=author,
            incident_id=incident.id,
            ip=ip,
            detail=f"referral {referral.id}; action {action.id}",
            now=now,
        )
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
            working=school.working_time,
            now=now,
        )
        audit.record(
            session,
            action="referral.add",
            actor=author,
            incident_id=incident.id,
            ip=ip,
            detail=f"referral {referral.id}; {referral.agency}; action {action.id}",
            now=now,
        )
        changed.append(referral.id)
    return changed
