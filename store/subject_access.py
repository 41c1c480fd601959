"""Subject access requests (DESIGN §14; UK GDPR art. 15): a pupil's record as a pack for
whoever asked, with third parties redacted, and its one-month deadline.

- `due_on`: one calendar month from receipt (the same day of the next month, or its last
  day), moved past a weekend or bank holiday, as the ICO counts it.
- `gather`: the pack, from the pupil's chronology (`store.chronology.chronology`, as the
  key-holder may see it). Conservative: a concern about an adult (an allegation) is left
  out whole; files, scans and body maps are noted, never included (a file's name or a
  picture cannot be redacted here); agency references, the count of other pupils on a
  concern and concerns moved to another pupil are left out.
- `candidates` / `detect`: the names proposed for redaction, from the roster
  (`store.pupils.roster_names`: every other pupil's full, first, preferred and last name,
  never a form of the subject's own) and, if asked, the staff list (full and last names);
  only those that occur in the pack are proposed. Matching ignores case and accents and
  takes possessives ("Osian's").
- `redact`: a pack with every phrase still chosen blacked out as `REDACTED`.
- `nudge_deadlines`: the DSLs told once a working day of a request due within
  `NEAR_DAYS` or overdue; the message names the request's number, never the pupil.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import keyring, messages, outbox
from store.access import is_allegation
from store.chronology import (
    ACTION,
    BODY_MAP,
    CLOSED,
    CONTEXT,
    FILE,
    INCIDENT,
    PAPER,
    REFERRAL,
    RESPONSE,
    Entry,
    chronology,
)
from store.crypto import Cipher, bind
from store.models import (
    Incident,
    Pupil,
    SarRedaction,
    Staff,
    SubjectAccessRequest,
)
from store.nudges import NudgeDay, Nudger, nudge_due
from store.pupils import RosterName, roster_names
from store.school_config import SchoolConfig
from store.staff import nudge_recipients
from store.workdays import WorkingTime

log = structlog.get_logger(__name__)

REDACTED = "█ redacted"
NEAR_DAYS = 7  # nudged from this many days before the deadline
NUDGE_BATCH = 100
PHRASE_MAX = 100
PUPIL, STAFF, ADDED = "pupil", "staff", "added"
KIND_LABELS = {PUPIL: "Another pupil", STAFF: "Member of staff", ADDED: "Added by hand"}


# -- the deadline ---------------------------------------------------------------------------


def due_on(received: dt.date, working: WorkingTime) -> dt.date:
    """One calendar month from `received`: the same day of the next month (its last day if
    it has no such day), moved to the next day that is neither a weekend nor a bank
    holiday (school holidays do not count)."""
    year, month = (
        (received.year + 1, 1) if received.month == 12 else (received.year, received.month + 1)
    )
    day = dt.date(year, month, min(received.day, calendar.monthrange(year, month)[1]))
    while day.weekday() >= 5 or working.is_bank_holiday(day):
        day += dt.timedelta(days=1)
    return day


def days_left(due: dt.date, today: dt.date) -> int:
    """Calendar days until the deadline (negative once overdue)."""
    return (due - today).days


# -- matching names in text ------------------------------------------------------------------


def _fold_char(c: str) -> str:
    folded = "".join(
        x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x)
    ).casefold()
    return folded[0] if folded else c


def fold_chars(text: str) -> str:
    """Lower-case and accent-free, one character for one (so positions still match)."""
    return "".join(_fold_char(c) for c in text)


def clean_phrase(text: str, *, limit: int = PHRASE_MAX) -> str:
    """A phrase as typed: spaces collapsed, printable, at most `limit` characters."""
    words = " ".join(str(text).split())
    return "".join(c for c in words if c.isprintable())[:limit]


def pattern(phrase: str) -> re.Pattern[str] | None:
    """The phrase as a whole-word pattern on folded text (any spacing between its words,
    with a possessive "'s" or "s" after it); None for a phrase with no letters."""
    words = fold_chars(clean_phrase(phrase)).split()
    if not words or not any(c.isalnum() for c in "".join(words)):
        return None
    body = r"\s+".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w){body}(?:['’]s|['’]|s)?(?!\w)")


def spans(text: str, patterns: Iterable[re.Pattern[str]]) -> list[tuple[int, int]]:
    """Where any pattern matches `text`, overlapping matches merged, in order."""
    folded = fold_chars(text)
    found = sorted((m.start(), m.end()) for p in patterns for m in p.finditer(folded))
    merged: list[tuple[int, int]] = []
    for start, end in found:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def redact_text(text: str, patterns: Sequence[re.Pattern[str]]) -> str:
    """`text` with every match blacked out as `REDACTED`."""
    if not text or not patterns:
        return text
    out, last = [], 0
    for start, end in spans(text, patterns):
        out += [text[last:start], REDACTED]
        last = end
    out.append(text[last:])
    return "".join(out)


@dataclass(frozen=True)
class Candidate:
    """A name that may be proposed for redaction, and whose it is (pupil or staff)."""

    phrase: str
    kind: str


def _forms(name: RosterName) -> list[str]:
    """A pupil's names as they may be written: full (with the preferred name too), first,
    preferred, last."""
    forms = [f"{name.forename} {name.surname}"]
    if name.preferred_name:
        forms.append(f"{name.preferred_name} {name.surname}")
    forms += [name.forename, name.preferred_name or "", name.surname]
    return [clean_phrase(f) for f in forms if clean_phrase(f)]


def candidates(
    *, subject_id: int, roster: Sequence[RosterName], staff_names: Sequence[str] = ()
) -> list[Candidate]:
    """Every other pupil's name forms (and the staff's full and last names, if given),
    never one that is a form of the subject's own name; one candidate per folded phrase."""
    own = {fold_chars(f) for r in roster if r.id == subject_id for f in _forms(r)}
    seen: set[str] = set(own)
    found: list[Candidate] = []

    def offer(phrase: str, kind: str) -> None:
        key = fold_chars(phrase)
        if len(key) >= 2 and key not in seen and pattern(phrase) is not None:
            seen.add(key)
            found.append(Candidate(phrase, kind))

    for name in roster:
        if name.id != subject_id:
            for form in _forms(name):
                offer(form, PUPIL)
    for staff_name in staff_names:
        words = clean_phrase(staff_name).split()
        for form in [" ".join(words), words[-1]] if words else []:
            offer(form, STAFF)
    return found


def detect(texts: Sequence[str], offered: Sequence[Candidate]) -> list[Candidate]:
    """The candidates that occur in any of `texts`, longest first; a shorter one only if
    it also occurs outside a longer one ("Osian" alone, not only in "Osian Carrow")."""
    folded = [fold_chars(t) for t in texts if t]
    taken: list[list[tuple[int, int]]] = [[] for _ in folded]
    found = []
    for candidate in sorted(offered, key=lambda c: len(c.phrase), reverse=True):
        compiled = pattern(candidate.phrase)
        if compiled is None:
            continue
        hit = False
        for text, spans_taken in zip(folded, taken, strict=True):
            for m in compiled.finditer(text):
                if not any(s <= m.start() and m.end() <= e for s, e in spans_taken):
                    hit = True
                spans_taken.append((m.start(), m.end()))
        if hit:
            found.append(candidate)
    return found


# -- the pack -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackLine:
    """One line of the pack. `who`, `text` and `detail` may hold names (redacted);
    `heading` and `note` are Vigil's own words."""

    at: dt.datetime
    on: dt.date | None
    number: int
    heading: str
    who: str = ""
    text: str = ""
    detail: str = ""
    note: str = ""

    @property
    def texts(self) -> list[str]:
        return [self.who, self.text, self.detail]


@dataclass(frozen=True)
class Pack:
    pupil: Pupil
    lines: list[PackLine]


NOT_INCLUDED = "(not included in this pack: supplied separately if appropriate)"


def _line(e: Entry) -> PackLine | None:
    """A chronology entry as a line of the pack, or None when it is left out."""
    kind = e.kind
    base: dict[str, Any] = {"at": e.at, "on": e.on, "number": e.number, "who": e.who or ""}
    if kind == INCIDENT:
        parents = {"Y": "yes", "N": "no"}.get(e.parents, e.parents or "")
        detail = f"Parents or carers contacted: {parents}" if parents else ""
        if e.parents_reason:
            detail += f" ({e.parents_reason})"
        return PackLine(
            heading=f"Concern #{e.number}: " + ", ".join(e.categories),
            text=e.text,
            detail=detail,
            **base,
        )
    if kind == ACTION:
        status = f" (status: {e.case_status})" if e.case_status else ""
        return PackLine(heading=f"Action on concern #{e.number}{status}", text=e.text, **base)
    if kind == REFERRAL:
        return PackLine(heading=f"Referred to {e.agency} (concern #{e.number})", **base)
    if kind == RESPONSE:
        return PackLine(heading=f"{e.agency} responded (concern #{e.number})", **base)
    if kind == CLOSED:
        return PackLine(heading=f"Referral to {e.agency} closed (concern #{e.number})", **base)
    if kind == CONTEXT:
        return PackLine(heading="The pupil's context changed", text=e.text, **base)
    if kind == FILE:
        return PackLine(
            heading=f"A file attached to concern #{e.number}", note=NOT_INCLUDED, **base
        )
    if kind == BODY_MAP:
        return PackLine(
            heading=f"A body map drawn on concern #{e.number}", note=NOT_INCLUDED, **base
        )
    if kind == PAPER:
        note = f"Scans {NOT_INCLUDED}" if e.files else ""
        return PackLine(heading="A record from the paper files", text=e.text, note=note, **base)
    return None  # moved to or away from this pupil: about the filing, not the pupil


async def gather(
    session: AsyncSession,
    *,
    request: SubjectAccessRequest,
    cipher: Cipher,
    now: dt.datetime,
    viewer: Staff,
) -> Pack | None:
    """The pupil's pack, unredacted (None if the pupil is not in the request's school)."""
    found = await chronology(
        session,
        workspace_id=request.workspace_id,
        pupil_id=request.pupil_id,
        cipher=cipher,
        now=now,
        viewer=viewer,
    )
    if found is None:
        return None
    ids = {e.incident_id for e in found.entries if e.incident_id}
    about_adults = (
        set(
            await session.scalars(
                select(Incident.id).where(Incident.id.in_(ids), is_allegation(Incident.id))
            )
        )
        if ids
        else set()
    )
    lines = []
    for entry in found.entries:
        if entry.incident_id in about_adults:
            continue
        line = _line(entry)
        if line is not None:
            lines.append(line)
    return Pack(found.pupil, lines)


def redact(pack: Pack, phrases: Sequence[str]) -> Pack:
    """The pack with every phrase blacked out, longest phrases first."""
    compiled = [
        p for p in (pattern(x) for x in sorted(phrases, key=len, reverse=True)) if p is not None
    ]
    lines = [
        dataclasses.replace(
            line,
            who=redact_text(line.who, compiled),
            text=redact_text(line.text, compiled),
            detail=redact_text(line.detail, compiled),
        )
        for line in pack.lines
    ]
    return Pack(pack.pupil, lines)


@dataclass(frozen=True)
class Snippet:
    """A phrase in context: the words either side, and where (the line's heading)."""

    where: str
    at: dt.datetime
    before: str
    match: str
    after: str


def snippets(pack: Pack, phrase: str, *, limit: int = 3, width: int = 40) -> list[Snippet]:
    """Up to `limit` places the phrase occurs in the pack."""
    compiled = pattern(phrase)
    found: list[Snippet] = []
    if compiled is None:
        return found
    for line in pack.lines:
        for text in line.texts:
            for start, end in spans(text, [compiled]):
                found.append(
                    Snippet(
                        where=line.heading,
                        at=line.at,
                        before=("…" if start > width else "") + text[max(0, start - width) : start],
                        match=text[start:end],
                        after=text[end : end + width] + ("…" if end + width < len(text) else ""),
                    )
                )
                if len(found) >= limit:
                    return found
    return found


# -- the redactions of a request -------------------------------------------------------------


@dataclass(frozen=True)
class Redaction:
    row: SarRedaction
    phrase: str  # decrypted

    @property
    def active(self) -> bool:
        return self.row.removed_at is None

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.row.kind, self.row.kind)


async def redactions(session: AsyncSession, *, request_id: int, cipher: Cipher) -> list[Redaction]:
    """The request's redactions, decrypted, in the order they were made."""
    rows = await session.scalars(
        select(SarRedaction).where(SarRedaction.request_id == request_id).order_by(SarRedaction.id)
    )
    return [
        Redaction(row, cipher.decrypt(row.phrase_ct, bind(SarRedaction.phrase_ct, row.id)))
        for row in rows
    ]


async def add_redaction(
    session: AsyncSession,
    *,
    request_id: int,
    phrase: str,
    kind: str,
    cipher: Cipher,
    now: dt.datetime,
    by: Staff | None = None,
) -> SarRedaction:
    """A new redaction row, its phrase sealed to it."""
    row = SarRedaction(
        request_id=request_id, kind=kind, created_at=now, added_by_id=by.id if by else None
    )
    await keyring.seal(session, cipher, row, {SarRedaction.phrase_ct: phrase})
    await session.flush()
    return row


async def propose(
    session: AsyncSession,
    *,
    request: SubjectAccessRequest,
    pack: Pack,
    cipher: Cipher,
    now: dt.datetime,
) -> int:
    """Add a proposal for each name found in the pack that has none yet (one removed by the
    key-holder stays removed); how many were added."""
    roster = await roster_names(session, workspace_id=request.workspace_id)
    staff_names: list[str] = []
    if request.redact_staff:
        staff_names = list(
            await session.scalars(
                select(Staff.name).where(Staff.workspace_id == request.workspace_id)
            )
        )
    offered = candidates(subject_id=request.pupil_id, roster=roster, staff_names=staff_names)
    found = detect([t for line in pack.lines for t in line.texts], offered)
    known = {
        fold_chars(r.phrase)
        for r in await redactions(session, request_id=request.id, cipher=cipher)
    }
    added = 0
    for candidate in found:
        if fold_chars(candidate.phrase) not in known:
            await add_redaction(
                session,
                request_id=request.id,
                phrase=candidate.phrase,
                kind=candidate.kind,
                cipher=cipher,
                now=now,
            )
            added += 1
    return added


def requester_of(request: SubjectAccessRequest, cipher: Cipher) -> str:
    if request.requester_ct is None:
        return ""
    return cipher.decrypt(request.requester_ct, bind(SubjectAccessRequest.requester_ct, request.id))


# -- the deadline nudge ----------------------------------------------------------------------


async def nudge_deadlines(
    session: AsyncSession,
    *,
    config: SchoolConfig,
    public_url: str,
    now: dt.datetime,
    limit: int = NUDGE_BATCH,
    workspace_id: int | None = None,
) -> int:
    """Tell the DSLs (else the key-holders) of each open request due within `NEAR_DAYS`
    days or overdue, once a working day, in working time (one school's, `workspace_id`, or
    every school's), through `store.nudges.nudge_due`. The message names the request's
    number and the days, never the pupil. How many requests were nudged."""
    nudged = await nudge_due(
        session,
        _DeadlineNudger(public_url),
        working=config.working_time,
        now=now,
        limit=limit,
        workspace_id=workspace_id,
    )
    if nudged:
        log.info("sar.deadline_nudged", requests=nudged)
    return nudged


@dataclass(frozen=True)
class _DeadlineNudge:
    people: list[Staff]
    payload: messages.Message


class _DeadlineNudger(Nudger[SubjectAccessRequest, _DeadlineNudge]):
    """A request is never snoozed: it is due within `NEAR_DAYS` until it is completed."""

    model = SubjectAccessRequest
    failed_event, row_name = "sar.nudge_failed", "request"

    def __init__(self, public_url: str) -> None:
        self.public_url = public_url
        self.dsls: dict[int, list[Staff]] = {}

    def due(self, day: NudgeDay) -> Sequence[ColumnElement[bool]]:
        return (
            SubjectAccessRequest.completed_at.is_(None),
            SubjectAccessRequest.due_on <= day.today + dt.timedelta(days=NEAR_DAYS),
        )

    def order(self) -> Sequence[Any]:
        return (SubjectAccessRequest.due_on, SubjectAccessRequest.id)

    async def plan(
        self, session: AsyncSession, row: SubjectAccessRequest, day: NudgeDay
    ) -> _DeadlineNudge:
        if row.workspace_id not in self.dsls:
            self.dsls[row.workspace_id] = await nudge_recipients(
                session, workspace_id=row.workspace_id, escalate=False
            )
        payload = messages.subject_access_due(
            request_id=row.id,
            days_left=days_left(row.due_on, day.today),
            url=f"{self.public_url}/sar/{row.id}",
        )
        return _DeadlineNudge(self.dsls[row.workspace_id], payload)

    def send(
        self, session: AsyncSession, row: SubjectAccessRequest, day: NudgeDay, plan: _DeadlineNudge
    ) -> None:
        outbox.dm_each(
            session,
            workspace_id=row.workspace_id,
            people=plan.people,
            payload=plan.payload,
            now=day.now,
        )
