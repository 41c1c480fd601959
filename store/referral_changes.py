"""The referral changes an action records (DESIGN §6), read from the Add action form.

The form's Referral fieldset asks for a new referral (agency, when referred, the agency's
reference) and, for each open referral on the incident, the agency's response or closing
it. `read_changes` reads those fields as typed (trusting nothing) into `ReferralChanges`;
`check_changes` finds what the store would refuse, before anything is written. Errors
are keyed by the form's field names (`outcome_key`, `responded_key`), as
`store.incidents.check_draft`'s are by the concern modal's blocks.

Times are entered in the school's time zone (the configuration's `working_time.timezone`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from store import referrals
from store.enums import ReferralEventKind
from store.ids import parse_id
from store.models import Referral
from store.referrals import InvalidReferral
from store.school_config import Agency, SchoolConfig

REFERENCE_MAX = 100
RESPONSE, CLOSE = ReferralEventKind.RESPONSE, ReferralEventKind.CLOSED
# A LADO consultation on an allegation (`store.allegations`): held, or not needed (the
# action's text says why).
CONSULTED, NOT_NEEDED = ReferralEventKind.CONSULTED, ReferralEventKind.NOT_NEEDED
_LOCAL = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?")


def outcome_key(referral_id: int) -> str:
    """The form field (and error key) of an open referral's response or closing."""
    return f"outcome-{referral_id}"


def responded_key(referral_id: int) -> str:
    """The form field (and error key) of when the agency responded to a referral."""
    return f"responded_at-{referral_id}"


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
class ReferralChanges:
    """What the Referral fieldset asks for, what was typed, and what is wrong with it."""

    new: NewReferral | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    typed: dict[str, str] = field(default_factory=dict)  # by field name, to show again
    errors: dict[str, str] = field(default_factory=dict)


def asks_for_change(fields: Mapping[str, str]) -> bool:
    """Whether the Referral fieldset asks for anything: a new referral (an agency or a
    reference), or a response to or closing of an open one."""
    if str(fields.get("agency", "")).strip() or str(fields.get("reference", "")).strip():
        return True
    return any(name.startswith("outcome-") and str(value).strip() for name, value in fields.items())


def read_changes(
    fields: Mapping[str, str],
    *,
    school: SchoolConfig,
    now: dt.datetime,
    open_referrals: Mapping[int, Referral],
) -> ReferralChanges:
    """Read the Referral fieldset; `open_referrals` are the incident's, not yet closed."""
    zone = school.working_time.zone
    result = ReferralChanges()
    typed, errors = result.typed, result.errors

    agency_name = str(fields.get("agency", "")).strip()
    referred_text = str(fields.get("referred_at", "")).strip()
    reference = str(fields.get("reference", "")).strip()
    typed.update(agency=agency_name, referred_at=referred_text, reference=reference)
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

    for name in fields:
        if not name.startswith("outcome-"):
            continue
        choice = str(fields.get(name, "")).strip()
        referral_id = parse_id(name.removeprefix("outcome-"))
        referral = open_referrals.get(referral_id) if referral_id is not None else None
        if referral is None or referral_id is None:
            if choice:
                errors["referral"] = "That referral is not open on this concern."
            continue
        typed[outcome_key(referral_id)] = choice
        if not choice:
            continue
        if choice == RESPONSE:  # the store refuses a second response
            text = str(fields.get(responded_key(referral_id), "")).strip()
            typed[responded_key(referral_id)] = text
            try:
                at = parse_local(text, zone) if text else now
            except ValueError:
                errors[responded_key(referral_id)] = "Enter the date and time the agency responded."
                continue
            result.outcomes.append(Outcome(referral_id, RESPONSE, at))
        elif choice in (CLOSE, CONSULTED, NOT_NEEDED):
            result.outcomes.append(Outcome(referral_id, ReferralEventKind(choice), None))
        else:
            errors[outcome_key(referral_id)] = "Choose the agency's response or closing it."
    return result


def check_changes(
    changes: ReferralChanges, *, open_referrals: Mapping[int, Referral], now: dt.datetime
) -> None:
    """InvalidReferral, by form field, for the first change the store would refuse."""
    for item in changes.outcomes:
        try:
            referrals.check_outcome(
                open_referrals[item.referral_id], outcome=item.outcome, at=item.at or now, now=now
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
    if changes.new is not None:
        referrals.check_referred_at(changes.new.referred_at, now=now)
