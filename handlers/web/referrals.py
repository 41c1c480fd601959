"""Agency referrals in the web view (DESIGN §6).

- The Referral fieldset of Add action: a new referral (agency, when referred, the agency's
  reference), and for each open referral on the incident, the agency's response or
  closing it. `read_form` parses it; `apply` records it in the action's transaction.
- The incident page's Referrals section (`incident_rows`): state, due time, history.
- The rows of the key-holders' referrals board (`GET /referrals`, in `pages`).

Times are shown and entered in the school's time zone (the configuration file's
`working_time.timezone`). Logs and audit entries carry ids and agency names only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.web.deps import DEPS
from store import audit, referrals
from store.enums import ReferralEventKind
from store.models import Incident, IncidentAction, Referral, ReferralEvent, Staff
from store.referrals import AWAITING, CLOSED, RESPONDED, InvalidReferral
from store.school_config import Agency, SchoolConfig
from store.staff import staff_names
from store.workdays import WorkingTime

log = structlog.get_logger(__name__)

REFERENCE_MAX = 100
RESPONSE, CLOSE = ReferralEventKind.RESPONSE, ReferralEventKind.CLOSED
_ID = re.compile(r"[0-9]{1,9}")
_LOCAL = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?")
EVENT_LABELS = {
    "referred": "Referred",
    "response": "Agency responded",
    "closed": "Closed",
    "snoozed": "Reminders snoozed",
    "nudged": "Overdue reminder sent",
}


# -- the school's configuration ------------------------------------------------------------


def school_of(app: web.Application) -> SchoolConfig:
    """The school's configuration: agencies, timescales, working time, time zone."""
    return app[DEPS].school


def school_zone(app: web.Application) -> ZoneInfo:
    return school_of(app).working_time.zone


# -- local times in forms ------------------------------------------------------------------


def local_input(value: dt.datetime, zone: ZoneInfo) -> str:
    """An instant as a `datetime-local` field value in the school's time zone."""
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def parse_local(text: str, zone: ZoneInfo) -> dt.datetime:
    """A `datetime-local` value, read as school time, as an aware UTC instant."""
    match = _LOCAL.fullmatch(text.strip())
    if match is None:
        raise ValueError(text)
    try:
        day = dt.date.fromisoformat(match[1])
        time = dt.time(int(match[2]), int(match[3]), int(match[4] or 0))
        return dt.datetime.combine(day, time, tzinfo=zone).astimezone(dt.UTC)
    except OverflowError:  # e.g. the last minutes of year 9999 in UTC
        raise ValueError(text) from None


# -- the Add action fieldset -----------------------------------------------------------------


@dataclass(frozen=True)
class NewReferral:
    agency: Agency
    referred_at: dt.datetime
    reference: str | None


@dataclass(frozen=True)
class Outcome:
    referral_id: int
    outcome: ReferralEventKind  # RESPONSE or CLOSE
    at: dt.datetime | None


@dataclass
class ReferralForm:
    """What the Referral fieldset asks for, what was typed, and what is wrong with it."""

    new: NewReferral | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    entered: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def outcome_key(referral_id: int) -> str:
    return f"outcome-{referral_id}"


def responded_key(referral_id: int) -> str:
    return f"responded_at-{referral_id}"


def blank_entries(
    open_referrals: Mapping[int, Referral], *, now: dt.datetime, zone: ZoneInfo
) -> dict[str, Any]:
    """The fieldset as first shown: no agency, times defaulting to now (school time)."""
    stamp = local_input(now, zone)
    entered: dict[str, Any] = {"agency": "", "referred_at": stamp, "reference": ""}
    for referral_id in open_referrals:
        entered[outcome_key(referral_id)] = ""
        entered[responded_key(referral_id)] = stamp
    return entered


def read_form(
    form: Mapping[str, Any],
    *,
    school: SchoolConfig,
    now: dt.datetime,
    open_referrals: Mapping[int, Referral],
) -> ReferralForm:
    """Parse the Referral fieldset; `open_referrals` are the incident's, not yet closed."""
    zone = school.working_time.zone
    result = ReferralForm(entered=blank_entries(open_referrals, now=now, zone=zone))
    entered, errors = result.entered, result.errors

    agency_name = str(form.get("agency", "")).strip()
    referred_text = str(form.get("referred_at", "")).strip()
    reference = str(form.get("reference", "")).strip()
    entered.update(agency=agency_name, referred_at=referred_text, reference=reference)
    agency = school.agency(agency_name) if agency_name else None
    if agency_name and agency is None:
        errors["agency"] = "Choose an agency from the list."
    elif not agency_name and reference:
        errors["agency"] = "Choose the agency the referral went to."
    if len(reference) > REFERENCE_MAX:
        errors["reference"] = f"Keep the reference to {REFERENCE_MAX} characters or fewer."
    referred_at = now
    if agency_name and referred_text:
        try:
            referred_at = parse_local(referred_text, zone)
        except ValueError:
            errors["referred_at"] = "Enter the date and time the referral was made."
    if agency is not None and not errors:
        result.new = NewReferral(agency, referred_at, reference or None)

    for name in form:
        if not name.startswith("outcome-"):
            continue
        choice = str(form.get(name, "")).strip()
        raw_id = name.removeprefix("outcome-")
        referral_id = int(raw_id) if _ID.fullmatch(raw_id) else None
        referral = open_referrals.get(referral_id) if referral_id is not None else None
        if referral is None or referral_id is None:
            if choice:
                errors["referral"] = "That referral is not open on this concern."
            continue
        entered[outcome_key(referral_id)] = choice
        if not choice:
            continue
        if choice == RESPONSE:  # the store refuses a second response
            text = str(form.get(responded_key(referral_id), "")).strip()
            entered[responded_key(referral_id)] = text
            try:
                at = parse_local(text, zone) if text else now
            except ValueError:
                errors[responded_key(referral_id)] = "Enter the date and time the agency responded."
                continue
            result.outcomes.append(Outcome(referral_id, RESPONSE, at))
        elif choice == CLOSE:
            result.outcomes.append(Outcome(referral_id, CLOSE, None))
        else:
            errors[outcome_key(referral_id)] = "Choose the agency's response or closing it."
    return result


async def open_referrals(
    db: AsyncSession, *, incident: Incident, lock: bool = False
) -> dict[int, Referral]:
    """The incident's referrals not yet closed, by id, oldest first.

    `lock` holds them (PostgreSQL) until the transaction ends, so two people answering
    the same referral at once are taken one after the other.
    """
    query = (
        select(Referral)
        .where(Referral.incident_id == incident.id, Referral.status != CLOSED)
        .order_by(Referral.referred_at, Referral.id)
    )
    rows = await db.scalars(query.with_for_update() if lock else query)
    return {r.id: r for r in rows}


async def apply(
    db: AsyncSession,
    parsed: ReferralForm,
    *,
    incident: Incident,
    action: IncidentAction,
    author: Staff,
    open_referrals: Mapping[int, Referral],
    school: SchoolConfig,
    now: dt.datetime,
    ip: str | None,
) -> list[int]:
    """Record the fieldset's changes with `action`, audited; InvalidReferral by field."""
    changed: list[int] = []
    for item in parsed.outcomes:
        try:
            referral = await referrals.record_outcome(
                db,
                referral=open_referrals[item.referral_id],
                action=action,
                author=author,
                outcome=item.outcome,
                at=item.at,
                now=now,
            )
        except InvalidReferral as invalid:
            raise InvalidReferral(
                {
                    responded_key(item.referral_id)
                    if key == "responded_at"
                    else outcome_key(item.referral_id): message
                    for key, message in invalid.errors.items()
                }
            ) from None
        audit.record(
            db,
            action="referral.response" if item.outcome == RESPONSE else "referral.close",
            actor=author,
            incident_id=incident.id,
            ip=ip,
            detail=f"referral {referral.id}; action {action.id}",
            now=now,
        )
        changed.append(referral.id)
    if parsed.new is not None:
        referral = await referrals.record_referral(
            db,
            incident=incident,
            action=action,
            author=author,
            agency=parsed.new.agency,
            referred_at=parsed.new.referred_at,
            reference=parsed.new.reference,
            working=school.working_time,
            now=now,
        )
        audit.record(
            db,
            action="referral.add",
            actor=author,
            incident_id=incident.id,
            ip=ip,
            detail=f"referral {referral.id}; {referral.agency}; action {action.id}",
            now=now,
        )
        changed.append(referral.id)
    return changed


# -- showing referrals -----------------------------------------------------------------------


def _unit(days: int) -> str:
    return "working day" if days == 1 else "working days"


def overdue_text(days: int) -> str:
    """How overdue, as the page says it."""
    return "due today" if days <= 0 else f"{days} {_unit(days)}"


@dataclass(frozen=True)
class HistoryRow:
    at: dt.datetime
    label: str
    actor: str | None
    detail: str | None
    until: dt.datetime | None  # a snooze's end, shown as a time


@dataclass(frozen=True)
class ReferralRow:
    """A referral as a page shows it."""

    referral: Referral
    number: int
    state: str  # waiting, overdue, responded, closed
    overdue_days: int | None
    snoozed: bool
    history: list[HistoryRow]

    @property
    def id(self) -> int:
        return self.referral.id

    @property
    def state_text(self) -> str:
        if self.state == "overdue":
            days = self.overdue_days or 0
            return "Overdue (due today)" if days <= 0 else f"Overdue by {days} {_unit(days)}"
        return {"waiting": "Waiting", "responded": "Responded", "closed": "Closed"}[self.state]


def _state(referral: Referral, working: WorkingTime, now: dt.datetime) -> tuple[str, int | None]:
    """waiting, overdue (with working days overdue), responded or closed."""
    if referral.status == RESPONDED:
        return "responded", None
    if referral.status == CLOSED:
        return "closed", None
    if referral.due_at <= now:
        return "overdue", working.working_days_between(referral.due_at, now)
    return "waiting", None


def _until(event: ReferralEvent) -> dt.datetime | None:
    """The end of a snooze, from its event's detail ("until <ISO time>")."""
    if event.kind != "snoozed" or not event.detail:
        return None
    try:
        value = dt.datetime.fromisoformat(event.detail.removeprefix("until").strip())
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


async def incident_rows(
    db: AsyncSession, *, incident: Incident, school: SchoolConfig, now: dt.datetime
) -> list[ReferralRow]:
    """The incident's referrals, oldest first, each with its state and history."""
    found = await referrals.for_incident(db, incident_id=incident.id)
    names = await staff_names(
        db, ids={e.actor_id for _, events in found for e in events if e.actor_id}
    )
    rows = []
    for referral, events in found:
        state, days = _state(referral, school.working_time, now)
        history = [
            HistoryRow(
                at=e.at,
                label=EVENT_LABELS.get(e.kind, e.kind),
                actor=names.get(e.actor_id) if e.actor_id else None,
                detail=None if _until(e) else e.detail,
                until=_until(e),
            )
            for e in events
        ]
        snoozed = bool(
            referral.status == AWAITING and referral.snoozed_until and referral.snoozed_until > now
        )
        rows.append(ReferralRow(referral, incident.number, state, days, snoozed, history))
    return rows


# -- the board -------------------------------------------------------------------------------


async def board_rows(
    db: AsyncSession, *, workspace_id: int, school: SchoolConfig, now: dt.datetime
) -> list[ReferralRow]:
    """Referrals waiting for an agency: overdue first (most overdue first), then soonest due."""
    rows = []
    for referral, number in await referrals.board(db, workspace_id=workspace_id, now=now):
        state, days = _state(referral, school.working_time, now)
        snoozed = bool(referral.snoozed_until and referral.snoozed_until > now)
        rows.append(ReferralRow(referral, number, state, days, snoozed, []))
    rows.sort(
        key=lambda r: (
            r.state != "overdue",
            -(r.overdue_days or 0),
            r.referral.due_at,
            r.referral.id,
        )
    )
    return rows
