"""Filing a concern: validation, the immutable incident, its alerts and its outbox rows.

`submit_concern` is the one way an incident comes to exist. It validates everything a
client could have got wrong or forged, then writes the incident, its alerts and every
Slack message they cause in the caller's transaction (DESIGN §2.2).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    Integer,
    Sequence,
    String,
    and_,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from store import (
    alert_rules,
    allegations,
    audit,
    bulk,
    keyring,
    messages,
    outbox,
    textsearch,
    urgent,
)
from store.access import is_keyholder
from store.bulk import table_of
from store.catalogue import Catalogue, Category
from store.crypto import Cipher
from store.db import DatabaseUnavailable, is_lock_timeout, side_engine
from store.enums import AlertReason, CaseStatus, ParentsContacted
from store.errors import FieldErrors
from store.ids import MAX_ID
from store.models import (
    Alert,
    AuditEvent,
    BodyMap,
    CaseStatusChange,
    CurrentCaseStatus,
    Id,
    Incident,
    IncidentAction,
    IncidentAdult,
    IncidentAgency,
    IncidentCategory,
    IncidentNumberGap,
    IncidentPupil,
    IncidentPupilCorrection,
    NarrativeToken,
    Pupil,
    Referral,
    Staff,
    StaffClass,
    StoredFile,
    Task,
    UrgentConcern,
    UTCDateTime,
    Workspace,
    utcnow,
)
from store.school_config import SchoolConfig
from store.staff import Member, active_members, staff_ids_by_role

NARRATIVE_MAX = 3000
REASON_MAX = 500
MAX_LINKED_PUPILS = 20
MAX_ALSO_ALERT = 30
PARENTS_CHOICES = tuple(ParentsContacted)
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
UNSTORABLE = "This has a character Vigil cannot store (a broken emoji?): retype that part."


@dataclass(frozen=True)
class ConcernDraft:
    """A concern as the reporter entered it (raw ids as strings, not yet trusted)."""

    pupil_id: str | None
    narrative: str
    categories: list[str]
    happened_at: dt.datetime | None = None
    linked_pupil_ids: list[str] = field(default_factory=list)
    also_alert_slack_ids: list[str] = field(default_factory=list)
    agencies: list[str] = field(default_factory=list)
    parents_contacted: str | None = None
    parents_reason: str = ""
    about_adult: str | None = None  # "pupil" (or None), or the kind of adult (AdultKind)
    adult: str | None = None  # "staff:<id>" or "name:<typed name>"
    urgent: bool = False  # "A child may be at immediate risk"


class InvalidConcern(FieldErrors):
    """The draft cannot be filed; `errors` maps each field to a message for the reporter."""


@dataclass(frozen=True)
class FiledConcern:
    incident_id: int
    number: int
    alerted: int
    categories: list[str]


def check_draft(
    draft: ConcernDraft, *, catalogue: Catalogue, keyholder: bool, now: dt.datetime
) -> dict[str, str]:
    """Errors that need no database: required fields, lengths, choices."""
    errors: dict[str, str] = {}
    if not draft.pupil_id:
        errors["pupil"] = "Choose the pupil this concern is about."
    narrative = draft.narrative.strip()
    if not narrative:
        errors["narrative"] = "Describe what happened."
    elif len(narrative) > NARRATIVE_MAX:
        errors["narrative"] = (
            f"Keep this under {NARRATIVE_MAX} characters ({len(narrative)} now); "
            "add the rest as an action once the concern is filed."
        )
    elif not _is_utf8(narrative):
        errors["narrative"] = UNSTORABLE
    if draft.happened_at is not None and draft.happened_at > now + FUTURE_TOLERANCE:
        errors["happened_at"] = "This is in the future: when did it happen?"

    if not draft.categories:
        errors["categories"] = "Choose at least one category."
    else:
        allowed = {c.name for c in catalogue.categories_for(keyholder=keyholder)}
        unknown = [name for name in draft.categories if catalogue.category(name) is None]
        refused = [name for name in draft.categories if name not in allowed]
        if unknown:
            errors["categories"] = f"Unknown category: {unknown[0]}."
        elif refused:
            private = [c.name for c in catalogue.categories_for(keyholder=False) if c.restricted]
            instead = (
                f"Choose {private[0]} to tell the safeguarding team alone"
                if private
                else "Choose the closest other category"
            )
            errors["categories"] = (
                f"Only the safeguarding team can use {refused[0]}. {instead}, and tell a DSL "
                "at once."
            )
    unknown_agencies = [a for a in draft.agencies if a not in catalogue.agencies]
    if unknown_agencies:
        errors["agencies"] = f"Unknown agency: {unknown_agencies[0]}."

    if len(draft.linked_pupil_ids) > MAX_LINKED_PUPILS:
        errors["linked_pupils"] = f"Link at most {MAX_LINKED_PUPILS} pupils."
    elif draft.pupil_id and draft.pupil_id in draft.linked_pupil_ids:
        errors["linked_pupils"] = "The main pupil is already on this concern."
    if len(draft.also_alert_slack_ids) > MAX_ALSO_ALERT:
        errors["also_alert"] = f"Alert at most {MAX_ALSO_ALERT} people directly."
    elif not all("\x00" not in u and _is_utf8(u) for u in draft.also_alert_slack_ids):
        # No Slack id holds these, and the database could not even compare them.
        errors["also_alert"] = "One of these people is not on Vigil's staff list."

    if draft.parents_contacted not in PARENTS_CHOICES:
        errors["parents_contacted"] = "Say whether parents or carers were contacted."
    reason = draft.parents_reason.strip()
    if draft.parents_contacted == ParentsContacted.NO and not reason:
        errors["parents_reason"] = "Parents or carers were not contacted: say why."
    elif len(reason) > REASON_MAX:
        errors["parents_reason"] = f"Keep this under {REASON_MAX} characters."
    elif not _is_utf8(reason):
        errors["parents_reason"] = UNSTORABLE
    errors.update(allegations.check_adult(draft.about_adult, draft.adult)[1])
    if draft.about_adult not in (None, "", allegations.ABOUT_PUPIL) and draft.also_alert_slack_ids:
        errors["also_alert"] = (
            "A concern about an adult goes only to the allegations manager: remove the "
            "people picked here (the manager can share it)."
        )
    return errors


def _is_utf8(text: str) -> bool:
    """False for text with a lone surrogate (JSON can carry one; UTF-8 cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_ids(raw: list[str]) -> list[int] | None:
    try:
        ids = [int(value) for value in raw]
    except (TypeError, ValueError):
        return None
    # An id beyond 64 bits is on no roster (and the databases refuse to compare it).
    return ids if all(0 < i <= MAX_ID for i in ids) else None


async def incident_id_by_number(
    session: AsyncSession, *, workspace_id: int, number: int
) -> int | None:
    """The id of the workspace's incident with this number (for audit entries only)."""
    return await session.scalar(
        select(Incident.id).where(Incident.workspace_id == workspace_id, Incident.number == number)
    )


@dataclass(frozen=True)
class Extras:
    """Which of the rarer things an incident has (its page reads only those it has)."""

    files: bool
    body_maps: bool
    tasks: bool
    referrals: bool
    corrections: bool
    status_changes: bool
    urgent: bool


def _extras_statement() -> Any:
    """`extras_of`'s one statement, built once (its parameter: `incident_id`)."""
    incident_id: BindParameter[int] = bindparam("incident_id", type_=Id)
    # A task is found by its action (`tasks.action_id` is unique, so indexed).
    actions = select(IncidentAction.id).where(IncidentAction.incident_id == incident_id)
    found = (
        select(StoredFile.id).where(StoredFile.incident_id == incident_id),
        select(BodyMap.id).where(BodyMap.incident_id == incident_id),
        select(Task.id).where(Task.action_id.in_(actions)),
        select(Referral.id).where(Referral.incident_id == incident_id),
        select(IncidentPupilCorrection.id).where(
            IncidentPupilCorrection.incident_id == incident_id
        ),
        select(CaseStatusChange.id).where(CaseStatusChange.incident_id == incident_id),
        select(UrgentConcern.incident_id).where(UrgentConcern.incident_id == incident_id),
    )
    return select(*(query.exists() for query in found))


_EXTRAS = _extras_statement()


async def extras_of(session: AsyncSession, *, incident_id: int) -> Extras:
    """`Extras` in one statement: most concerns have none of them, and a query each costs
    more than asking once."""
    row = (await session.execute(_EXTRAS, {"incident_id": incident_id})).one()
    return Extras(*(bool(found) for found in row))


async def number_of(session: AsyncSession, *, incident_id: int) -> int | None:
    """The number of the incident with this id."""
    return await session.scalar(select(Incident.number).where(Incident.id == incident_id))


async def filed_from_view(session: AsyncSession, *, slack_view_id: str) -> bool:
    """Whether an incident was filed from this modal already (Slack may resend)."""
    found = await session.scalar(_FILED_FROM_VIEW, {"slack_view_id": slack_view_id})
    return found is not None


_FILED_FROM_VIEW = select(Incident.id).where(Incident.slack_view_id == bindparam("slack_view_id"))


@dataclass(frozen=True)
class _Resolved:
    """A draft that passed every check, with the rows it names."""

    pupil_ids: list[int]  # the main pupil, then the linked ones
    class_teacher_ids: list[int]  # the staff who teach the pupils' groups (by id)
    staff: dict[int, Member]  # every active member of staff, by id
    added: list[Member]  # the people the reporter chose to alert as well
    categories: list[Category]  # as chosen, each once
    parents_contacted: ParentsContacted
    adult: allegations.AdultChoice | None = None  # an allegation about this adult
    adult_staff: Member | None = None  # the adult, when on the staff list


async def submit_concern(
    session: AsyncSession,
    *,
    workspace_id: int,
    author: Staff,
    draft: ConcernDraft,
    catalogue: Catalogue,
    cipher: Cipher,
    public_url: str,
    alert_channel: str | None = None,
    slack_view_id: str | None = None,
    now: dt.datetime | None = None,
    school: SchoolConfig | None = None,
) -> FiledConcern:
    """Validate and file a concern with its alerts and outbox rows; raise InvalidConcern.
    An allegation about an adult (`store.allegations`) is told to the allegations manager
    only, with a LADO consultation opened; `school` configures both.

    An urgent concern also alerts the DSL on duty (`school`'s rota, `store.urgent`) at
    once, names them in the reporter's receipt, and starts its escalation.
    """
    now = now or utcnow()
    school = school or SchoolConfig()
    resolved = await _check_and_resolve(
        session, workspace_id=workspace_id, author=author, draft=draft, catalogue=catalogue, now=now
    )
    # Every read happens before the workspace's number is taken (in _write_incident): on
    # SQLite its write lock is then held only for a few batched writes; on PostgreSQL the
    # number is taken and committed apart (`take_number`), so no lock waits on this one.
    recipients, staff = await _recipients(
        session, workspace_id=workspace_id, author=author, resolved=resolved, school=school
    )
    await keyring.ensure_data_key(session, cipher)
    search_key = await textsearch.search_key(session, workspace_id=workspace_id, cipher=cipher)
    on_duty: list[int] = []
    if draft.urgent:
        on_duty = (
            [r.staff_id for r in recipients]  # an allegation stays with its managers
            if resolved.adult is not None
            else urgent.plan(school, at=now, staff=staff, exclude={author.id})[0]
        )
        recipients = _with_on_duty(recipients, on_duty)
    taken = await take_number(session, workspace_id=workspace_id, now=now, alerts=len(recipients))
    rows = _incident_rows(
        taken,
        workspace_id=workspace_id,
        author=author,
        draft=draft,
        resolved=resolved,
        alerted=len(recipients),
        cipher=cipher,
        search_key=search_key,
        slack_view_id=slack_view_id,
        now=now,
    )
    incident, writes = rows.incident, rows.writes
    alerts = [_NewAlert(i, r.staff_id) for i, r in zip(taken.alert_ids, recipients, strict=True)]
    if alerts:
        writes.append(_alert_rows(incident, recipients=recipients, alerts=alerts, now=now))
    names = [c.name for c in resolved.categories]
    queued = _messages(
        incident=incident,
        author=author,
        alerts=alerts,
        staff=staff,
        # An allegation says it is one, never who about, and is not posted in the channel.
        categories=[allegations.CATEGORY, *names] if resolved.adult else names,
        alert_channel=None if resolved.adult else alert_channel,
        public_url=public_url,
        now=now,
        speak_to=[staff[i].name for i in on_duty] if draft.urgent else None,
    )
    if queued:
        writes.append(outbox.insert_many(session, queued))
    # The record key last: its INSERT says whether its random id was free.
    key = rows.record_key
    written = await bulk.write_all(session, writes, keyring.fresh_record_key_write(key))
    if written is None:
        await _reseal(session, cipher, rows)
    if draft.urgent:
        urgent.start(session, incident=incident, on_duty=on_duty, config=school, now=now)
    if resolved.adult is not None:
        await allegations.open_consultation(
            session, incident=incident, author=author, config=school, now=now
        )
    await session.flush()
    return FiledConcern(
        incident_id=incident.id, number=incident.number, alerted=len(alerts), categories=names
    )


async def _check_and_resolve(
    session: AsyncSession,
    *,
    workspace_id: int,
    author: Staff,
    draft: ConcernDraft,
    catalogue: Catalogue,
    now: dt.datetime,
) -> _Resolved:
    """Every check of the draft, with its pupils and added staff found; or InvalidConcern."""
    keyholder = is_keyholder(author.role_set)
    errors = check_draft(draft, catalogue=catalogue, keyholder=keyholder, now=now)
    pupil_ids, teacher_ids = await _find_pupils(
        session, workspace_id=workspace_id, draft=draft, errors=errors
    )
    # Every active member of staff, read once: who is alerted, and whom the draft names.
    staff = await active_members(session, workspace_id=workspace_id)
    added = _find_also_alert(staff, draft=draft, errors=errors)
    adult, adult_staff = _find_adult(staff, author=author, draft=draft, errors=errors)
    if errors:
        raise InvalidConcern(errors)
    assert draft.parents_contacted is not None  # check_draft refuses a draft without it
    categories = list(
        dict.fromkeys(c for name in draft.categories if (c := catalogue.category(name)))
    )
    return _Resolved(
        pupil_ids=pupil_ids,
        class_teacher_ids=teacher_ids,
        staff=staff,
        added=added,
        categories=categories,
        parents_contacted=ParentsContacted(draft.parents_contacted),
        adult=adult,
        adult_staff=adult_staff,
    )


def _find_adult(
    staff: dict[int, Member],
    *,
    author: Staff,
    draft: ConcernDraft,
    errors: dict[str, str],
) -> tuple[allegations.AdultChoice | None, Member | None]:
    """The adult an allegation is about, and their staff row if chosen from the list."""
    adult, _ = allegations.check_adult(draft.about_adult, draft.adult)
    if adult is None or adult.staff_id is None:
        return adult, None
    ids = _parse_ids([adult.staff_id])
    found = [staff[i] for i in ids or [] if i in staff]
    if not found:
        errors["adult"] = "That person is not on Vigil's staff list: type their name instead."
        return None, None
    if found[0].id == author.id:
        errors["adult"] = (
            "You cannot record an allegation about yourself here: speak to the headteacher "
            "(or the chair of governors) directly."
        )
        return None, None
    return adult, found[0]


_PUPILS_AND_TEACHERS = (  # `_find_pupils`' statement, built once
    select(Pupil.id, StaffClass.staff_id)
    .outerjoin(
        StaffClass,
        and_(
            StaffClass.workspace_id == bindparam("workspace_id"),
            StaffClass.registration_group == Pupil.registration_group,
        ),
    )
    .where(
        Pupil.workspace_id == bindparam("workspace_id"),
        Pupil.id.in_(bindparam("pupil_ids", expanding=True)),
        Pupil.left_on.is_(None),  # a leaver is no longer on the roster
    )
)


async def _find_pupils(
    session: AsyncSession, *, workspace_id: int, draft: ConcernDraft, errors: dict[str, str]
) -> tuple[list[int], list[int]]:
    """The main and linked pupils' ids, and the ids of the staff who teach their
    registration groups (in the same query); a pupil not on the roster is an error."""
    pupil_ids = _parse_ids([draft.pupil_id] if draft.pupil_id else [])
    linked_ids = _parse_ids(draft.linked_pupil_ids)
    if pupil_ids is None:
        errors["pupil"] = "That pupil is not on the roster."
    if linked_ids is None:
        errors["linked_pupils"] = "One of these pupils is not on the roster."
    wanted = (pupil_ids or []) + (linked_ids or [])
    pupils: set[int] = set()
    teachers: set[int] = set()
    if wanted:
        found = await session.execute(
            _PUPILS_AND_TEACHERS, {"workspace_id": workspace_id, "pupil_ids": wanted}
        )
        for pupil_id, teacher_id in found:
            pupils.add(pupil_id)
            if teacher_id is not None:
                teachers.add(teacher_id)
    if pupil_ids and pupil_ids[0] not in pupils:
        errors["pupil"] = "That pupil is not on the roster."
    if linked_ids and any(i not in pupils for i in linked_ids):
        errors["linked_pupils"] = "One of these pupils is not on the roster."
    return wanted, sorted(teachers)


def _find_also_alert(
    staff: dict[int, Member], *, draft: ConcernDraft, errors: dict[str, str]
) -> list[Member]:
    """The staff the reporter chose to alert as well; one not on the staff list is an error."""
    if not draft.also_alert_slack_ids or "also_alert" in errors:
        return []
    by_slack = {s.slack_user_id: s for s in staff.values() if s.slack_user_id}
    missing = [u for u in draft.also_alert_slack_ids if u not in by_slack]
    if missing:
        errors["also_alert"] = (
            f"<@{missing[0]}> is not on Vigil's staff list, so cannot be alerted."
        )
    return [by_slack[u] for u in draft.also_alert_slack_ids if u in by_slack]


async def _recipients(
    session: AsyncSession,
    *,
    workspace_id: int,
    author: Staff,
    resolved: _Resolved,
    school: SchoolConfig,
) -> tuple[list[alert_rules.Recipient], dict[int, Member]]:
    """Who is alerted (`store.alert_rules`, or `store.allegations` for an allegation), and
    every member of staff who may be, by id."""
    staff = dict(resolved.staff)
    if resolved.adult is not None:
        adult_id = resolved.adult_staff.id if resolved.adult_staff else None
        recipients = await allegations.recipients_for(
            session, staff=staff, author=author, adult_id=adult_id, config=school.allegations
        )
        return recipients, staff
    recipients = alert_rules.alert_recipients(
        author_id=author.id,
        categories=resolved.categories,
        staff_by_role=staff_ids_by_role(staff),
        class_teacher_ids=[i for i in resolved.class_teacher_ids if i in staff],
        added_ids=[s.id for s in resolved.added],
    )
    return recipients, staff


def _with_on_duty(
    recipients: list[alert_rules.Recipient], on_duty: list[int]
) -> list[alert_rules.Recipient]:
    """The recipients, and the staff on duty for an urgent concern (each person once)."""
    already = {r.staff_id for r in recipients}
    extra = [alert_rules.Recipient(i, AlertReason.URGENT) for i in on_duty if i not in already]
    return [*extra, *recipients]


def _incident_rows(
    taken: Taken,
    *,
    workspace_id: int,
    author: Staff,
    draft: ConcernDraft,
    resolved: _Resolved,
    alerted: int,
    cipher: Cipher,
    search_key: bytes,
    slack_view_id: str | None,
    now: dt.datetime,
) -> _Rows:
    """The incident (not added to the session: written by the statements), and the
    statements that write it with its record key, words, audit entry, pupils, categories,
    agencies and adult. Its id was taken with its number, so its values are sealed under
    its new record key at once: each row is inserted once, none updated after."""
    incident_id = taken.incident_id
    record_key = keyring.fresh_record_key(cipher, incident_id=incident_id)
    key_id = record_key["id"]
    reason = draft.parents_reason.strip()
    texts: dict[Any, str | None] = {
        Incident.narrative_ct: draft.narrative.strip(),
        Incident.parents_reason_ct: reason or None,
    }
    values: dict[str, Any] = {
        "id": incident_id,
        "workspace_id": workspace_id,
        "number": taken.number,
        "author_id": author.id,
        "happened_at": draft.happened_at or now,
        "created_at": now,
        "parents_contacted": resolved.parents_contacted,
        "slack_view_id": slack_view_id,
        **keyring.seal_values(cipher, incident_id, texts, key_id=key_id),
    }
    incident = Incident(**values)
    writes: list[bulk.Write] = [*taken.writes, bulk.Rows(table_of(Incident), [values])]
    # Every concern is open until a key-holder changes it (`store.casework`).
    case_status = {
        "incident_id": incident_id,
        "workspace_id": workspace_id,
        "change_id": None,
        "status": CaseStatus.OPEN.value,
        "outcome": None,
        "changed_at": now,
        "created_at": now,
    }
    writes.append(bulk.Rows(table_of(CurrentCaseStatus), [case_status]))
    entry = audit.entry(
        action="incident.create",
        actor=author,
        incident_id=incident_id,
        detail=f"{alerted} alerted",
        now=now,
    )
    writes.append(bulk.Rows(table_of(AuditEvent), [entry]))
    pupils = [
        {"incident_id": incident_id, "pupil_id": pid, "position": i, "is_main": i == 0}
        for i, pid in enumerate(dict.fromkeys(resolved.pupil_ids))
    ]
    writes.append(bulk.Rows(table_of(IncidentPupil), pupils, ("pupil_id", "position", "is_main")))
    categories = [
        {"incident_id": incident_id, "name": c.name, "restricted": c.restricted, "position": i}
        for i, c in enumerate(resolved.categories)
    ]
    varying = ("name", "restricted", "position")
    writes.append(bulk.Rows(table_of(IncidentCategory), categories, varying))
    agencies = [
        {"incident_id": incident_id, "name": name, "position": i}
        for i, name in enumerate(dict.fromkeys(draft.agencies))
    ]
    writes.append(bulk.Rows(table_of(IncidentAgency), agencies, ("name", "position")))
    adult_name: dict[Any, str | None] = {}
    if resolved.adult is not None:
        adult_name = {IncidentAdult.name_ct: resolved.adult.name or None}
        adult = {
            "incident_id": incident_id,
            "kind": resolved.adult.kind,
            "staff_id": resolved.adult_staff.id if resolved.adult_staff else None,
            **keyring.seal_values(cipher, incident_id, adult_name, key_id=key_id),
        }
        writes.append(bulk.Rows(table_of(IncidentAdult), [adult]))
    words = [
        {"token": t, "incident_id": incident_id}
        for t in sorted(textsearch.tokens(search_key, [draft.narrative]))
    ]
    writes.append(bulk.Rows(table_of(NarrativeToken), words, ("token",)))
    return _Rows(incident, writes, record_key, texts, adult_name)


@dataclass(frozen=True)
class _Rows:
    """A new incident's rows: the statements writing them, and its record key with the
    values sealed under it (to seal again should the key's random id be taken)."""

    incident: Incident
    writes: list[bulk.Write]
    record_key: dict[str, Any]
    texts: dict[Any, str | None]
    adult_name: dict[Any, str | None]


async def _reseal(session: AsyncSession, cipher: Cipher, rows: _Rows) -> None:
    """The record key's random id was taken (rarely): its key is forgotten, and the new
    incident's values sealed again under another (an UPDATE of ciphertext columns only,
    which the immutability guards allow)."""
    incident_id = rows.incident.id
    cipher.forget_key(rows.record_key["id"])
    while True:
        key = keyring.fresh_record_key(cipher, incident_id=incident_id)
        if await keyring.store_fresh_record_key(session, cipher, key):
            break
    await session.execute(
        update(Incident)
        .where(Incident.id == incident_id)
        .values(keyring.seal_values(cipher, incident_id, rows.texts, key_id=key["id"]))
    )
    if rows.adult_name:
        await session.execute(
            update(IncidentAdult)
            .where(IncidentAdult.incident_id == incident_id)
            .values(keyring.seal_values(cipher, incident_id, rows.adult_name, key_id=key["id"]))
        )


@dataclass(frozen=True)
class _NewAlert:
    id: int
    recipient_id: int


def _alert_rows(
    incident: Incident,
    *,
    recipients: list[alert_rules.Recipient],
    alerts: list[_NewAlert],
    now: dt.datetime,
) -> bulk.Rows:
    """An alert for each recipient (ids taken with the incident's number)."""
    rows = [
        {
            "id": alert.id,
            "workspace_id": incident.workspace_id,
            "incident_id": incident.id,
            "recipient_id": r.staff_id,
            "reason": r.reason,
            "created_at": now,
        }
        for alert, r in zip(alerts, recipients, strict=True)
    ]
    return bulk.Rows(table_of(Alert), rows, ("id", "recipient_id", "reason"))


def _messages(
    *,
    incident: Incident,
    author: Staff,
    alerts: list[_NewAlert],
    staff: dict[int, Member],
    categories: list[str],
    alert_channel: str | None,
    public_url: str,
    now: dt.datetime,
    speak_to: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The Slack messages the new incident causes (`outbox.insert_many`'s): each alert's
    DM, the channel line and the reporter's receipt (each only where there is somewhere
    to send it). `speak_to` (an urgent concern) names the staff on duty in the receipt."""
    number, url = incident.number, messages.incident_url(public_url, incident.number)
    common = {"workspace_id": incident.workspace_id, "incident_id": incident.id, "now": now}
    queued: list[dict[str, Any]] = []
    for alert in alerts:
        slack_id = staff[alert.recipient_id].slack_user_id
        if slack_id:
            queued.append(
                {
                    **common,
                    "kind": outbox.ALERT,
                    "channel": slack_id,
                    "alert_id": alert.id,
                    "payload": messages.alert(
                        alert_id=alert.id,
                        number=number,
                        author_slack_id=author.slack_user_id,
                        categories=categories,
                        url=url,
                        urgent=speak_to is not None,
                    ),
                }
            )
    if alert_channel:
        queued.append(
            {
                **common,
                "kind": outbox.CHANNEL,
                "channel": alert_channel,
                "payload": messages.channel_line(
                    number=number, author_slack_id=author.slack_user_id, categories=categories
                ),
            }
        )
    if author.slack_user_id:
        queued.append(
            {
                **common,
                "kind": outbox.RECEIPT,
                "channel": author.slack_user_id,
                "payload": messages.receipt(
                    number=number,
                    categories=categories,
                    alerted=len(alerts),
                    url=url,
                    speak_to=speak_to,
                ),
            }
        )
    return queued


#: Why a number taken is missing from the incidents (`IncidentNumberGap.reason`).
NEVER_FILED = "taken by a filing that was never committed (an error, a crash or a lost connection)"


class Taken(NamedTuple):
    """An incident number taken for a filing, the ids its incident and alerts are written
    with, and what the filing must write with them (`writes`: the gap row's deletion)."""

    number: int
    incident_id: int
    alert_ids: list[int]
    writes: list[bulk.Write]


def _new_ids(dialect: str, alerts: Any) -> tuple[Any, Any]:
    """SQL expressions for a new incident's id and its `alerts` alerts' ids, taken up
    front (so its values are sealed before it is written, never updated, and its rows are
    all written at once): from the sequences on PostgreSQL (an array of alert ids); on
    SQLite, the ids it would give the rows (no AUTOINCREMENT: the largest + 1), safe under
    the write lock the statement holds (the largest alert id, the first less one)."""
    if dialect == "postgresql":
        alert_ids = (
            select(func.array_agg(Sequence("alerts_id_seq").next_value()))
            .select_from(func.generate_series(1, alerts))
            .scalar_subquery()
        )
        return Sequence("incidents_id_seq").next_value(), alert_ids
    return (
        select(func.coalesce(func.max(Incident.id), 0) + 1).scalar_subquery(),
        select(func.coalesce(func.max(Alert.id), 0)).scalar_subquery(),
    )


def _alert_ids(session: AsyncSession, taken: Any, alerts: int) -> list[int]:
    if session.get_bind().dialect.name == "postgresql":
        return [int(i) for i in taken or []]
    return [int(taken) + 1 + i for i in range(alerts)]


def _reserve_statement() -> Any:
    """`take_number`'s statement on PostgreSQL, built once (its parameters: workspace_id,
    taken_at, alerts)."""
    workspace_id = bindparam("workspace_id", type_=Id)
    taken = (
        update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(next_incident_number=Workspace.next_incident_number + 1)
        .returning((Workspace.next_incident_number - 1).label("number"))
        .cte("taken")
    )
    return (
        insert(IncidentNumberGap)
        .from_select(
            ["workspace_id", "number", "reason", "taken_at"],
            select(
                workspace_id,
                taken.c.number,
                literal(NEVER_FILED, String()),
                bindparam("taken_at", type_=UTCDateTime()),
            ),
        )
        .returning(
            IncidentNumberGap.number, *_new_ids("postgresql", bindparam("alerts", type_=Integer))
        )
    )


_RESERVE = _reserve_statement()


async def take_number(
    session: AsyncSession, *, workspace_id: int, now: dt.datetime, alerts: int = 0
) -> Taken:
    """The workspace's next incident number, for a concern being filed in `session`, and
    the ids its incident and its `alerts` alerts are to have (taken in the same statement).

    PostgreSQL: taken in a statement of its own, committed at once (the workspace's row is
    locked for that one statement, not until the filing commits), which also writes an
    `incident_number_gaps` row for it; the filing deletes that row in its own transaction.
    So a number is never given twice, and one whose filing never commits stays explained.
    The caller's transaction must not have changed the workspace's row (the statement
    would wait for it). SQLite (one writer at a time), and a workspace not committed yet:
    `next_number`, in the caller's transaction.
    """
    side = side_engine(session)
    if side is None:
        return await _next_number_and_ids(session, workspace_id=workspace_id, alerts=alerts)
    row = None
    for attempt in (1, 2):
        try:
            async with side.connect() as connection:
                values = {"workspace_id": workspace_id, "taken_at": now, "alerts": alerts}
                row = (await connection.execute(_RESERVE, values)).first()
            break
        except DatabaseUnavailable:
            # A pooled connection that died with a restart (the pool is then emptied):
            # once more, on a new one. Had it been taken, the number is a recorded gap.
            if attempt == 2:
                raise
        except DBAPIError as error:
            if not is_lock_timeout(error):
                raise
            break  # the caller's own transaction holds the workspace's row
    if row is None:  # or the workspace is this transaction's own, not committed yet
        return await _next_number_and_ids(session, workspace_id=workspace_id, alerts=alerts)
    number = int(row[0])
    used = bulk.Deletion(
        table_of(IncidentNumberGap), {"workspace_id": workspace_id, "number": number}
    )
    return Taken(number, int(row[1]), _alert_ids(session, row[2], alerts), [used])


async def _next_number_and_ids(session: AsyncSession, *, workspace_id: int, alerts: int) -> Taken:
    """`next_number`, with the new incident's and alerts' ids in the same statement."""
    row = (
        await session.execute(
            update(Workspace)
            .where(Workspace.id == workspace_id)
            .values(next_incident_number=Workspace.next_incident_number + 1)
            .returning(
                Workspace.next_incident_number,
                *_new_ids(session.get_bind().dialect.name, alerts),
            )
        )
    ).one()
    return Taken(int(row[0]) - 1, int(row[1]), _alert_ids(session, row[2], alerts), [])


async def number_gaps(
    session: AsyncSession, *, workspace_id: int, before: dt.datetime
) -> list[tuple[int, str]]:
    """The numbers taken before `before` and never used, each with its reason (a number
    taken moments ago may still be in its filing's transaction)."""
    rows = await session.execute(
        select(IncidentNumberGap.number, IncidentNumberGap.reason)
        .where(IncidentNumberGap.workspace_id == workspace_id, IncidentNumberGap.taken_at < before)
        .order_by(IncidentNumberGap.number)
    )
    return [(int(number), str(reason)) for number, reason in rows]


async def next_number(session: AsyncSession, *, workspace_id: int) -> int:
    """Take the workspace's next incident number in the caller's transaction (the row lock
    serialises writers until it ends; SQLite, and a record transfer's import)."""
    taken = await session.scalar(
        update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(next_incident_number=Workspace.next_incident_number + 1)
        .returning(Workspace.next_incident_number)
    )
    assert taken is not None
    return int(taken) - 1
