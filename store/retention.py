"""Retention (DESIGN §14): when a record comes due for review, legal holds, and what
destroying a record removes.

The rules (`[retention]` in vigil.toml, `store.school_config.Retention`):

- a concern about pupils, and a paper record: the pupil's date of birth plus
  `pupil_years` (default 25). A concern naming several pupils (or corrected to another
  pupil: every pupil it ever named counts) is due only when all of them are, so on the
  latest of their dates;
- an allegation about an adult: `allegation_years` (default 10) after the allegation's
  date (when it happened), whatever the pupils' dates.

A record under a legal hold (`retention_holds`, not lifted) never comes due. The review
list shows a key-holder only the records they may see (`store.access.in_view`): an
allegation is listed only for a key-holder it was shared with. Dates of birth and names
are read through `store.pupils.dates_of_birth` and `store.pupils.display_names` only.

`shred_incident` and `shred_paper_record` delete a record's key and every row of it;
only the flow
`store.flows.retention.destroy` calls them, inside `store.immutability.destruction_permit`
(the triggers refuse them anywhere else).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import keyring, pupils
from store.access import in_view, is_allegation
from store.crypto import Cipher, bind
from store.models import (
    Alert,
    AuditEvent,
    BodyMap,
    CaseStatusChange,
    CurrentCaseStatus,
    FileChunk,
    Incident,
    IncidentAction,
    IncidentAdult,
    IncidentAgency,
    IncidentCategory,
    IncidentInvite,
    IncidentPupil,
    IncidentPupilCorrection,
    NarrativeToken,
    Nudge,
    OutboxMessage,
    PaperRecord,
    ReadReceipt,
    Referral,
    ReferralEvent,
    RetentionHold,
    Staff,
    StoredFile,
    Task,
    UrgentConcern,
    UrgentEscalation,
)
from store.school_config import Retention

REASON_MAX = 500


class RecordKind(StrEnum):
    """What kind of record is due: the words the review list and the tombstone use."""

    CONCERN = "concern"
    ALLEGATION = "allegation about an adult"
    PAPER = "paper record"


class Rule(StrEnum):
    PUPIL = "pupil"
    ALLEGATION = "allegation"


def add_years(day: dt.date, years: int) -> dt.date:
    """`day` so many years on (29 February becomes 28 February in a common year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def pupil_due(born: dt.date, rules: Retention) -> dt.date:
    """When a pupil's record comes due: date of birth + `pupil_years`."""
    return add_years(born, rules.pupil_years)


def allegation_due(happened: dt.date, rules: Retention) -> dt.date:
    """When an allegation about an adult comes due: its date + `allegation_years`."""
    return add_years(happened, rules.allegation_years)


def concern_due(births: Iterable[dt.date | None], rules: Retention) -> dt.date | None:
    """When a concern naming these pupils comes due: the latest of their dates (None if a
    pupil's date of birth is unknown: never due)."""
    dates = list(births)
    if not dates or any(born is None for born in dates):
        return None
    return max(pupil_due(born, rules) for born in dates if born is not None)


def rule_text(rule: Rule, rules: Retention) -> str:
    """The rule as the review list and the tombstone name it."""
    if rule is Rule.ALLEGATION:
        return f"allegation date + {rules.allegation_years} years"
    return f"date of birth + {rules.pupil_years} years"


@dataclass(frozen=True)
class Due:
    """A record and its retention date (whether or not it has passed)."""

    kind: RecordKind
    due_on: dt.date
    rule: Rule
    pupil_ids: tuple[int, ...]
    incident_id: int | None = None
    number: int | None = None
    paper_record_id: int | None = None
    hold_id: int | None = None  # a legal hold not lifted


async def _holds(session: AsyncSession, *, workspace_id: int) -> dict[tuple[str, int], int]:
    rows = await session.execute(
        select(RetentionHold.id, RetentionHold.incident_id, RetentionHold.paper_record_id).where(
            RetentionHold.workspace_id == workspace_id, RetentionHold.lifted_at.is_(None)
        )
    )
    held: dict[tuple[str, int], int] = {}
    for hold_id, incident_id, paper_id in rows.all():
        if incident_id is not None:
            held[("incident", incident_id)] = hold_id
        if paper_id is not None:
            held[("paper", paper_id)] = hold_id
    return held


async def _pupils_by_incident(
    session: AsyncSession, *, workspace_id: int, viewer: Staff, number: int | None
) -> dict[int, set[int]]:
    """Every pupil each visible incident (or the one numbered `number`) named, at filing
    or by a correction."""
    named: dict[int, set[int]] = defaultdict(set)
    scope = [Incident.workspace_id == workspace_id, in_view(Incident.id, viewer)]
    if number is not None:
        scope.append(Incident.number == number)
    filed = await session.execute(
        select(IncidentPupil.incident_id, IncidentPupil.pupil_id)
        .join(Incident, Incident.id == IncidentPupil.incident_id)
        .where(*scope)
    )
    for incident_id, pupil_id in filed.all():
        named[incident_id].add(pupil_id)
    corrected = await session.execute(
        select(IncidentPupilCorrection.incident_id, IncidentPupilCorrection.right_pupil_id)
        .join(Incident, Incident.id == IncidentPupilCorrection.incident_id)
        .where(*scope)
    )
    for incident_id, pupil_id in corrected.all():
        named[incident_id].add(pupil_id)
    return named


async def retention_dates(
    session: AsyncSession,
    *,
    viewer: Staff,
    rules: Retention,
    number: int | None = None,
    paper_record_id: int | None = None,
) -> list[Due]:
    """Every record `viewer` may see with its retention date and any legal hold (or only
    the concern numbered `number`, or only one paper record)."""
    workspace_id = viewer.workspace_id
    births = await pupils.dates_of_birth(session, workspace_id=workspace_id)
    held = await _holds(session, workspace_id=workspace_id)
    records: list[Due] = []
    if paper_record_id is None:
        records += await _incident_dates(
            session, viewer=viewer, rules=rules, number=number, births=births, held=held
        )
    if number is None:
        records += await _paper_dates(
            session,
            workspace_id=workspace_id,
            rules=rules,
            paper_record_id=paper_record_id,
            births=births,
            held=held,
        )
    return records


async def _incident_dates(
    session: AsyncSession,
    *,
    viewer: Staff,
    rules: Retention,
    number: int | None,
    births: dict[int, dt.date],
    held: dict[tuple[str, int], int],
) -> list[Due]:
    """The visible concerns' dates (only the one numbered `number`, if given)."""
    records: list[Due] = []
    workspace_id = viewer.workspace_id
    named = await _pupils_by_incident(
        session, workspace_id=workspace_id, viewer=viewer, number=number
    )
    query = (
        select(Incident.id, Incident.number, Incident.happened_at, is_allegation(Incident.id))
        .where(Incident.workspace_id == workspace_id, in_view(Incident.id, viewer))
        .order_by(Incident.number)
    )
    if number is not None:
        query = query.where(Incident.number == number)
    incidents = await session.execute(query)
    for incident_id, number, happened_at, allegation in incidents.all():
        pupil_ids = tuple(sorted(named.get(incident_id, ())))
        if allegation:
            due: dt.date | None = allegation_due(happened_at.date(), rules)
            kind, rule = RecordKind.ALLEGATION, Rule.ALLEGATION
        else:
            due = concern_due((births.get(p) for p in pupil_ids), rules)
            kind, rule = RecordKind.CONCERN, Rule.PUPIL
        if due is None:
            continue
        records.append(
            Due(
                kind,
                due,
                rule,
                pupil_ids,
                incident_id=incident_id,
                number=number,
                hold_id=held.get(("incident", incident_id)),
            )
        )
    return records


async def _paper_dates(
    session: AsyncSession,
    *,
    workspace_id: int,
    rules: Retention,
    paper_record_id: int | None,
    births: dict[int, dt.date],
    held: dict[tuple[str, int], int],
) -> list[Due]:
    """The paper records' dates (only `paper_record_id`, if given)."""
    records: list[Due] = []
    query = (
        select(PaperRecord.id, PaperRecord.pupil_id)
        .where(PaperRecord.workspace_id == workspace_id)
        .order_by(PaperRecord.id)
    )
    if paper_record_id is not None:
        query = query.where(PaperRecord.id == paper_record_id)
    papers = await session.execute(query)
    for paper_id, pupil_id in papers.all():
        born = births.get(pupil_id)
        if born is None:
            continue
        records.append(
            Due(
                RecordKind.PAPER,
                pupil_due(born, rules),
                Rule.PUPIL,
                (pupil_id,),
                paper_record_id=paper_id,
                hold_id=held.get(("paper", paper_id)),
            )
        )
    return records


def _due(records: list[Due], today: dt.date) -> list[Due]:
    due = [r for r in records if r.due_on <= today and r.hold_id is None]
    return sorted(due, key=lambda r: (r.due_on, r.number or 0, r.paper_record_id or 0))


async def due_for_review(
    session: AsyncSession, *, viewer: Staff, rules: Retention, today: dt.date
) -> list[Due]:
    """The records past their retention date and not on hold, the longest overdue first."""
    return _due(await retention_dates(session, viewer=viewer, rules=rules), today)


async def review(
    session: AsyncSession, *, viewer: Staff, rules: Retention, today: dt.date
) -> tuple[list[Due], list[Due]]:
    """The review list (`due_for_review`) and the records under a legal hold, at once."""
    records = await retention_dates(session, viewer=viewer, rules=rules)
    return _due(records, today), [r for r in records if r.hold_id is not None]


async def on_hold(session: AsyncSession, *, viewer: Staff, rules: Retention) -> list[Due]:
    """The records `viewer` may see that are under a legal hold."""
    records = await retention_dates(session, viewer=viewer, rules=rules)
    return [r for r in records if r.hold_id is not None]


async def find(
    session: AsyncSession,
    *,
    viewer: Staff,
    rules: Retention,
    number: int | None = None,
    paper_record_id: int | None = None,
) -> Due | None:
    """One record `viewer` may see (a concern by number, or a paper record), with its date."""
    if (number is None) == (paper_record_id is None):
        return None
    records = await retention_dates(
        session, viewer=viewer, rules=rules, number=number, paper_record_id=paper_record_id
    )
    return records[0] if records else None


# -- legal holds -----------------------------------------------------------------------


class InvalidHold(ValueError):
    """A hold cannot be placed: no reason given, or the record is already held."""


async def place_hold(
    session: AsyncSession,
    cipher: Cipher,
    *,
    record: Due,
    reason: str,
    actor: Staff,
    now: dt.datetime,
) -> RetentionHold:
    """Put `record` under a legal hold, the reason stored encrypted."""
    reason = reason.strip()
    if not reason:
        raise InvalidHold("say why the record must be kept (a legal hold needs a reason)")
    if len(reason) > REASON_MAX:
        raise InvalidHold(f"keep the reason under {REASON_MAX} characters")
    if record.hold_id is not None:
        raise InvalidHold("this record is already under a legal hold")
    hold = RetentionHold(
        workspace_id=actor.workspace_id,
        incident_id=record.incident_id,
        paper_record_id=record.paper_record_id,
        placed_by_id=actor.id,
        placed_at=now,
    )
    await keyring.seal(session, cipher, hold, {RetentionHold.reason_ct: reason})
    await session.flush()
    return hold


async def lift_hold(
    session: AsyncSession, *, hold_id: int, actor: Staff, now: dt.datetime
) -> RetentionHold | None:
    """Lift a hold of this school not lifted yet (None if there is none)."""
    hold = await session.scalar(
        select(RetentionHold).where(
            RetentionHold.id == hold_id,
            RetentionHold.workspace_id == actor.workspace_id,
            RetentionHold.lifted_at.is_(None),
        )
    )
    if hold is None:
        return None
    hold.lifted_at, hold.lifted_by_id = now, actor.id
    await session.flush()
    return hold


@dataclass(frozen=True)
class HoldView:
    hold_id: int
    reason: str
    placed_by: str
    placed_at: dt.datetime


async def holds(
    session: AsyncSession, cipher: Cipher, *, hold_ids: Iterable[int]
) -> dict[int, HoldView]:
    """These holds, their reasons decrypted, by id."""
    wanted = set(hold_ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(RetentionHold, Staff.name)
        .join(Staff, Staff.id == RetentionHold.placed_by_id)
        .where(RetentionHold.id.in_(wanted))
    )
    await keyring.ensure_data_key(session, cipher)
    return {
        hold.id: HoldView(
            hold.id,
            cipher.decrypt(hold.reason_ct, bind(RetentionHold.reason_ct, hold.id)) or "",
            name,
            hold.placed_at,
        )
        for hold, name in rows.all()
    }


# -- destruction (only from store.flows.retention.destroy) -----------------------------


async def shred_incident(
    session: AsyncSession, cipher: Cipher, *, incident_id: int
) -> list[StoredFile]:
    """Delete the concern's record key (crypto-shredding: its values, wherever copied, can
    no longer be opened) and every row of it, children first; the audit log's entries
    about it lose their link to it. Returns its files (rows gone: their wrapped keys with
    them), whose objects the caller removes from a directory or bucket store."""
    await keyring.destroy_record_key(session, cipher, incident_id=incident_id)
    action_ids = select(IncidentAction.id).where(IncidentAction.incident_id == incident_id)
    referral_ids = select(Referral.id).where(Referral.incident_id == incident_id)
    alert_ids = select(Alert.id).where(Alert.incident_id == incident_id)
    files = list(
        (
            await session.scalars(
                select(StoredFile).where(
                    or_(StoredFile.incident_id == incident_id, StoredFile.action_id.in_(action_ids))
                )
            )
        ).all()
    )
    file_ids = [f.id for f in files]
    for statement in (
        delete(OutboxMessage).where(
            or_(OutboxMessage.incident_id == incident_id, OutboxMessage.alert_id.in_(alert_ids))
        ),
        delete(ReadReceipt).where(ReadReceipt.alert_id.in_(alert_ids)),
        delete(Task).where(Task.incident_id == incident_id),
        delete(Nudge).where(Nudge.referral_id.in_(referral_ids)),
        delete(ReferralEvent).where(
            or_(
                ReferralEvent.referral_id.in_(referral_ids),
                ReferralEvent.action_id.in_(action_ids),
            )
        ),
        delete(Referral).where(Referral.incident_id == incident_id),
        delete(CurrentCaseStatus).where(CurrentCaseStatus.incident_id == incident_id),
        delete(CaseStatusChange).where(CaseStatusChange.incident_id == incident_id),
        delete(UrgentEscalation).where(UrgentEscalation.incident_id == incident_id),
        delete(UrgentConcern).where(UrgentConcern.incident_id == incident_id),
        delete(Alert).where(Alert.incident_id == incident_id),
        delete(IncidentInvite).where(IncidentInvite.incident_id == incident_id),
        delete(FileChunk).where(FileChunk.file_id.in_(file_ids)),
        delete(StoredFile).where(StoredFile.id.in_(file_ids)),
        delete(BodyMap).where(BodyMap.incident_id == incident_id),
        delete(NarrativeToken).where(NarrativeToken.incident_id == incident_id),
        delete(IncidentPupilCorrection).where(IncidentPupilCorrection.incident_id == incident_id),
        delete(RetentionHold).where(RetentionHold.incident_id == incident_id),
        update(AuditEvent).where(AuditEvent.incident_id == incident_id).values(incident_id=None),
        delete(IncidentAction).where(IncidentAction.incident_id == incident_id),
        delete(IncidentAdult).where(IncidentAdult.incident_id == incident_id),
        delete(IncidentCategory).where(IncidentCategory.incident_id == incident_id),
        delete(IncidentAgency).where(IncidentAgency.incident_id == incident_id),
        delete(IncidentPupil).where(IncidentPupil.incident_id == incident_id),
        delete(Incident).where(Incident.id == incident_id),
    ):
        await session.execute(statement, execution_options={"synchronize_session": False})
    return files


async def shred_paper_record(
    session: AsyncSession, cipher: Cipher, *, paper_record_id: int
) -> list[StoredFile]:
    """Delete a paper record's key, the record, its scans and any lifted holds; returns
    its files."""
    await keyring.destroy_record_key(session, cipher, paper_record_id=paper_record_id)
    files = list(
        (
            await session.scalars(
                select(StoredFile).where(StoredFile.paper_record_id == paper_record_id)
            )
        ).all()
    )
    file_ids = [f.id for f in files]
    for statement in (
        delete(FileChunk).where(FileChunk.file_id.in_(file_ids)),
        delete(StoredFile).where(StoredFile.id.in_(file_ids)),
        delete(RetentionHold).where(RetentionHold.paper_record_id == paper_record_id),
        delete(PaperRecord).where(PaperRecord.id == paper_record_id),
    ):
        await session.execute(statement, execution_options={"synchronize_session": False})
    return files
