"""After an incident is filed: actions, re-categorisation and invitations.

All append-only. Each may alert staff with a redacted Slack DM through the outbox, the
same way as the first alert. The whole change a page asks for, with its audit rows, is
`store.flows.actions`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import alert_rules, keyring, messages, outbox, textsearch
from store.access import (
    alert_refusal,
    is_keyholder,
    may_share,
    share_refusal,
    visible_incident_ids,
)
from store.catalogue import Catalogue, Category
from store.crypto import Cipher, bind
from store.enums import AlertReason
from store.errors import FieldErrors
from store.models import (
    Alert,
    Incident,
    IncidentAction,
    IncidentAdult,
    IncidentCategory,
    IncidentInvite,
    Staff,
    utcnow,
)
from store.staff import (
    active_staff_by_id,
    active_staff_with_ids,
    class_teacher_ids,
    staff_ids_by_role,
)

ACTION_MAX = 5000


class InvalidAction(FieldErrors):
    """The action (or invitation) cannot be added; `errors` maps each field to a message."""


@dataclass(frozen=True)
class ActionView:
    """An action as the incident page shows it (text decrypted)."""

    id: int
    author_name: str
    created_at: dt.datetime
    text: str
    categories: list[str] | None


async def current_categories(session: AsyncSession, *, incident: Incident) -> list[str]:
    """The incident's categories: the latest re-categorisation, else the original ones."""
    # Filtered here, not in SQL: early rows stored "no re-categorisation" as JSON null.
    recategorised = await session.scalars(
        select(IncidentAction.categories)
        .where(IncidentAction.incident_id == incident.id)
        .order_by(IncidentAction.id.desc())
    )
    latest = next((c for c in recategorised if c), None)
    return list(latest) if latest else incident.category_names


async def original_categories_for(
    session: AsyncSession, *, incident_ids: Iterable[int]
) -> dict[int, list[str]]:
    """Each incident's categories as it was filed with them."""
    ids = list(dict.fromkeys(incident_ids))
    if not ids:
        return {}
    found: dict[int, list[str]] = {}
    originals = await session.execute(
        select(IncidentCategory.incident_id, IncidentCategory.name)
        .where(IncidentCategory.incident_id.in_(ids))
        .order_by(IncidentCategory.incident_id, IncidentCategory.position)
    )
    for incident_id, name in originals:
        found.setdefault(incident_id, []).append(name)
    return found


async def current_categories_for(
    session: AsyncSession, *, incident_ids: Iterable[int]
) -> dict[int, list[str]]:
    """Each incident's categories now: its latest re-categorisation, else the originals."""
    ids = list(dict.fromkeys(incident_ids))
    found = await original_categories_for(session, incident_ids=ids)
    if ids:
        # An action without a re-categorisation may hold JSON null rather than SQL NULL,
        # so the latest list is picked here rather than with IS NOT NULL.
        actions = await session.execute(
            select(IncidentAction.incident_id, IncidentAction.categories)
            .where(IncidentAction.incident_id.in_(ids))
            .order_by(IncidentAction.id)
        )
        found.update({i: list(categories) for i, categories in actions if categories})
    return found


_ACTIONS_OF = (  # `list_actions`' statement, built once
    select(IncidentAction)
    .where(IncidentAction.incident_id == bindparam("incident_id"))
    .order_by(IncidentAction.created_at, IncidentAction.id)
)


async def list_actions(
    session: AsyncSession, *, incident: Incident, cipher: Cipher
) -> list[ActionView]:
    """The incident's actions in the order they were added."""
    rows = await session.scalars(_ACTIONS_OF, {"incident_id": incident.id})
    return [
        ActionView(
            a.id,
            a.author.name,
            a.created_at,
            cipher.decrypt(a.text_ct, bind(IncidentAction.text_ct, a.id)),
            a.categories,
        )
        for a in rows
    ]


async def _add_alert(
    session: AsyncSession,
    *,
    incident: Incident,
    recipient: Staff,
    reason: AlertReason,
    action_id: int | None = None,
    now: dt.datetime,
) -> Alert:
    """An alert on the incident (or on one of its actions), written now for its id."""
    alert = Alert(
        workspace_id=incident.workspace_id,
        incident_id=incident.id,
        recipient_id=recipient.id,
        action_id=action_id,
        reason=reason,
        created_at=now,
    )
    session.add(alert)
    await session.flush()
    return alert


def _queue_alert(
    session: AsyncSession,
    *,
    alert: Alert,
    recipient: Staff,
    headline: str,
    url: str,
    now: dt.datetime,
) -> None:
    """The alert's DM, if its recipient is on Slack."""
    if recipient.slack_user_id:
        payload = messages.alert(alert_id=alert.id, headline=headline, url=url)
        outbox.enqueue_alert(
            session, alert=alert, channel=recipient.slack_user_id, payload=payload, now=now
        )


@dataclass(frozen=True)
class ActionPlan:
    """An action that passed every check, with the people it alerts: ready to write."""

    author: Staff
    incident: Incident
    text: str
    categories: list[str] | None  # a re-categorisation, if it changes anything
    recipients: list[Staff]  # whom it alerts (never its author), each once


@dataclass(frozen=True)
class ActionWanted:
    """An action as asked for: what was done, whom to alert, new categories (or None)."""

    text: str
    alert_staff_ids: Sequence[int] = ()
    recategorise: Sequence[str] | None = None


async def check_action(
    session: AsyncSession,
    *,
    author: Staff,
    incident: Incident,
    wanted: ActionWanted,
    catalogue: Catalogue,
) -> ActionPlan:
    """Every check of an action, writing nothing; InvalidAction names each wrong field."""
    errors: dict[str, str] = {}
    text, alert_staff_ids, recategorise = (
        wanted.text.strip(),
        wanted.alert_staff_ids,
        wanted.recategorise,
    )
    if not text:
        errors["text"] = "Say what was done or learned."
    elif len(text) > ACTION_MAX:
        errors["text"] = f"Keep an action under {ACTION_MAX} characters."
    new_categories: list[str] | None = None
    if recategorise is not None:
        if not is_keyholder(author.role_set):
            errors["categories"] = "Only the safeguarding team can re-categorise."
        elif not recategorise:
            errors["categories"] = "Choose at least one category."
        elif unknown := [c for c in recategorise if catalogue.category(c) is None]:
            errors["categories"] = f"Unknown category: {unknown[0]}."
        else:
            new_categories = list(dict.fromkeys(recategorise))
            if new_categories == await current_categories(session, incident=incident):
                new_categories = None
    picked = await active_staff_with_ids(
        session, workspace_id=incident.workspace_id, ids=alert_staff_ids
    )
    if len(picked) != len(set(alert_staff_ids)):
        errors["alert"] = "Some of the people chosen are not current staff."
    elif refused := await alert_refusal(session, incident=incident, staff_ids=alert_staff_ids):
        errors["alert"] = refused
    withdrawn = await withdrawn_ids(session, incident_id=incident.id)
    if withdrawn_picked := [p for p in picked if p.id in withdrawn]:
        errors["alert"] = WITHDRAWN_BY_THE_TEAM.format(name=withdrawn_picked[0].name)
    if errors:
        raise InvalidAction(errors)
    categories = new_categories or await current_categories(session, incident=incident)
    recipients = await _action_recipients(
        session,
        author=author,
        incident=incident,
        categories=categories,
        catalogue=catalogue,
        picked=picked,
        withdrawn=withdrawn,
    )
    return ActionPlan(author, incident, text, new_categories, recipients)


async def _action_recipients(
    session: AsyncSession,
    *,
    author: Staff,
    incident: Incident,
    categories: Sequence[str],
    catalogue: Catalogue,
    picked: Sequence[Staff],
    withdrawn: set[int],
) -> list[Staff]:
    """Whom an action alerts (`store.alert_rules.action_recipients`): the incident's author,
    the roles its categories' rules name for actions, and the people picked; never anyone
    whose access was withdrawn."""
    staff = await active_staff_by_id(session, workspace_id=incident.workspace_id)
    adult = await session.get(IncidentAdult, incident.id)
    if adult is not None:
        # An allegation: no rule's roles (they could name the adult, and key-holders see
        # it only when shared), but its managers; never the adult named.
        managers = await session.scalars(
            select(Alert.recipient_id).where(
                Alert.incident_id == incident.id,
                Alert.action_id.is_(None),
                Alert.reason == AlertReason.ALLEGATIONS,
            )
        )
        chosen = alert_rules.action_recipients(
            action_author_id=author.id,
            incident_author_id=incident.author_id,
            categories=[],
            staff_by_role={},
            class_teacher_ids=[],
            picked_ids=[*managers, *(s.id for s in picked)],
            withdrawn_ids={*withdrawn, *([adult.staff_id] if adult.staff_id else [])},
        )
    else:
        groups = {p.pupil.registration_group for p in incident.pupils}
        teachers = await class_teacher_ids(
            session, workspace_id=incident.workspace_id, groups=groups
        )
        chosen = alert_rules.action_recipients(
            action_author_id=author.id,
            incident_author_id=incident.author_id,
            categories=[catalogue.category(name) or Category(name, False) for name in categories],
            staff_by_role=staff_ids_by_role(staff),
            class_teacher_ids=[i for i in dict.fromkeys(teachers) if i in staff],
            picked_ids=[s.id for s in picked],
            withdrawn_ids=withdrawn,
        )
    staff.update({s.id: s for s in picked})
    return [staff[r.staff_id] for r in chosen if r.staff_id in staff]


async def grant_task_access(
    session: AsyncSession,
    *,
    incident: Incident,
    recipient: Staff,
    action_id: int,
    now: dt.datetime,
) -> Alert | None:
    """Let a task's assignee see the concern the way "also alert" does: an alert on the
    action, without its DM (the task's own DM tells them). None if they already may."""
    visible = await session.scalar(
        visible_incident_ids(recipient).where(Incident.id == incident.id)
    )
    if visible is not None:
        return None
    return await _add_alert(
        session,
        incident=incident,
        recipient=recipient,
        reason=AlertReason.ACTION,
        action_id=action_id,
        now=now,
    )


async def write_action(
    session: AsyncSession,
    plan: ActionPlan,
    *,
    cipher: Cipher,
    public_url: str,
    now: dt.datetime,
) -> IncidentAction:
    """Write a checked action with its alerts and their DMs."""
    author, incident = plan.author, plan.incident
    action = IncidentAction(
        workspace_id=incident.workspace_id,
        incident_id=incident.id,
        author_id=author.id,
        created_at=now,
        categories=plan.categories,
    )
    await keyring.seal(session, cipher, action, {IncidentAction.text_ct: plan.text})
    await textsearch.add_text(
        session,
        incident_id=incident.id,
        workspace_id=incident.workspace_id,
        text=plan.text,
        cipher=cipher,
    )
    categories = plan.categories or await current_categories(session, incident=incident)
    headline = messages.action_headline(incident.number, author.slack_user_id, categories)
    url = messages.incident_url(public_url, incident.number)
    for recipient in plan.recipients:
        if recipient.id == author.id:
            continue
        alert = await _add_alert(
            session,
            incident=incident,
            recipient=recipient,
            reason=AlertReason.ACTION,
            action_id=action.id,
            now=now,
        )
        _queue_alert(session, alert=alert, recipient=recipient, headline=headline, url=url, now=now)
    return action


async def add_action(
    session: AsyncSession,
    *,
    author: Staff,
    incident: Incident,
    text: str,
    alert_staff_ids: Sequence[int] = (),
    recategorise: Sequence[str] | None = None,
    catalogue: Catalogue,
    cipher: Cipher,
    public_url: str,
    now: dt.datetime | None = None,
) -> IncidentAction:
    """Add an action (the caller has checked `author` may see `incident`)."""
    wanted = ActionWanted(text, alert_staff_ids, recategorise)
    plan = await check_action(
        session, author=author, incident=incident, wanted=wanted, catalogue=catalogue
    )
    return await write_action(
        session, plan, cipher=cipher, public_url=public_url, now=now or utcnow()
    )


async def is_restricted(session: AsyncSession, *, incident: Incident, catalogue: Catalogue) -> bool:
    """Whether the incident has a restricted category: as filed, or as it is now."""
    if any(c.restricted for c in incident.categories):
        return True
    current = await current_categories(session, incident=incident)
    return restricted_now(incident, current=current, catalogue=catalogue)


def restricted_now(incident: Incident, *, current: Iterable[str], catalogue: Catalogue) -> bool:
    """`is_restricted`, given the incident's categories now (`current_categories`)."""
    if any(c.restricted for c in incident.categories):
        return True
    return any((c := catalogue.category(name)) is not None and c.restricted for name in current)


WITHDRAWN_BY_THE_TEAM = (
    "The safeguarding team withdrew {name}'s access to this concern: only they can give it back."
)


async def withdrawn_ids(session: AsyncSession, *, incident_id: int) -> set[int]:
    """The staff whose access to the incident a key-holder withdrew (and has not given
    back): actions do not alert them, and only a key-holder may share it with them again."""
    alerted = await session.scalars(
        select(Alert.recipient_id).where(
            Alert.incident_id == incident_id, Alert.withdrawn_at.isnot(None)
        )
    )
    invited = await session.scalars(
        select(IncidentInvite.staff_id).where(
            IncidentInvite.incident_id == incident_id, IncidentInvite.withdrawn_at.isnot(None)
        )
    )
    return set(alerted) | set(invited)


class ShareRefused(Exception):
    """Not theirs to share: the incident has a restricted category (the one 404)."""


async def invite(
    session: AsyncSession,
    *,
    inviter: Staff,
    incident: Incident,
    staff_id: int | None,
    catalogue: Catalogue,
    public_url: str,
    now: dt.datetime | None = None,
) -> Staff:
    """Share the incident with a colleague (None: no one was chosen) and alert them (once).

    ShareRefused if the inviter may not share it (`store.access.may_share`)."""
    now = now or utcnow()
    # An allegation's sharing is its manager's (`share_refusal`, below).
    if await session.get(IncidentAdult, incident.id) is None:
        restricted = await is_restricted(session, incident=incident, catalogue=catalogue)
        if not may_share(inviter.role_set, restricted=restricted):
            raise ShareRefused(incident.id)
    found = (
        await active_staff_with_ids(session, workspace_id=incident.workspace_id, ids=[staff_id])
        if staff_id is not None
        else []
    )
    if not found:
        raise InvalidAction({"staff": "Choose a current member of staff."})
    guest = found[0]
    if refused := await share_refusal(session, sharer=inviter, incident=incident, guest=guest):
        raise InvalidAction({"staff": refused})
    if guest.id == incident.author_id:
        raise InvalidAction({"staff": "They wrote this concern and can already see it."})
    withdrawn = guest.id in await withdrawn_ids(session, incident_id=incident.id)
    if withdrawn and not is_keyholder(inviter.role_set):
        raise InvalidAction({"staff": WITHDRAWN_BY_THE_TEAM.format(name=guest.name)})
    existing = await session.get(IncidentInvite, (incident.id, guest.id))
    if existing is not None and existing.withdrawn_at is None:
        raise InvalidAction({"staff": "They have already been invited."})
    if existing is not None:  # a key-holder gives back access they withdrew
        existing.withdrawn_at, existing.invited_by_id, existing.created_at = None, inviter.id, now
    else:
        session.add(
            IncidentInvite(
                incident_id=incident.id,
                staff_id=guest.id,
                invited_by_id=inviter.id,
                created_at=now,
            )
        )
    if withdrawn:
        await session.execute(
            update(Alert)
            .where(Alert.incident_id == incident.id, Alert.recipient_id == guest.id)
            .values(withdrawn_at=None)
            .execution_options(synchronize_session="fetch")
        )
    alert = await session.scalar(
        select(Alert).where(
            Alert.incident_id == incident.id,
            Alert.recipient_id == guest.id,
            Alert.action_id.is_(None),
        )
    )
    if alert is None or withdrawn:
        if alert is None:
            alert = await _add_alert(
                session, incident=incident, recipient=guest, reason=AlertReason.INVITED, now=now
            )
        categories = await current_categories(session, incident=incident)
        _queue_alert(
            session,
            alert=alert,
            recipient=guest,
            headline=messages.invite_headline(incident.number, inviter.slack_user_id, categories),
            url=messages.incident_url(public_url, incident.number),
            now=now,
        )
    await session.flush()
    return guest
