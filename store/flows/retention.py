"""Retention (DESIGN §14), for key-holders: the review list, legal holds, and the
confirmed destruction of a record past its retention date.

`destroy` is the one path that deletes part of a record: inside
`store.immutability.destruction_permit` (which the ORM guard and the database triggers
check) it deletes the record's key (crypto-shredding: what it sealed, wherever copied,
can no longer be opened) and every row of the record (`store.retention.shred_incident`,
`store.retention.shred_paper_record`), with them its files' wrapped keys, then the files'
objects from a directory or bucket store, and leaves a tombstone in the audit log: the
kind of record, its number, the rule, who and when; no content, no pupil. What backups
still hold is in docs/record-encryption.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, pupils, retention
from store.documents.s3 import FileStoreUnavailable
from store.documents.storage import FileStore, FilesUrlError, reading_store
from store.flows import Visit
from store.immutability import destruction_permit
from store.reports import cache as report_cache
from store.retention import Due, HoldView, RecordKind

log = structlog.get_logger(__name__)

VIEW, HOLD, LIFT = "retention.view", "retention.hold", "retention.lift"
DESTROY = "retention.destroy"
CONCERN, PAPER = "concern", "paper"


@dataclass(frozen=True)
class RecordRef:
    """A record as the web view names it: a concern by its number, a paper record by id."""

    kind: str  # CONCERN or PAPER
    key: int

    @property
    def path(self) -> str:
        return f"{self.kind}/{self.key}"


@dataclass(frozen=True)
class ReviewRow:
    ref: RecordRef
    kind: RecordKind
    number: int | None
    pupils: tuple[str, ...]
    due_on: dt.date
    rule: str
    overdue: bool
    hold: HoldView | None = None


@dataclass(frozen=True)
class RetentionPage:
    today: dt.date
    due: list[ReviewRow]
    held: list[ReviewRow]
    pupil_years: int
    allegation_years: int
    error: str | None = None


@dataclass(frozen=True)
class Held:
    hold_id: int


@dataclass(frozen=True)
class Destroyed:
    kind: RecordKind
    number: int | None


@dataclass(frozen=True)
class NotConfirmed:
    row: ReviewRow


def _today(visit: Visit) -> dt.date:
    return visit.now.astimezone(visit.setup.school.working_time.zone).date()


def _ref(record: Due) -> RecordRef:
    if record.paper_record_id is not None:
        return RecordRef(PAPER, record.paper_record_id)
    assert record.number is not None
    return RecordRef(CONCERN, record.number)


async def _rows(session: AsyncSession, visit: Visit, records: list[Due]) -> list[ReviewRow]:
    names = await pupils.display_names(
        session,
        workspace_id=visit.staff.workspace_id,
        pupil_ids={p for r in records for p in r.pupil_ids},
    )
    holds = await retention.holds(
        session, visit.setup.cipher, hold_ids={r.hold_id for r in records if r.hold_id}
    )
    rules, today = visit.setup.school.retention, _today(visit)
    return [
        ReviewRow(
            _ref(r),
            r.kind,
            r.number,
            tuple(names.get(p, "(not on the roster)") for p in r.pupil_ids),
            r.due_on,
            retention.rule_text(r.rule, rules),
            r.due_on <= today,
            holds.get(r.hold_id) if r.hold_id else None,
        )
        for r in records
    ]


async def review_page(
    session: AsyncSession, *, visit: Visit, error: str | None = None
) -> RetentionPage:
    """The records past their retention date, and those on hold (viewing is audited)."""
    rules = visit.setup.school.retention
    due, held = await retention.review(
        session, viewer=visit.staff, rules=rules, today=_today(visit)
    )
    visit.trail(session).add(VIEW, detail=f"{len(due)} due, {len(held)} held")
    return RetentionPage(
        _today(visit),
        await _rows(session, visit, due),
        await _rows(session, visit, held),
        rules.pupil_years,
        rules.allegation_years,
        error,
    )


async def _found(session: AsyncSession, visit: Visit, ref: RecordRef | None) -> Due | None:
    if ref is None:
        return None
    rules = visit.setup.school.retention
    if ref.kind == CONCERN:
        return await retention.find(session, viewer=visit.staff, rules=rules, number=ref.key)
    if ref.kind == PAPER:
        return await retention.find(
            session, viewer=visit.staff, rules=rules, paper_record_id=ref.key
        )
    return None


def _refused(session: AsyncSession, visit: Visit, action: str, ref: RecordRef | None) -> None:
    detail = ref.path if ref else "no such record"
    visit.trail(session).add(action, audit.REFUSED, detail=detail)
    log.warning("retention.refused", staff=visit.staff.id, action=action)


async def place_hold(
    session: AsyncSession, *, visit: Visit, ref: RecordRef | None, reason: str
) -> Held | RetentionPage | None:
    """Put a record under a legal hold; None (refusal audited) if it is not one the
    key-holder may see; the review page with the error if the hold cannot be placed."""
    record = await _found(session, visit, ref)
    if record is None or ref is None:
        _refused(session, visit, HOLD, ref)
        return None
    trail = visit.trail(session, incident_id=record.incident_id)
    try:
        hold = await retention.place_hold(
            session,
            visit.setup.cipher,
            record=record,
            reason=reason,
            actor=visit.staff,
            now=visit.now,
        )
    except retention.InvalidHold as error:
        trail.add(HOLD, audit.FAILED, detail=f"{ref.path}: {error}"[:200])
        return await review_page(session, visit=visit, error=str(error))
    trail.add(HOLD, detail=f"{ref.path}: hold {hold.id}")
    log.info("retention.held", staff=visit.staff.id, hold=hold.id)
    return Held(hold.id)


async def lift_hold(session: AsyncSession, *, visit: Visit, hold_id: int | None) -> bool:
    """Lift a legal hold on a record the key-holder may see (False, audited, if not)."""
    rules = visit.setup.school.retention
    held = await retention.on_hold(session, viewer=visit.staff, rules=rules)
    record = next((r for r in held if hold_id is not None and r.hold_id == hold_id), None)
    if record is None or hold_id is None:
        _refused(session, visit, LIFT, None)
        return False
    await retention.lift_hold(session, hold_id=hold_id, actor=visit.staff, now=visit.now)
    visit.trail(session, incident_id=record.incident_id).add(
        LIFT, detail=f"{_ref(record).path}: hold {hold_id}"
    )
    log.info("retention.hold_lifted", staff=visit.staff.id, hold=hold_id)
    return True


async def _destroyable(
    session: AsyncSession, visit: Visit, ref: RecordRef | None
) -> tuple[Due, ReviewRow] | None:
    """The record if it is past its date and not held, for the key-holder asking."""
    record = await _found(session, visit, ref)
    if record is None or record.hold_id is not None or record.due_on > _today(visit):
        return None
    (row,) = await _rows(session, visit, [record])
    return record, row


async def destruction_page(
    session: AsyncSession, *, visit: Visit, ref: RecordRef | None
) -> ReviewRow | None:
    """What the confirmation step shows; None (refusal audited) if the record is not
    one the key-holder may destroy now."""
    found = await _destroyable(session, visit, ref)
    if found is None:
        _refused(session, visit, DESTROY, ref)
        return None
    return found[1]


async def destroy(
    session: AsyncSession,
    *,
    visit: Visit,
    files: FileStore,
    ref: RecordRef | None,
    confirmed: bool,
) -> Destroyed | NotConfirmed | None:
    """Destroy a record past its retention date, once confirmed: the one audited path
    that deletes (see the module's docstring). None (refusal audited) if the record is
    not one the key-holder may destroy now."""
    found = await _destroyable(session, visit, ref)
    if found is None or ref is None:
        _refused(session, visit, DESTROY, ref)
        return None
    record, row = found
    if not confirmed:
        return NotConfirmed(row)
    async with destruction_permit(session):
        if record.incident_id is not None:
            stored = await retention.shred_incident(
                session, visit.setup.cipher, incident_id=record.incident_id
            )
        else:
            assert record.paper_record_id is not None
            stored = await retention.shred_paper_record(
                session, visit.setup.cipher, paper_record_id=record.paper_record_id
            )
        label = f"#{record.number}" if record.number is not None else f"{record.paper_record_id}"
        visit.trail(session).add(
            DESTROY,
            detail=f"tombstone: {record.kind} {label}; rule: {row.rule}; files: {len(stored)}",
        )
    report_cache.forget()  # its counts go (the stamp sees it too, in every process)
    for file in stored:
        try:
            await reading_store(files, file.storage).destroy(file.token)
        except (FileStoreUnavailable, FilesUrlError, OSError) as error:
            # Its key is already gone: what is left cannot be read. Logged to clear by hand.
            log.warning("retention.file_left", token=file.token, error=type(error).__name__)
    log.info("retention.destroyed", staff=visit.staff.id, kind=record.kind, files=len(stored))
    return Destroyed(record.kind, record.number)
